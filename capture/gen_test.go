package capture

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/tmon-project/tmon/internal/gen"
)

// TestGeneratedPair replays the generator's two hops as one probe with two
// interfaces: every frame comes out once, on its interface, at its time.
func TestGeneratedPair(t *testing.T) {
	cfg := gen.DefaultConfig()
	cfg.Count = 3000
	cfg.VLANB = 42
	dir := t.TempDir()
	res, err := gen.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	src, err := OpenFiles(FileConfig{Paths: []string{filepath.Join(dir, gen.FileHopA), filepath.Join(dir, gen.FileHopB)}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var idx [2]int
	want := [2][]gen.Frame{res.A, res.B}
	var prev int64
	for {
		data, ts, iface, lt, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		w := want[iface][idx[iface]]
		if ts != w.TS || string(data) != string(w.Data) || lt != LinkTypeEthernet || ts < prev {
			t.Fatalf("iface %d frame %d: at %d, want %d", iface, idx[iface], ts, w.TS)
		}
		prev = ts
		idx[iface]++
	}
	if idx[0] != len(res.A) || idx[1] != len(res.B) {
		t.Errorf("delivered %v, generated %d and %d", idx, len(res.A), len(res.B))
	}
}
