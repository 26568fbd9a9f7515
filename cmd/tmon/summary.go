package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/reports"
)

func runSummary(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	truth := fs.String("truth", "", "compare with the ground truth `file` written by tmon-gen (truth.tsv)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: tmon summary [-truth truth.tsv] SPOOLDIR

Prints, per flow class and hop pair, what a collector's spool holds over all
its intervals: delays measured, lost, missed, duplicates, reordered,
signature clashes, min/mean/max delay, exact p50/p99 when per-packet records
are kept, and the delay histogram over the configured slices.

With -truth, also compares every packet with the ground truth of tmon-gen;
the exit status is then 1 when any figure differs.

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
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	s, err := reports.ReadSpool(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "tmon summary:", err)
		return exitFail
	}
	s.WriteText(stdout)
	if *truth == "" {
		return exitOK
	}
	rows, err := gen.ReadTruthFile(*truth)
	if err != nil {
		fmt.Fprintln(stderr, "tmon summary:", err)
		return exitFail
	}
	c := reports.CompareTruth(s, rows)
	c.WriteText(stdout)
	if !c.OK() {
		return exitFail
	}
	return exitOK
}
