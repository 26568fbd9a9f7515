// Command tmon is the offline toolbox of tmon: it checks configuration
// files now, and is where loading and reporting subcommands join (see
// commands.go). The online daemons are tmon-probe and tmon-collector.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses shared by the subcommands.
const (
	exitOK    = 0
	exitFail  = 1 // the subcommand ran and found a problem
	exitUsage = 2 // bad command line
)

// run dispatches args to a subcommand and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c, ok := lookup(args[1]); ok {
				return c.run([]string{"-h"}, stdout, stderr)
			}
			fmt.Fprintf(stderr, "tmon: no command %q\n", args[1])
			return exitUsage
		}
		usage(stdout)
		return exitOK
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "tmon: no command %q (run tmon -h)\n", name)
		return exitUsage
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `tmon: offline tools of the tmon passive one-way latency and loss monitor.

Usage: tmon COMMAND [ARGS...]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "tmon COMMAND -h" for the options of one command.
`)
}
