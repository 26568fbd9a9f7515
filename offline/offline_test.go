package offline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"

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
func TestFragmentSpans(t *testing.T) { fragmentSpans(t, false) }

// TestFragmentsDisturbedAtA: the same with hop A's capture rewritten — the
// fragments of every third fragmented datagram captured in reverse order
// (the first fragment, with the UDP header, last), a fragment of every
// fifth captured twice 1 µs apart, and a fragment of every seventh that
// reached B missing at A. The rows are the same (a datagram's fragments
// occupy the same capture times at A); the seventh ones are missed (seen
// at B only), not measured, not lost.
func TestFragmentsDisturbedAtA(t *testing.T) { fragmentSpans(t, true) }

// dkey is an IPv4 datagram: its addresses and identification.
type dkey struct {
	src, dst string
	id       int
}

func fragmentSpans(t *testing.T, disturb bool) {
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
	var missedA map[dkey]bool
	if disturb {
		missedA = disturbFragments(t, filepath.Join(dir, gen.FileHopA), lostSet)
	}
	wants := map[int64]want{} // by t_from
	for _, r := range rows {
		if r.Frag < 0 && !r.Lost {
			wants[r.TA] = want{to: r.TB, firstDelay: r.TB - r.TA}
		}
	}
	fragmented := 0
	lostDatagrams := len(lostSet)
	for k, f := range sets {
		if lostSet[k] || missedA[k] {
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
	sum, err := reports.ReadSpool(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	lostPackets := 0
	for _, r := range rows {
		if r.Frag < 0 && r.Lost {
			lostPackets++
		}
	}
	if len(sum.Lost) != lostPackets+lostDatagrams || sum.Missed != len(missedA) {
		t.Errorf("lost %d, missed %d; want %d + %d datagrams lost, %d missed", len(sum.Lost), sum.Missed, lostPackets, lostDatagrams, len(missedA))
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

// disturbFragments rewrites the capture at path: of the IPv4 fragmented
// datagrams in it, every third has its fragments' bytes put in reverse
// order over the same capture times, every fifth a fragment (not its
// last) captured again 1 µs later, and every seventh not in lost a
// fragment left out. It returns the datagrams with a fragment left out.
func disturbFragments(t *testing.T, path string, lost map[dkey]bool) map[dkey]bool {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	type pkt struct {
		ci   gopacket.CaptureInfo
		data []byte
		drop bool
		dup  bool
	}
	var pkts []pkt
	groups := map[dkey][]int{}
	var order []dkey
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, pkt{ci: ci, data: data})
		// Ethernet, IPv4: flags and fragment offset at 14+6.
		if len(data) < 34 || data[12] != 0x08 || data[13] != 0x00 || data[14]>>4 != 4 {
			continue
		}
		if binary.BigEndian.Uint16(data[20:])&0x3fff == 0 {
			continue
		}
		k := dkey{netip.AddrFrom4([4]byte(data[26:30])).String(), netip.AddrFrom4([4]byte(data[30:34])).String(), int(binary.BigEndian.Uint16(data[18:]))}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], len(pkts)-1)
	}
	missed := map[dkey]bool{}
	for n, k := range order {
		g := groups[k]
		if len(g) < 2 {
			t.Fatalf("datagram %v: %d fragments at A", k, len(g))
		}
		switch {
		case n%3 == 0:
			for i, j := 0, len(g)-1; i < j; i, j = i+1, j-1 {
				pkts[g[i]].data, pkts[g[j]].data = pkts[g[j]].data, pkts[g[i]].data
			}
		case n%5 == 0:
			pkts[g[0]].dup = true
		case n%7 == 0 && !lost[k]:
			pkts[g[1]].drop = true
			missed[k] = true
		}
	}
	var out bytes.Buffer
	w := pcapgo.NewWriterNanos(&out)
	if err := w.WriteFileHeader(r.Snaplen(), r.LinkType()); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if p.drop {
			continue
		}
		p.ci.CaptureLength, p.ci.Length = len(p.data), len(p.data) // the bytes may have moved
		if err := w.WritePacket(p.ci, p.data); err != nil {
			t.Fatal(err)
		}
		if p.dup {
			ci := p.ci
			ci.Timestamp = ci.Timestamp.Add(time.Microsecond)
			if err := w.WritePacket(ci, p.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return missed
}

// TestFlowAgeing: with the probes forgetting flow instances after 1 s
// without a packet (<analyses flowIdle>), generated flows whose packets
// are seconds apart are announced again and again under new ids — and
// every delay and loss is still the generator's, each flow once in the
// spool's flows file.
func TestFlowAgeing(t *testing.T) {
	gc := gen.DefaultConfig()
	// 0.6 packets a second per flow, and the offline probes age their
	// flows every 8192 packets read (watermarkEvery).
	gc.Seed, gc.Count, gc.Rate = 9, 20000, 5
	gc.Background = 0
	dir := t.TempDir()
	if _, _, err := gen.Generate(gc, dir); err != nil {
		t.Fatal(err)
	}
	truth, err := gen.ReadTruthFile(filepath.Join(dir, gen.FileTruth))
	if err != nil {
		t.Fatal(err)
	}
	truth = gen.Datagrams(truth)
	cfg, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Analyses.FlowIdle = time.Second
	spoolDir := filepath.Join(dir, "spool")
	res, err := Run(context.Background(), Options{Config: cfg, Files: []string{filepath.Join(dir, gen.FileHopA), filepath.Join(dir, gen.FileHopB)}, Spool: spoolDir})
	if err != nil {
		t.Fatal(err)
	}
	s, err := reports.ReadSpool(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, r := range truth {
		keys[fmt.Sprint(r.Src, ">", r.Dst, "/", r.Proto)] = true
	}
	bad := 0
	for _, r := range truth {
		d, ok := s.Packets[r.TA]
		if r.Lost != s.Lost[r.TA] || ok == r.Lost || (ok && d != r.Delay) {
			bad++
		}
	}
	flowRows := 0
	for _, ks := range s.FlowKeys {
		flowRows += len(ks)
	}
	t.Logf("%d packets, %d flow keys, %d flow definitions, %d aged; %d flows rows", len(truth), len(keys), res.Analyser.Flows, res.Analyser.Aged, flowRows)
	if bad != 0 || len(s.Packets)+len(s.Lost) != len(truth) {
		t.Errorf("%d packets whose delay or loss is not the truth's; %d measured + %d lost of %d", bad, len(s.Packets), len(s.Lost), len(truth))
	}
	if res.Analyser.Aged == 0 || res.Analyser.Flows <= uint64(2*len(keys)) {
		t.Errorf("%d flow definitions for %d keys at two probes, %d aged: the test does not age flows", res.Analyser.Flows, len(keys), res.Analyser.Aged)
	}
	if flowRows != len(keys) {
		t.Errorf("%d rows in the flows files, want one per key (%d)", flowRows, len(keys))
	}
}
