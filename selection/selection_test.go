package selection

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/sieve"
)

const sampleConf = `<tmon interval="1s">
  <collector name="c" address="127.0.0.1:1"/>
  <probe name="pa" id="1"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2"><interface name="b0" hop="B"/></probe>
  <flowClass name="site">
    <filter><match field="ip.src" value="10.1.0.0/16"/><match field="ip.dst" value="10.2.0.0/16"/></filter>
    <granular fields="ip.src ip.dst l4.dport"/>
    <oneWay hops="A B" sample="1/16"/>
  </flowClass>
</tmon>`

// TestSelectionSameAtEveryHop runs generated traffic through the real sieve
// at both hops and checks that exactly the same packets are selected at A
// and B (so sampling never makes a false loss), and that about 1/N are.
func TestSelectionSameAtEveryHop(t *testing.T) {
	cfg, err := conf.Parse(strings.NewReader(sampleConf), "sample.xml")
	if err != nil {
		t.Fatal(err)
	}
	gc := gen.DefaultConfig()
	gc.Seed, gc.Count, gc.Loss, gc.Dup, gc.Frag = 3, 60000, 0.01, 0.01, 0.02
	res, err := gen.Build(gc)
	if err != nil {
		t.Fatal(err)
	}
	byTA := map[int64]int{}
	byTB := map[int64]int{}
	for i, r := range res.Truth {
		byTA[r.TA] = i
		if !r.Lost {
			byTB[r.TB] = i
		}
	}
	sigs := func(frames []gen.Frame, idx map[int64]int) map[int]uint32 {
		sv, err := sieve.Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int]uint32{}
		var rec sieve.Record
		for _, f := range frames {
			i, ok := idx[f.TS]
			if !ok {
				continue
			}
			if wanted, _ := sv.Packet(f.Data, f.TS, 0, 1, &rec); wanted {
				out[i] = rec.Sig
			}
		}
		return out
	}
	sigA, sigB := sigs(res.A, byTA), sigs(res.B, byTB)
	if len(sigA) < 40000 {
		t.Fatalf("only %d packets signed at A", len(sigA))
	}
	for _, n := range []uint32{1, 2, 16, 256, 1000} {
		var sel, delivered, selDelivered int
		for i, sa := range sigA {
			s := Selected(sa, n)
			if s {
				sel++
			}
			sb, ok := sigB[i]
			if !ok {
				continue
			}
			delivered++
			if sb != sa {
				t.Fatalf("seq %d: signature %08x at A, %08x at B", i, sa, sb)
			}
			if Selected(sb, n) != s {
				t.Fatalf("n=%d seq %d: selected at A %v, at B %v", n, i, s, !s)
			} else if s {
				selDelivered++
			}
		}
		checkFraction(t, "generated traffic", n, sel, len(sigA))
		t.Logf("1/%d: %d of %d selected at A, %d of %d delivered packets selected at both hops", n, sel, len(sigA), selDelivered, delivered)
	}
	// Range selection (sampleRange): the same packets at both hops, 1/N of
	// them, and two disjoint ranges select disjoint packets whose union
	// is what their joint range selects.
	for _, r := range [][2]uint32{{0, 0x0fffffff}, {0x10000000, 0x1fffffff}, {0x80000000, 0xffffffff}, {0x12345678, 0x12345678 + 1<<24 - 1}} {
		n := uint32((1 << 32) / (uint64(r[1]-r[0]) + 1))
		sel := 0
		for i, sa := range sigA {
			s := SelectedRange(sa, r[0], r[1])
			if s {
				sel++
			}
			if sb, ok := sigB[i]; ok && SelectedRange(sb, r[0], r[1]) != s {
				t.Fatalf("range %#x-%#x seq %d: selected at A %v, at B %v", r[0], r[1], i, s, !s)
			}
		}
		checkFraction(t, "generated traffic, range", n, sel, len(sigA))
	}
	both, joint := 0, 0
	for _, sa := range sigA {
		a, b := SelectedRange(sa, 0, 0x0fffffff), SelectedRange(sa, 0x10000000, 0x1fffffff)
		if a && b {
			both++
		}
		if (a || b) != SelectedRange(sa, 0, 0x1fffffff) {
			t.Fatalf("signature %08x: halves %v %v, joint range %v", sa, a, b, !(a || b))
		}
		if a || b {
			joint++
		}
	}
	if both != 0 || joint == 0 {
		t.Errorf("disjoint ranges: %d packets in both, %d in either", both, joint)
	}
}

// TestSelectedRangeMatchesRatio: sample="1/N" is the range [0, ⌊(2³²−1)/N⌋]
// (conf.OneWay.HashRange), for N a power of two or not.
func TestSelectedRangeMatchesRatio(t *testing.T) {
	for _, n := range []uint32{2, 3, 16, 1000, 1 << 20} {
		hi := uint32((1<<32 - 1) / uint64(n))
		for _, sig := range []uint32{0, 1, 0x12345678, 0xdeadbeef, 0xffffffff} {
			for k := range uint32(4096) {
				s := sig*2654435761 + k
				if Selected(s, n) != SelectedRange(s, 0, hi) {
					t.Fatalf("n=%d sig %08x: Selected %v, SelectedRange(0, %#x) %v", n, s, Selected(s, n), hi, !Selected(s, n))
				}
			}
		}
		// At the boundary itself, with the mixed hash inverted: the
		// hashes hi and hi+1.
		if !(uint64(hi)*uint64(n) < 1<<32) || uint64(hi+1)*uint64(n) < 1<<32 {
			t.Fatalf("n=%d: boundary %#x", n, hi)
		}
	}
}

// checkFraction fails when k of m selected is more than 4.5 binomial
// standard deviations away from m/n.
func checkFraction(t *testing.T, what string, n uint32, k, m int) {
	t.Helper()
	p := 1 / float64(n)
	sd := math.Sqrt(float64(m) * p * (1 - p))
	if d := math.Abs(float64(k) - float64(m)*p); d > 4.5*sd+1e-9 {
		t.Errorf("%s, 1/%d: %d of %d selected, expected %.0f ± %.0f", what, n, k, m, float64(m)*p, sd)
	}
}

// TestSelectionUnbiasedOnStructuredPayloads: CRC-32C is linear, so
// signatures of packets that differ only by a counter are structured. The
// mixed selection still takes 1/N of them, also for N a power of two, and
// also within each residue class of the counter.
func TestSelectionUnbiasedOnStructuredPayloads(t *testing.T) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	var buf [64]byte
	const m = 1 << 18
	for _, n := range []uint32{2, 16, 256} {
		sel := 0
		var perResidue [8]int
		for i := range m {
			binary.BigEndian.PutUint64(buf[20:], uint64(i))
			if Selected(crc32.Checksum(buf[:], tab), n) {
				sel++
				perResidue[i%8]++
			}
		}
		checkFraction(t, "counter payloads", n, sel, m)
		for r, k := range perResidue {
			checkFraction(t, "counter payloads ≡ "+string(rune('0'+r))+" mod 8", n, k, m/8)
		}
	}
	if !Selected(0x12345678, 0) || !Selected(0x12345678, 1) {
		t.Error("n 0 and 1 must select every packet")
	}
}

func TestSelectedNoAllocs(t *testing.T) {
	s, k := uint32(1), 0
	if n := testing.AllocsPerRun(1000, func() {
		s = s*2654435761 + 1
		if Selected(s, 16) {
			k++
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// Shedding keeps 2⁻ᵏ of the packets at level k, nests (a packet kept at a
// deeper level is kept at every shallower one), and picks packets
// independently of the static 1-in-N selection.
func TestShed(t *testing.T) {
	const n = 1 << 18
	for level := uint8(0); level <= MaxShedLevel; level++ {
		kept, both := 0, 0
		for i := range uint32(n) {
			sig := i * 2654435761 // distinct, well spread
			if !Shed(sig, level) {
				kept++
				if level > 0 && Shed(sig, level-1) {
					t.Fatalf("sig %08x kept at level %d but shed at %d", sig, level, level-1)
				}
				if Selected(sig, 4) {
					both++
				}
			}
		}
		want := float64(n) / float64(uint(1)<<level)
		if d := float64(kept) - want; d > 0.02*want || d < -0.02*want {
			t.Errorf("level %d: kept %d of %d, want about %.0f", level, kept, n, want)
		}
		// Independent of the 1-in-4 sample: a quarter of the kept ones,
		// within 4 standard deviations of a binomial draw.
		if d, sd := float64(both)-float64(kept)/4, math.Sqrt(float64(kept)*3/16); d > 4*sd || d < -4*sd {
			t.Errorf("level %d: %d of %d kept also in the 1-in-4 sample, want about a quarter", level, both, kept)
		}
	}
}
