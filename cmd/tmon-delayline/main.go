// Command tmon-delayline is a test tool, not part of a deployment: a delay
// line for kernels without netem. Run it in a router namespace on a TUN
// device that routing feeds with the traffic to delay (internal/netlab
// builds such a lab); it delays, drops, duplicates and reorders the packets
// and records what it did to each.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tmon-project/tmon/internal/cli"
	"github.com/tmon-project/tmon/internal/delayline"
)

func main() {
	var (
		cfg    delayline.Config
		dev    = flag.String("dev", "dl0", "TUN `device` to attach to (in this network namespace)")
		record = flag.String("record", "", "write one TSV line per packet to `file` (see the package doc of internal/delayline)")
		level  = flag.String("log-level", "info", "log level: debug, info, warn, error")
	)
	flag.DurationVar(&cfg.Delay, "delay", 20e6, "mean one-way delay")
	flag.DurationVar(&cfg.Jitter, "jitter", 2e6, "uniform jitter: each delay is in [delay-jitter, delay+jitter]")
	flag.Float64Var(&cfg.Loss, "loss", 0.01, "drop probability")
	flag.Float64Var(&cfg.Duplicate, "dup", 0, "duplicate probability")
	flag.Float64Var(&cfg.Reorder, "reorder", 0, "probability of holding a packet -reorder-extra longer")
	flag.DurationVar(&cfg.ReorderExtra, "reorder-extra", 5e6, "extra delay of a reordered packet")
	flag.Uint64Var(&cfg.Seed, "seed", 0, "random seed (0: from the clock)")
	flag.DurationVar(&cfg.Spin, "spin", 200e3, "spin on the clock for the last stretch before a due time (negative: never)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage: tmon-delayline [-dev dl0] [-delay 20ms -jitter 2ms -loss 0.01] [-record file.tsv]

tmon-delayline reads IP packets from a TUN device, holds each for a random
delay, drops some, and writes them back at their due time. It is test tooling
for kernels without netem; it prints "delayline ready" once attached and stops
on SIGTERM or SIGINT, writing what is still pending.

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	log, err := cli.Logger(*level)
	if err != nil {
		fail(err)
	}
	if err := run(log, *dev, *record, cfg); err != nil {
		fail(err)
	}
}

func run(log *slog.Logger, dev, record string, cfg delayline.Config) error {
	if record != "" {
		f, err := os.Create(record)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.Record = f
	}
	tun, err := delayline.OpenTUN(dev)
	if err != nil {
		return err
	}
	line, err := delayline.New(cfg, tun)
	if err != nil {
		tun.Close()
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("delayline ready", "dev", tun.Name(), "delay", cfg.Delay, "jitter", cfg.Jitter, "loss", cfg.Loss,
		"dup", cfg.Duplicate, "reorder", cfg.Reorder)
	runErr := line.Run(ctx)
	cerr := tun.Close()
	st := line.Stats()
	log.Info("delayline finished", "read", st.Read, "sent", st.Sent, "dropped", st.Dropped,
		"duplicated", st.Duplicated, "reordered", st.Reordered, "write_errors", st.WriteErrors, "max_late", st.MaxLate)
	if runErr != nil {
		return runErr
	}
	return cerr
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tmon-delayline:", err)
	os.Exit(1)
}
