package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tmon-project/tmon/conf"
)

// runKeygen makes and rolls probe key files (conf.NewKeyFile and the
// KeyFile* steps).
func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	next := fs.Bool("next", false, "add a new key to FILE, accepted but not yet used to sign (roll step 1)")
	switchKey := fs.Bool("switch", false, "sign with the newest key of FILE, keep the others accepted (roll step 2)")
	retire := fs.Bool("retire", false, "keep only the signing key of FILE (roll step 3)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: tmon keygen [-next | -switch | -retire] FILE

Without a flag, writes a new random 256-bit key in hex to FILE (mode 0600;
an existing FILE is never overwritten). Name FILE in keyFile="..." of the
probe's <probe> element, and copy it to that probe and to every collector.

Rolling a key without losing a PDU: run each step, then roll the file out
to every collector and to the probe before the next step.
  -next     add a new key (collectors accept it; the probe still signs with the old)
  -switch   the probe signs with the new key (collectors still accept the old)
  -retire   drop the old key
`)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	n := 0
	for _, b := range []bool{*next, *switchKey, *retire} {
		if b {
			n++
		}
	}
	if fs.NArg() != 1 || n > 1 {
		fs.Usage()
		return exitUsage
	}
	path := fs.Arg(0)
	var err error
	switch {
	case *next:
		err = conf.KeyFileNext(path)
	case *switchKey:
		err = conf.KeyFileSwitch(path)
	case *retire:
		err = conf.KeyFileRetire(path)
	default:
		err = conf.NewKeyFile(path)
	}
	if err != nil {
		fmt.Fprintln(stderr, "tmon keygen:", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: written\n", path)
	return exitOK
}
