package offline

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
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

// TestFragmentSpans: generated traffic with a fifth of the IPv4 UDP
// datagrams sent as 2–3 fragments (12 µs apart at A, each delayed on its
// own, so some arrive reordered at B), some fragments lost or duplicated.
// Every datagram measured has its owd_packet row with the times of its
// last fragments at A and B (t_from, t_to), and the span back to its
// first fragment at each hop and the first-fragment delay as the
// generator's per-fragment times give them: span = latest − earliest
// fragment time at the hop, first_delay = earliest at B − earliest at A.
// A packet that was not fragmented has spans 0 and first_delay = delay.
func TestFragmentSpans(t *testing.T) {
	gc := gen.DefaultConfig()
	gc.Seed, gc.Count, gc.Rate, gc.Frag = 11, 3000, 3000, 0.2
	gc.Background = 0
	dir := t.TempDir()
	if _, _, err := gen.Generate(gc, dir); err != nil {
		t.Fatal(err)
	}
	rows, err := gen.ReadTruthFile(filepath.Join(dir, gen.FileTruth))
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ to, spanFrom, spanTo, firstDelay int64 }
	type dkey struct {
		src, dst string
		id       int
	}
	type frags struct{ minA, maxA, minB, maxB int64 }
	sets := map[dkey]*frags{}
	var lostSet = map[dkey]bool{}
	for _, r := range rows {
		if r.Frag < 0 {
			continue
		}
		k := dkey{r.Src.String(), r.Dst.String(), r.IPID}
		if r.Lost {
			lostSet[k] = true
		}
		f := sets[k]
		if f == nil {
			f = &frags{minA: r.TA, maxA: r.TA, minB: r.TB, maxB: r.TB}
			sets[k] = f
		}
		f.minA, f.maxA = min(f.minA, r.TA), max(f.maxA, r.TA)
		f.minB, f.maxB = min(f.minB, r.TB), max(f.maxB, r.TB)
	}
	wants := map[int64]want{} // by t_from
	for _, r := range rows {
		if r.Frag < 0 && !r.Lost {
			wants[r.TA] = want{to: r.TB, firstDelay: r.TB - r.TA}
		}
	}
	fragmented := 0
	for k, f := range sets {
		if lostSet[k] {
			continue
		}
		fragmented++
		wants[f.maxA] = want{to: f.maxB, spanFrom: f.maxA - f.minA, spanTo: f.maxB - f.minB, firstDelay: f.minB - f.minA}
	}
	cfg, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	spoolDir := filepath.Join(dir, "spool")
	if _, err := Run(context.Background(), Options{Config: cfg, Files: []string{filepath.Join(dir, gen.FileHopA), filepath.Join(dir, gen.FileHopB)}, Spool: spoolDir}); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(spoolDir, "owd_packet", "*.tsv"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no owd_packet files: %v", err)
	}
	got, spanned, reordered := 0, 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		col := map[string]int{}
		for i, c := range strings.Split(strings.TrimPrefix(lines[0], "#"), "\t") {
			col[c] = i
		}
		for _, l := range lines[1:] {
			c := strings.Split(l, "\t")
			num := func(name string) int64 {
				v, err := strconv.ParseInt(c[col[name]], 10, 64)
				if err != nil {
					t.Fatalf("%s: %s: %v", f, name, err)
				}
				return v
			}
			from := num("t_from")
			w, ok := wants[from]
			g := want{to: num("t_to"), spanFrom: num("span_from_ns"), spanTo: num("span_to_ns"), firstDelay: num("first_delay_ns")}
			if !ok || g != w {
				t.Errorf("row at t_from %d: %+v, want %+v (%v)", from, g, w, ok)
				continue
			}
			got++
			if w.spanFrom != 0 {
				spanned++
				if w.firstDelay != g.to-from && w.spanTo != w.spanFrom {
					reordered++ // the first fragment's delay differs from the last one's
				}
			}
		}
	}
	t.Logf("%d rows, %d fragmented datagrams, %d with first and last delays apart", got, spanned, reordered)
	if got != len(wants) || spanned != fragmented || fragmented < 50 || reordered == 0 {
		t.Errorf("%d rows of %d measured packets; %d of %d fragmented datagrams, %d with first and last delays apart",
			got, len(wants), spanned, fragmented, reordered)
	}
}
