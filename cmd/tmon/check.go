package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tmon-project/tmon/conf"
)

// runCheck validates each configuration file given and reports every
// problem with its file and line, so that a file can be checked before it is
// rolled out to every probe and collector.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: tmon check FILE...

Validates each tmon XML configuration file as every probe and collector
would on start-up. Prints "FILE: ok (...)" for a good file, and one line
"FILE:LINE: <element>: problem" per problem otherwise. A setting that
works but could hurt is said as "FILE:LINE: <element>: warning: ..." on
standard error; it does not change the exit status.
Exit status: 0 when every file is good, 1 when any has a problem, 2 on usage errors.
`)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	status := exitOK
	for _, path := range fs.Args() {
		c, err := conf.Load(path)
		if err == nil {
			err = c.CheckAuth() // the daemons refuse to start without it
		}
		if err != nil {
			status = exitFail
			printErrors(stderr, err)
			continue
		}
		if w := c.FlowShareWarning(conf.DefaultSieveRing); w != "" {
			line := c.Limits.Line
			if line == 0 {
				line = c.Line
			}
			fmt.Fprintf(stderr, "%s:%d: <limits>: warning: %s\n", path, line, w)
		}
		from := "valid immediately"
		if !c.ValidFrom.IsZero() {
			from = "valid from " + c.ValidFrom.Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%s: ok (%s, %s, %s, %s)\n",
			path, count(len(c.Probes), "probe"), count(len(c.Collectors), "collector"), count(len(c.Classes), "class"), from)
	}
	return status
}

// printErrors prints the joined errors of conf.Load one per line.
func printErrors(w io.Writer, err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			fmt.Fprintln(w, e)
		}
		return
	}
	fmt.Fprintln(w, err)
}

// count is "1 probe", "2 probes", "1 class", "3 classes".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
