// Command tmon-probe is a tmon probe: it watches packets at one or more
// capture points, recognises the packets of the configured flow classes,
// and sends compact observations to every configured collector.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tmon-project/tmon/internal/cli"
	"github.com/tmon-project/tmon/probe"

	_ "github.com/tmon-project/tmon/health/prom" // the metrics endpoint
)

func main() {
	var (
		files    cli.List
		d        = cli.NewDaemon("tmon-probe", "probe")
		speed    = flag.Float64("speed", 0, "replay pacing: 0 = as fast as possible, 1 = original timing, 10 = ten times faster")
		realtime = flag.Bool("realtime", false, "with -read and -speed 1: replay each packet at the wall-clock time of its stamp (a capture made for the coming minutes, replayed as if live)")
		live     = flag.Bool("live", false, "capture live (AF_PACKET) on the probe's configured interfaces until SIGINT/SIGTERM; the default when no -read is given")
		drain    = flag.Duration("drain", 0, "at the end, wait at most this long for the collectors' acks (0: 30s)")
	)
	flag.Var(&files, "read", "replay capture `file`s (pcap or pcapng), one per configured interface, in interface order; repeat the flag or separate with commas")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage: tmon-probe -config FILE -name PROBE [-live]             capture live
       tmon-probe -config FILE -name PROBE -read FILE[,FILE...]   replay captures

tmon-probe captures the packets of the flow classes declared in the shared
configuration at this probe's interfaces, signs each packet of a one-way class
with a hash of its unchanged bytes, and sends the sightings (flow, signature,
capture time) to every collector of the configuration over acknowledged UDP.

Live (the default without -read): one AF_PACKET TPACKET_V3 ring per configured
<interface> (fanout="N": N rings and sieve goroutines; pair="IF": the other
port of a passive tap, merged in time order), kernel or NIC timestamps,
offloads turned off, a kernel filter that keeps IPv4/IPv6 and leaves out the
probe's own PDUs; <capture> in the configuration sizes the rings. It needs
CAP_NET_RAW and CAP_NET_ADMIN: run as root or once
    setcap cap_net_raw,cap_net_admin+eip bin/tmon-probe
It runs until SIGINT or SIGTERM, then flushes, waits for the acks (-drain)
and says goodbye to the collectors.

Replay (-read): one capture file per interface of the probe, in the
configuration's order; it exits when the files end and every collector has
acknowledged every observation.

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if *live && len(files) > 0 {
		d.Fail(fmt.Errorf("-live and -read are exclusive"))
	}
	cfg, log := d.Setup()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := probe.Run(ctx, probe.Options{Config: cfg, Name: d.Name(), Live: len(files) == 0, Files: files, Speed: *speed, Realtime: *realtime, DrainTimeout: *drain, Logger: log, WatchConfig: true})
	if err != nil && res.Sieve.Packets == 0 {
		d.Fail(err) // it never ran (a capture file missing…): no figures to report
	}
	log.Info("probe finished",
		"packets", res.Sieve.Packets, "wanted", res.Sieve.Wanted,
		"flows", res.Analyser.Flows, "sightings", res.Sightings, "pdus", res.PDUs,
		"bytes_per_sighting", perSighting(res.PDUBytes, res.Sightings), "shed", res.Shed,
		"transport", fmt.Sprintf("%+v", res.Transport), "capture", fmt.Sprintf("%+v", res.Capture),
		"files", fmt.Sprintf("%+v", res.Files))
	if err != nil {
		d.Fail(err)
	}
}

func perSighting(bytes, n uint64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(bytes)/float64(n))
}
