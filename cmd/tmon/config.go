package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/rollout"
)

const configUsage = `Usage: tmon config status -config FILE
       tmon config push [-config FILE] [-to COLLECTOR] NEWFILE

status asks every probe and collector of FILE which configuration version it
runs and which it holds for a later validFrom: its <metrics listen> endpoint,
or else what it told the collectors when it last fetched the configuration.
Exit status: 0 when every component answered and runs FILE's version, 1
otherwise, 2 on usage errors.

push publishes NEWFILE at a collector of FILE (the configuration in force;
default NEWFILE itself), over the authenticated configuration exchange
(docs/rollout.md): the collector stores it and serves it; every probe and
collector fetches it, validates it and holds it for its validFrom, or rejects
it and keeps its version (events config.accepted, config.rejected). The
collector's own verdict is printed. Exit status 0 when it was published.
`

// runConfig is "tmon config status" and "tmon config push".
func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprint(stdout, configUsage)
		return exitOK
	}
	if len(args) == 0 || args[0] != "status" && args[0] != "push" {
		fmt.Fprint(stderr, configUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("config "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "the shared configuration `file` in force: its probes and collectors are asked")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for each component")
	to := fs.String("to", "", "push: the `collector` to publish at (default: the first of FILE that answers)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), configUsage+"\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if args[0] == "push" {
		if fs.NArg() != 1 {
			fs.Usage()
			return exitUsage
		}
		return push(*file, fs.Arg(0), *to, *timeout, stdout, stderr)
	}
	if *file == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	return status(*file, *timeout, stdout, stderr)
}

func push(file, newFile, to string, timeout time.Duration, stdout, stderr io.Writer) int {
	content, err := os.ReadFile(newFile)
	if err != nil {
		fmt.Fprintln(stderr, "tmon config push:", err)
		return exitFail
	}
	if file == "" {
		file = newFile
	}
	cfg, err := conf.Load(file)
	if err != nil {
		if file == newFile {
			fmt.Fprintf(stderr, "tmon config push: %v\n(to publish a file that does not load, give the configuration in force with -config)\n", err)
		} else {
			fmt.Fprintln(stderr, "tmon config push:", err)
		}
		return exitFail
	}
	cl := rollout.ClientFor(cfg, "")
	published := time.Now().UnixNano()
	for _, c := range cfg.Collectors {
		if to != "" && c.Name != to {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		verdict, err := cl.Push(ctx, c.Address.String(), published, content)
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "tmon config push: collector %s: %v\n", c.Name, err)
			if errors.Is(err, rollout.ErrRefused) {
				return exitFail
			}
			continue
		}
		fmt.Fprintf(stdout, "%s published at collector %s (%s): %s\n", newFile, c.Name, time.Unix(0, published).UTC().Format(time.RFC3339Nano), verdict)
		return exitOK
	}
	if to != "" {
		if _, ok := cfg.CollectorByName(to); !ok {
			fmt.Fprintf(stderr, "tmon config push: no collector %q in %s\n", to, file)
		}
	}
	return exitFail
}

func status(file string, timeout time.Duration, stdout, stderr io.Writer) int {
	cfg, err := conf.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, "tmon config:", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: version %q", file, cfg.Version)
	if !cfg.ValidFrom.IsZero() {
		fmt.Fprintf(stdout, ", valid from %s", cfg.ValidFrom.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tNAME\tENDPOINT\tRUNNING\tHELD\tVALID FROM")
	code := exitOK
	for _, c := range rollout.Status(context.Background(), cfg, timeout) {
		if c.Err != nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t?\t\t(%v)\n", c.Role, c.Name, dash(c.Endpoint), c.Err)
			code = exitFail
			continue
		}
		from := c.HeldFrom
		if c.Held != "" && from == "" {
			from = "immediately"
		}
		via := ""
		if c.Via != "" {
			via = "\t(reported to " + c.Via + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s%s\n", c.Role, c.Name, dash(c.Endpoint), c.Running, dash(c.Held), dash(from), via)
		if c.Running != cfg.Version {
			code = exitFail
		}
	}
	tw.Flush()
	return code
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
