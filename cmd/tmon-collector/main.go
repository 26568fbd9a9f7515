// Command tmon-collector is a tmon collector: it receives the probes'
// observations over acknowledged UDP, reconciles the sightings of each packet
// at every hop into one-way delays and losses, and writes the spool logs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tmon-project/tmon/collector"
	"github.com/tmon-project/tmon/internal/cli"

	_ "github.com/tmon-project/tmon/health/prom" // the metrics endpoint
)

func main() {
	var (
		d        = cli.NewDaemon("tmon-collector", "collector")
		spoolDir = flag.String("spool", "", "spool `directory` (default: the collector's spool attribute)")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage: tmon-collector -config FILE -name COLLECTOR [flags]

tmon-collector listens on the UDP address the shared configuration gives this
collector, acknowledges every valid PDU from the configured probes, and
reconciles the sightings of each packet at the hops of its one-way path into
per-hop-pair delays, histograms, lost/missed/duplicate/reordered counts.

Every aggregation interval it writes tab-separated files into the spool
directory (docs/spool.md): owd_stats, owd_hist, owd_packet, owd_incomplete,
flows and events. tmon-loader loads them into a database; "tmon summary DIR"
prints them.

It runs until SIGINT or SIGTERM. On stop it writes every interval it can
decide; packets still waiting for a probe that has not finished are not
counted (an event in the spool says how many).

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	cfg, log := d.Setup()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := collector.Run(ctx, collector.Options{Config: cfg, Name: d.Name(), Spool: *spoolDir, Logger: log, WatchConfig: true}); err != nil {
		d.Fail(err)
	}
}
