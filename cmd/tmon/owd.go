package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/offline"
	"github.com/tmon-project/tmon/reconcile"
	"github.com/tmon-project/tmon/reports"
	"github.com/tmon-project/tmon/spool"
)

func runOwd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("owd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "configuration `file` (flow classes, hops, intervals); default: every IP packet, one-way from the first file (hop A) to the second (hop B)")
	spoolDir := fs.String("spool", "", "write the spool files into this `dir`ectory (created if needed) and keep them; default: a temporary directory, removed after the summary")
	coll := fs.String("collector", "", "the configuration's collector whose `name` the spool carries (default the first)")
	quiet := fs.Bool("q", false, "print no summary (with -spool)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: tmon owd [-config FILE] [-spool DIR] hop-a.pcap hop-b.pcap [more.pcap...]

One-way delay and loss between capture points from capture files, in one
process: each file goes through the probe's sieve, signatures and flow
analysis as if a probe captured it, and straight into the collector's
reconciliation and spool (no UDP, no daemons). The figures are those the
daemons would report from the same captures.

Without -config: every IP packet, one flow per source, destination and
protocol; the first file is hop A, the second hop B; a packet seen at A is
measured at B within 10 s or counted lost after 20 s; per-packet delays are
kept. The stamps of the two captures must come from synchronised clocks
(or one clock): a delay is the difference of the two stamps.

With -config: the configuration's flow classes and one-way paths; give one
file per interface of its probes, in configuration order (probes in order,
each probe's interfaces in order), e.g. for a <probe name="pa"> with hop A
and a <probe name="pb"> with hop B: tmon owd -config tmon.xml pa.pcap pb.pcap.

Output: a summary per flow class and hop pair (delays measured, lost, missed,
duplicates, reordered, min/mean/max delay, p50/p99, histogram, IPPM metrics),
and with -spool the collector's spool files (docs/spool.md: owd_stats,
owd_hist, owd_packet with every delay, owd_metrics, flows, events), which
"tmon summary DIR" and tmon-loader read.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() < 2 && *config == "" || fs.NArg() < 1 {
		fs.Usage()
		return exitUsage
	}
	var cfg *conf.Config
	var err error
	if *config != "" {
		cfg, err = conf.Load(*config)
	} else {
		cfg, err = offline.Default()
	}
	if err != nil {
		fmt.Fprintln(stderr, "tmon owd:", err)
		return exitFail
	}
	dir := *spoolDir
	// The summary takes the per-packet delays from the intervals as they
	// are written rather than reading the owd_packet files back (a fifth
	// of the command's time) — when the spool is this run's alone: files
	// of an earlier run in it count too, as tmon summary counts them.
	fresh := dir == ""
	if !fresh {
		ents, err := os.ReadDir(dir)
		fresh = errors.Is(err, os.ErrNotExist) || err == nil && len(ents) == 0
	}
	if dir == "" {
		if *quiet {
			fmt.Fprintln(stderr, "tmon owd: -q without -spool would produce nothing")
			return exitUsage
		}
		if dir, err = os.MkdirTemp("", "tmon-owd-"); err != nil {
			fmt.Fprintln(stderr, "tmon owd:", err)
			return exitFail
		}
		defer os.RemoveAll(dir)
	}
	// One analysis and the process exits: its heap is tuned for that.
	offline.BatchHeap(fs.Args()...)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var delays *intervalDelays
	opts := offline.Options{Config: cfg, Files: fs.Args(), Spool: dir, Collector: *coll, Logger: log}
	if fresh && !*quiet {
		delays = &intervalDelays{}
		opts.OnInterval = delays.add
	}
	res, err := offline.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, "tmon owd:", err)
		return exitFail
	}
	if *quiet {
		return exitOK
	}
	var s *reports.Summary
	if delays != nil {
		s, err = reports.ReadSpoolDelays(dir, delays.pairs(cfg))
	} else {
		s, err = reports.ReadSpool(dir)
	}
	if err != nil {
		fmt.Fprintln(stderr, "tmon owd:", err)
		return exitFail
	}
	var bytes uint64
	for _, f := range res.Files {
		bytes += f.Bytes
	}
	fmt.Fprintf(stdout, "tmon owd: %d files, %d packets (%d wanted, %d sightings) in %v\n\n",
		len(res.Files), res.Sieve.Packets, res.Sieve.Wanted, res.Sightings, time.Since(start).Round(time.Millisecond))
	s.WriteText(stdout)
	if *spoolDir != "" {
		fmt.Fprintf(stdout, "\nspool: %s\n", *spoolDir)
	}
	return exitOK
}

// intervalDelays keeps the per-packet delays of every interval written, by
// class and hop pair (reconcile.Packet's indexes).
type intervalDelays struct {
	by map[[2]int][]int64
}

func (d *intervalDelays) add(iv *reconcile.Interval) {
	if d.by == nil {
		d.by = map[[2]int][]int64{}
	}
	for i := range iv.Packets {
		pk := &iv.Packets[i]
		k := [2]int{pk.Class, pk.Pair}
		v := d.by[k]
		if v == nil {
			v = make([]int64, 0, len(iv.Packets))
		}
		d.by[k] = append(v, pk.To-pk.From) // owd_packet's delay_ns
	}
}

// pairs names the delays' pairs as the spool does (spool.Writer: class,
// hop_from and hop_to as text columns).
func (d *intervalDelays) pairs(cfg *conf.Config) []reports.PairDelays {
	out := []reports.PairDelays{}
	for k, v := range d.by {
		c := &cfg.Classes[k[0]]
		ow := c.OneWay
		p := ow.Pairs[k[1]]
		out = append(out, reports.PairDelays{
			PairKey: reports.PairKey{Class: spool.Text(c.Name), From: spool.Text(ow.Hops[p.From].Name), To: spool.Text(ow.Hops[p.To].Name)},
			Delays:  v,
		})
	}
	return out
}
