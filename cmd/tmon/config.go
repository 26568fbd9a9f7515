package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/rollout"
)

// runConfig is "tmon config status": which configuration version every
// probe and collector runs, and which it holds for later.
func runConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "the shared configuration `file`: its probes and collectors are asked")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for each component")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: tmon config status -config FILE

Asks every probe and collector of FILE that has a <metrics listen> endpoint
which configuration version it runs and which it holds for a later validFrom
(a daemon watches its file: a new version is validated on arrival, then held
or rejected, see docs/operations.md "Configuration rollout").
Exit status: 0 when every component answered and runs FILE's version, 1
otherwise, 2 on usage errors.

`)
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "status" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fs.Usage()
			return exitOK
		}
		fs.Usage()
		return exitUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *file == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := conf.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, "tmon config:", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: version %q", *file, cfg.Version)
	if !cfg.ValidFrom.IsZero() {
		fmt.Fprintf(stdout, ", valid from %s", cfg.ValidFrom.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tNAME\tENDPOINT\tRUNNING\tHELD\tVALID FROM")
	status := exitOK
	for _, c := range rollout.Status(context.Background(), cfg, *timeout) {
		if c.Err != nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t?\t\t(%v)\n", c.Role, c.Name, dash(c.Endpoint), c.Err)
			status = exitFail
			continue
		}
		from := c.HeldFrom
		if c.Held != "" && from == "" {
			from = "immediately"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Role, c.Name, c.Endpoint, c.Running, dash(c.Held), dash(from))
		if c.Running != cfg.Version {
			status = exitFail
		}
	}
	tw.Flush()
	return status
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
