package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/reports"
)

// The class measured in the generated-traffic test: IPv4 UDP, and TCP to
// ports 5000–5999, from 10.1/16 to 10.2/16 (the generator's measured
// flows), one instance per (src, dst, dport). The IPv6 flows stay out, so
// the test also proves that what no class wants is not measured.
const genConf = `<tmon version="gen" interval="%s">
  <transport maxPduSize="1200" maxBuildTime="100ms" minGap="200us" heartbeat="500ms"/>
  <collector name="c1" address="127.0.0.1:%d"/>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2" key="f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"><interface name="b0" hop="B"/></probe>
` + siteClass

// siteClass is the measured class of the generated-traffic tests and the end
// of their configurations; its one %s takes the hop pair's slices.
const siteClass = `  <flowClass name="site">
    <filter>
      <match field="ip.src" value="10.1.0.0/16"/>
      <match field="ip.dst" value="10.2.0.0/16"/>
      <or>
        <match field="ip.proto" value="udp"/>
        <and><match field="ip.proto" value="tcp"/><match field="l4.dport" value="5000-5999"/></and>
      </or>
    </filter>
    <granular fields="ip.src ip.dst l4.dport"/>
    <oneWay hops="A B" maxTransit="1s" timeout="2s" perPacket="true">
      <hopPair from="A" to="B" slices="%s"/>
    </oneWay>
  </flowClass>
</tmon>`

var genSlices = []time.Duration{5 * time.Millisecond, 18 * time.Millisecond, 19 * time.Millisecond, 20 * time.Millisecond,
	21 * time.Millisecond, 22 * time.Millisecond, 30 * time.Millisecond, 60 * time.Millisecond}

func slicesAttr() string {
	s := ""
	for i, d := range genSlices {
		if i > 0 {
			s += " "
		}
		s += d.String()
	}
	return s
}

// inClass is the class filter, written independently of the sieve.
func inClass(r gen.TruthRow) bool {
	if !r.Src.Is4() || r.Src.As4()[0] != 10 || r.Src.As4()[1] != 1 || r.Dst.As4()[0] != 10 || r.Dst.As4()[1] != 2 {
		return false
	}
	return r.Proto == 17 || (r.Proto == 6 && r.DstPort >= 5000 && r.DstPort <= 5999)
}

// TestGeneratedPath replays generated traffic (delays from a distribution,
// loss, duplicates, reordering, fragments, deliberate signature clashes)
// through two probe processes and a collector, and checks every figure of
// the spool against the generator's ground truth.
func TestGeneratedPath(t *testing.T) {
	for _, tc := range []struct {
		name      string
		delay     string
		interval  time.Duration
		frag, dup float64
	}{
		{"uniform", "uniform:18ms:22ms", 2 * time.Second, 0.02, 0.003},
		{"normal", "normal:20ms:3ms", 5 * time.Second, 0.02, 0.003},
		// Half the IPv4 UDP datagrams fragmented, their fragments lost,
		// duplicated and reordered (jitter ≫ the 12 µs between fragments)
		// one by one: every datagram measured or lost exactly.
		{"fragments", "uniform:18ms:22ms", 2 * time.Second, 0.5, 0.02},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gc := gen.DefaultConfig()
			gc.Seed = 7
			gc.Count = 12000
			gc.Rate = 3000
			d, err := gen.ParseDist(tc.delay)
			if err != nil {
				t.Fatal(err)
			}
			gc.Delay = d
			gc.Loss, gc.Dup, gc.Frag, gc.Clashes, gc.IPv6 = 0.01, tc.dup, tc.frag, 6, 0.1
			dir, truth := generate(t, gc)
			spoolDir := runPath(t, fmt.Sprintf(genConf, tc.interval, freePort(t), slicesAttr()), map[string]string{
				"pa": filepath.Join(dir, "hop-a.pcap"),
				"pb": filepath.Join(dir, "hop-b.pcap"),
			})
			s, err := reports.ReadSpool(spoolDir)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstTruth(t, s, truth, tc.interval)
		})
	}
}

func checkAgainstTruth(t *testing.T, s *reports.Summary, truth []gen.TruthRow, interval time.Duration) {
	t.Helper()
	// tmon reassembles fragments: a fragmented datagram is one packet,
	// measured when its last fragment is seen (see package reassembly).
	truth = gen.Datagrams(truth)
	var want struct {
		count, lost, dups, clashPkts, reordered int
		hist                                    []uint64
		min, max                                int64
		sum                                     int64
	}
	want.hist = make([]uint64, len(genSlices)+1)
	type flowKey struct {
		src, dst string
		dport    uint16
	}
	type pkt struct{ a, b int64 }
	perFlowInterval := map[[2]any][]pkt{}
	for _, r := range truth {
		if !inClass(r) {
			if _, ok := s.Packets[r.TA]; ok {
				t.Errorf("packet outside the class measured: %+v", r)
			}
			continue
		}
		if r.Clash >= 0 {
			want.clashPkts++
		}
		if r.Lost {
			want.lost++
			if !s.Lost[r.TA] {
				t.Errorf("lost packet seq %d not reported lost", r.Seq)
			}
			continue
		}
		if r.DupTB != 0 {
			want.dups++
		}
		want.count++
		got, ok := s.Packets[r.TA]
		if !ok {
			t.Errorf("seq %d (delay %d) not measured", r.Seq, r.Delay)
		} else if got != r.Delay {
			t.Errorf("seq %d: delay %d, truth %d", r.Seq, got, r.Delay)
		}
		i := sort.Search(len(genSlices), func(i int) bool { return int64(genSlices[i]) > r.Delay })
		want.hist[i]++
		if want.count == 1 || r.Delay < want.min {
			want.min = r.Delay
		}
		want.max = max(want.max, r.Delay)
		want.sum += r.Delay
		k := [2]any{flowKey{r.Src.String(), r.Dst.String(), r.DstPort}, r.TA / int64(interval)}
		perFlowInterval[k] = append(perFlowInterval[k], pkt{r.TA, r.TB})
	}
	// Reordering within each flow and interval (RFC 4737): a packet is
	// reordered when it reaches B after a packet sent later.
	for _, ps := range perFlowInterval {
		slices.SortFunc(ps, func(x, y pkt) int { return int(x.b - y.b) })
		var maxA int64
		for i, p := range ps {
			if i > 0 && p.a < maxA {
				want.reordered++
			}
			maxA = max(maxA, p.a)
		}
	}
	if len(s.Pairs) != 1 {
		t.Fatalf("pairs %d, want 1", len(s.Pairs))
	}
	p := s.Pairs[0]
	if int(p.Count) != want.count || len(s.Packets) != want.count {
		t.Errorf("delays measured %d (per-packet %d), truth %d", p.Count, len(s.Packets), want.count)
	}
	if int(p.Lost) != want.lost || len(s.Lost) != want.lost {
		t.Errorf("lost %d (per-packet %d), truth %d", p.Lost, len(s.Lost), want.lost)
	}
	if p.Missed != 0 || s.Missed != 0 {
		t.Errorf("missed %d/%d, want 0", p.Missed, s.Missed)
	}
	if int(p.Duplicate) != want.dups {
		t.Errorf("duplicates %d, truth %d", p.Duplicate, want.dups)
	}
	if int(p.Reordered) != want.reordered {
		t.Errorf("reordered %d, truth %d", p.Reordered, want.reordered)
	}
	if want.clashPkts == 0 {
		t.Fatal("generator made no clash pairs")
	}
	if int(p.Clashes) != want.clashPkts/2 {
		t.Errorf("clashes %d, truth %d clash pairs", p.Clashes, want.clashPkts/2)
	}
	if p.Min != want.min || p.Max != want.max || int64(p.SumNs) != want.sum {
		t.Errorf("min/max/sum %d/%d/%.0f, truth %d/%d/%d", p.Min, p.Max, p.SumNs, want.min, want.max, want.sum)
	}
	got := make([]uint64, len(want.hist))
	for _, sl := range p.Slices {
		got[sl.Index] = sl.Count
	}
	if !slices.Equal(got, want.hist) {
		t.Errorf("histogram %v, truth %v", got, want.hist)
	}
	t.Logf("checked %d delays, %d lost, %d duplicates, %d reordered, %d clash pairs against the truth", want.count, want.lost, want.dups, want.reordered, want.clashPkts/2)
}
