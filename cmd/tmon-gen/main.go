// Command tmon-gen writes the two capture files of a simulated path
// A → router → B and the ground truth of what the path did to every packet:
// the input of `make demo` and of end-to-end tests. See package internal/gen.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tmon-project/tmon/internal/gen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tmon-gen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	d := gen.DefaultConfig()
	fs := flag.NewFlagSet("tmon-gen", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: tmon-gen [flags]

Writes DIR/hop-a.pcap and DIR/hop-b.pcap (nanosecond pcap, Ethernet): the
traffic of a path A → router → B as seen before and after the router, with
DIR/truth.tsv (one row per packet sent at A: times at A and B, delay or loss,
duplicate, clash group, fragment) and DIR/summary.tsv. Output is
deterministic for a given set of flags.

With -mix FILE it writes instead one hop's capture of a busy link, the
throughput trace of the benchmarks (1 236 000 frames: 800 000 UDP datagrams
of 64 payload bytes and 400 000 of 1 200 over 64 flows, 2 %% TCP, 1 %% IPv6,
1 µs apart, ≈ 600 MB; -count scales the UDP datagrams, two small to one
large), and prints what it wrote.

Flags:
`)
		fs.PrintDefaults()
	}
	var (
		out      = fs.String("out", "gen-out", "output `dir`ectory (created if needed)")
		seed     = fs.Uint64("seed", d.Seed, "random seed: the same seed and flags give the same files")
		rate     = fs.Float64("rate", d.Rate, "datagrams per second sent at A (spacing jittered ±50%)")
		duration = fs.Duration("duration", d.Duration, "how long to send, when -count is 0")
		count    = fs.Int("count", 0, "number of datagrams to send (overrides -duration when > 0)")
		delay    = fs.String("delay", d.Delay.String(), "one-way delay distribution: uniform:MIN:MAX, normal:MEAN:SD (truncated at 0), pareto:MIN:SHAPE or const:D")
		maxDelay = fs.Duration("max-delay", d.MaxDelay, "upper bound of every delay (draws above it are redrawn)")
		loss     = fs.Float64("loss", d.Loss, "probability that a packet is lost between A and B")
		dup      = fs.Float64("dup", d.Dup, "probability that a delivered packet is duplicated at B (copy < 500µs later)")
		frag     = fs.Float64("frag", d.Frag, "share of IPv4 UDP datagrams sent as 2-3 fragments")
		clashes  = fs.Int("clashes", d.Clashes, "number of pairs of byte-identical packets (signature clashes)")
		gap      = fs.Duration("clash-gap", d.ClashGap, "time between the two packets of a clash pair (> max-delay)")
		ipv6     = fs.Float64("ipv6", d.IPv6, "share of datagrams on the IPv6 UDP flows")
		bg       = fs.Float64("background", d.Background, "unmeasured frames (ARP, UDP from 10.3/16) at each hop per datagram")
		vlan     = fs.Uint("vlan-b", 0, "802.1Q VLAN ID added to every frame at hop B (0: none)")
		mtu      = fs.Int("mtu", d.MTU, "path MTU at A in bytes (fragments are cut to it)")
		start    = fs.String("start", d.Start.Format(time.RFC3339Nano), "capture time of the first packet at A (RFC 3339)")
		mix      = fs.String("mix", "", "write the throughput trace to this pcap `file` instead of a path (see above)")
	)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *mix != "" {
		return writeMix(*mix, *seed, *count)
	}
	cfg := d
	var err error
	if cfg.Delay, err = gen.ParseDist(*delay); err != nil {
		return err
	}
	if cfg.Start, err = time.Parse(time.RFC3339Nano, *start); err != nil {
		return fmt.Errorf("-start: %w", err)
	}
	if *vlan > 4094 {
		return fmt.Errorf("-vlan-b %d: want 0 to 4094", *vlan)
	}
	cfg.Seed, cfg.Rate, cfg.Duration, cfg.Count = *seed, *rate, *duration, *count
	cfg.MaxDelay, cfg.Loss, cfg.Dup, cfg.Frag = *maxDelay, *loss, *dup, *frag
	cfg.Clashes, cfg.ClashGap, cfg.IPv6, cfg.Background = *clashes, *gap, *ipv6, *bg
	cfg.VLANB, cfg.MTU = uint16(*vlan), *mtu

	sum, files, err := gen.Generate(cfg, *out)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Println("wrote", f)
	}
	os.Stdout.Write(sum.TSV())
	return nil
}

func writeMix(path string, seed uint64, count int) error {
	c := gen.DefaultMix()
	c.Seed = seed
	if count > 0 {
		c.Small, c.Large = count-count/3, count/3
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	sum, err := gen.WriteMix(f, c)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d frames (%d small UDP, %d large UDP, %d TCP, %d IPv6), %d bytes\n",
		path, sum.Frames, sum.Small, sum.Large, sum.TCP, sum.IPv6, sum.Bytes)
	return nil
}
