package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/internal/gen"
)

// TestOwdCommand: -h explains, wrong usage is a usage error, and the
// default class measures generated traffic with the generator's counts
// (the offline package's and the e2e tests check every figure).
func TestOwdCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if st := run([]string{"owd", "-h"}, &out, &errb); st != exitOK || !strings.Contains(errb.String(), "Without -config") {
		t.Fatalf("owd -h: status %d\n%s", st, errb.String())
	}
	if st := run([]string{"owd", "one.pcap"}, &out, &errb); st != exitUsage {
		t.Errorf("one file: status %d", st)
	}
	gc := gen.DefaultConfig()
	gc.Seed, gc.Count, gc.Background = 3, 1500, 0
	dir := t.TempDir()
	sum, _, err := gen.Generate(gc, dir)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	spool := filepath.Join(dir, "spool")
	st := run([]string{"owd", "-spool", spool, filepath.Join(dir, gen.FileHopA), filepath.Join(dir, gen.FileHopB)}, &out, &errb)
	if st != exitOK {
		t.Fatalf("status %d: %s", st, errb.String())
	}
	for _, want := range []string{"class ip, hop A → B", "lost             " + strconv.Itoa(sum.Lost) + " ", "spool: " + spool} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(spool, "owd_packet")); err != nil {
		t.Errorf("no per-packet files in the spool: %v", err)
	}

	// The summary took the per-packet delays (exact p50, p99) from memory:
	// tmon summary reads them from the spool files, and must print the same.
	owdText := out.String()
	owdText = owdText[strings.Index(owdText, "\n\n")+2 : strings.LastIndex(owdText, "\nspool: ")]
	var sum2 bytes.Buffer
	if st := run([]string{"summary", spool}, &sum2, &errb); st != exitOK {
		t.Fatalf("summary: status %d: %s", st, errb.String())
	}
	if !strings.Contains(owdText, "(exact, from ") || owdText != sum2.String() {
		t.Errorf("tmon owd's summary:\n%s\ntmon summary of its spool:\n%s", owdText, sum2.String())
	}
}
