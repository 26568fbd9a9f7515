package offline

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/reports"
)

// TestDefaultConfig: without a configuration, every IP packet of generated
// traffic (IPv4 and IPv6, fragments, duplicates, clash pairs) is measured
// with the generator's delay, and every lost one reported lost.
func TestDefaultConfig(t *testing.T) {
	gc := gen.DefaultConfig()
	gc.Seed, gc.Count, gc.Rate = 5, 3000, 3000
	gc.Background = 0 // unmeasured frames drawn at each hop on their own: lost or missed for an all-IP class
	dir := t.TempDir()
	if _, _, err := gen.Generate(gc, dir); err != nil {
		t.Fatal(err)
	}
	truth, err := gen.ReadTruthFile(filepath.Join(dir, gen.FileTruth))
	if err != nil {
		t.Fatal(err)
	}
	truth = gen.Datagrams(truth) // the sieve reassembles fragments
	cfg, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	spoolDir := filepath.Join(dir, "spool")
	res, err := Run(context.Background(), Options{Config: cfg, Files: []string{filepath.Join(dir, gen.FileHopA), filepath.Join(dir, gen.FileHopB)}, Spool: spoolDir})
	if err != nil {
		t.Fatal(err)
	}
	s, err := reports.ReadSpool(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	var delays, lost int
	for _, r := range truth {
		d, ok := s.Packets[r.TA]
		switch {
		case r.Lost:
			lost++
			if !s.Lost[r.TA] || ok {
				t.Errorf("seq %d lost: spool says lost %v, delay %d (%v)", r.Seq, s.Lost[r.TA], d, ok)
			}
		case !ok || d != r.Delay:
			t.Errorf("seq %d: delay %d (%v), truth %d", r.Seq, d, ok, r.Delay)
		default:
			delays++
		}
	}
	if delays+lost != len(truth) || len(s.Packets) != delays || len(s.Lost) != lost || lost == 0 {
		t.Errorf("%d delays and %d losses of %d packets; spool %d and %d", delays, lost, len(truth), len(s.Packets), len(s.Lost))
	}
	if res.Sieve.Packets == 0 || res.Sightings == 0 || len(res.Files) != 2 {
		t.Errorf("result %+v", res)
	}
}

func TestFilesMustMatchInterfaces(t *testing.T) {
	cfg, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), Options{Config: cfg, Files: []string{"only-one.pcap"}, Spool: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "a/hop-a (hop A), b/hop-b (hop B)") {
		t.Fatalf("one file for two interfaces: %v", err)
	}
	_, err = Run(context.Background(), Options{Config: cfg, Files: []string{"/nonexistent/a.pcap", "/nonexistent/b.pcap"}, Spool: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/a.pcap") {
		t.Fatalf("missing file: %v", err)
	}
}
