package main

import "io"

// command is one tmon subcommand. run gets the arguments after the command
// name and returns the exit status; it handles its own -h.
type command struct {
	name    string
	summary string // one line for tmon -h
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order tmon -h shows them. Add a
// subcommand by adding a line here and its run function in a file of its own.
var commands = []command{
	{"check", "validate configuration files", runCheck},
	{"config", "config status: the version each probe and collector runs and holds; config push: publish a new version", runConfig},
	{"keygen", "make a probe key file, or roll its keys", runKeygen},
	{"owd", "one-way delay and loss from capture files, in one process (no daemons)", runOwd},
	{"summary", "print what a collector spool measured (optionally against ground truth)", runSummary},
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}
