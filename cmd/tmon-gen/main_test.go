package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tmon-project/tmon/internal/gen"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	if err := run([]string{"-out", dir, "-count", "500", "-delay", "normal:20ms:2ms", "-vlan-b", "7", "-start", "2026-03-01T00:00:00Z"}); err != nil {
		t.Fatal(err)
	}
	rows, err := gen.ReadTruthFile(filepath.Join(dir, gen.FileTruth))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 500 || rows[0].TA != 1772323200e9 {
		t.Errorf("%d rows, first at %d", len(rows), rows[0].TA)
	}
	for _, n := range []string{gen.FileHopA, gen.FileHopB, gen.FileSummary} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Error(err)
		}
	}
	for _, bad := range [][]string{
		{"-delay", "gamma:1ms"}, {"-start", "yesterday"}, {"-loss", "2"}, {"-vlan-b", "5000"}, {"extra"},
	} {
		if err := run(append([]string{"-out", dir}, bad...)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	mix := filepath.Join(dir, "mix.pcap")
	if err := run([]string{"-mix", mix, "-count", "3000"}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(mix); err != nil || st.Size() < 3000*100 {
		t.Errorf("mix trace: %v", err)
	}
	if err := run([]string{"-h"}); err != nil {
		t.Errorf("-h: %v", err)
	}
}
