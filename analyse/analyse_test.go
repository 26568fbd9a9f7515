package analyse

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/sieve"
)

type recorder struct {
	defs []pdu.FlowDef
	sigs []pdu.Sighting
	exp  []uint8
}

func (r *recorder) FlowDef(d pdu.FlowDef) { r.defs = append(r.defs, d) }
func (r *recorder) Sighting(s pdu.Sighting, exp uint8, _ bool) {
	r.sigs = append(r.sigs, s)
	r.exp = append(r.exp, exp)
}

// testConfig: probe 0 has interfaces a0 (hop A) and x0 (no hop); class 0 is
// one-way A→B split on ip.src/l4.dport at 1µs resolution; class 1 has no
// one-way measurement.
func testConfig() *conf.Config {
	return &conf.Config{
		Probes: []conf.Probe{
			{Name: "p", ID: 1, Interfaces: []conf.Interface{{Name: "a0", Hop: "A"}, {Name: "x0"}}},
			{Name: "q", ID: 2, Interfaces: []conf.Interface{{Name: "b0", Hop: "B"}}},
		},
		Classes: []conf.Class{
			{Name: "ow", Granular: flow.Set(0).With(flow.Src).With(flow.DstPort), OneWay: &conf.OneWay{
				Hops: []conf.Hop{
					{Name: "A", Interfaces: []conf.ProbeInterface{{Probe: 0, Interface: 0}}},
					{Name: "B", Interfaces: []conf.ProbeInterface{{Probe: 1, Interface: 0}}},
				},
				Resolution: time.Microsecond, Size: true,
			}},
			{Name: "count", Index: 1},
		},
	}
}

func rec(ts int64, iface uint8, src string, dport uint16, classes uint64) sieve.Record {
	r := sieve.Record{TS: ts, Iface: iface, IPVersion: 4, DstPort: dport, Classes: classes, Sig: uint32(ts), Length: 100, Proto: 17}
	a := netip.MustParseAddr(src).As4()
	copy(r.Src[:], a[:])
	return r
}

func TestFlowsAndSightings(t *testing.T) {
	out := &recorder{}
	a, err := New(testConfig(), 0, out, Config{})
	if err != nil {
		t.Fatal(err)
	}
	pkts := []sieve.Record{
		rec(1_000_001_999, 0, "10.0.0.1", 5000, 3), // new flow in class 0 and 1
		rec(1_000_002_000, 0, "10.0.0.1", 5000, 3), // same flows
		rec(1_000_003_000, 0, "10.0.0.2", 5000, 1), // new instance of class 0
		rec(1_000_004_000, 1, "10.0.0.1", 5000, 1), // interface without hop: flow, no sighting
		rec(-1_500, 0, "10.0.0.1", 5000, 1),        // negative time quantises downwards
	}
	for i := range pkts {
		a.Packet(&pkts[i])
	}
	if len(out.defs) != 4 {
		t.Fatalf("flow defs = %d, want 4: %+v", len(out.defs), out.defs)
	}
	if out.defs[0].Key.Class != 0 || out.defs[1].Key.Class != 1 || out.defs[3].Iface != 1 {
		t.Errorf("unexpected defs %+v", out.defs)
	}
	if got := out.defs[0].Key.Src; got != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("key src = %v", got)
	}
	wantTS := []int64{1_000_001_000, 1_000_002_000, 1_000_003_000, -2_000}
	wantFlow := []uint32{0, 0, 2, 0}
	if len(out.sigs) != len(wantTS) {
		t.Fatalf("sightings = %d, want %d", len(out.sigs), len(wantTS))
	}
	for i, s := range out.sigs {
		if s.TS != wantTS[i] || s.Flow != wantFlow[i] || s.Size != 100 || out.exp[i] != 3 {
			t.Errorf("sighting %d = %+v exp %d, want ts %d flow %d size 100 exp 3", i, s, out.exp[i], wantTS[i], wantFlow[i])
		}
	}
}

func TestLaterFragmentsUsePortlessFlow(t *testing.T) {
	out := &recorder{}
	a, _ := New(testConfig(), 0, out, Config{})
	first := rec(10, 0, "10.0.0.9", 5001, 1)
	first.Flags = sieve.FlagFragment | sieve.FlagMoreFrags
	later := rec(20, 0, "10.0.0.9", 0, 1)
	later.Flags = sieve.FlagFragment | sieve.FlagNoL4
	later.FragOff = 185
	a.Packet(&later) // before its first fragment: no waiting, same decision everywhere
	a.Packet(&first)
	if len(out.sigs) != 2 || len(out.defs) != 2 {
		t.Fatalf("sightings %+v defs %+v", out.sigs, out.defs)
	}
	if out.defs[0].Key.DstPort != 0 || out.defs[1].Key.DstPort != 5001 {
		t.Errorf("later fragment flow %+v, first fragment flow %+v", out.defs[0].Key, out.defs[1].Key)
	}
	if a.Stats().Fragments != 1 {
		t.Errorf("fragments %d", a.Stats().Fragments)
	}
}

func TestICMPErrorNotSighted(t *testing.T) {
	out := &recorder{}
	a, _ := New(testConfig(), 0, out, Config{})
	r := rec(1, 0, "10.0.0.1", 5000, 1)
	r.Flags = sieve.FlagICMPError
	a.Packet(&r)
	if len(out.sigs) != 0 || a.Stats().ICMPErrors != 1 {
		t.Errorf("ICMP error sighted: %+v", out.sigs)
	}
}

type discard struct{}

func (discard) FlowDef(pdu.FlowDef)                {}
func (discard) Sighting(pdu.Sighting, uint8, bool) {}

func TestPacketDoesNotAllocate(t *testing.T) {
	a, _ := New(testConfig(), 0, discard{}, Config{})
	r := rec(1, 0, "10.0.0.1", 5000, 3)
	a.Packet(&r)
	if n := testing.AllocsPerRun(1000, func() { r.TS++; a.Packet(&r) }); n != 0 {
		t.Errorf("Packet allocates %.1f times per packet", n)
	}
}

func BenchmarkPacket(b *testing.B) {
	a, _ := New(testConfig(), 0, discard{}, Config{})
	recs := make([]sieve.Record, 64)
	for i := range recs {
		recs[i] = rec(int64(i), 0, "10.0.0.1", uint16(5000+i%16), 3)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.Packet(&recs[i&63])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

// TestInstKeyMatchesKey: two records share a flow instance (instKey)
// exactly when they have the same flow.Key and interface, for random
// records over small value ranges (so that collisions are frequent) and
// random sets of granular fields, IPv4 and IPv6 mixed.
func TestInstKeyMatchesKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]sieve.Record, 80)
	for i := range recs {
		r := &recs[i]
		r.IPVersion = uint8(4 + 2*rng.IntN(2))
		n := 4
		if r.IPVersion == 6 {
			n = 16
		}
		for j := range n {
			r.Src[j] = byte(rng.IntN(2))
			r.Dst[j] = byte(rng.IntN(2))
		}
		r.SrcPort, r.DstPort, r.VLAN = uint16(rng.IntN(2)), uint16(rng.IntN(2)), uint16(rng.IntN(2))
		r.FlowLabel, r.Proto, r.DSCP = uint32(rng.IntN(2)), uint8(rng.IntN(2)), uint8(rng.IntN(2))
		r.ICMPType, r.ICMPCode, r.Iface = uint8(rng.IntN(2)), uint8(rng.IntN(2)), uint8(rng.IntN(2))
	}
	equal := 0
	for range 200 {
		g := flow.Set(rng.Uint32()) & flow.Set(1<<flow.Src|1<<flow.Dst|1<<flow.SrcPort|1<<flow.DstPort|1<<flow.VLAN|
			1<<flow.FlowLabel|1<<flow.Proto|1<<flow.DSCP|1<<flow.ICMPType|1<<flow.ICMPCode|1<<flow.IPVersion)
		for i := range recs {
			for j := range i {
				a, b := &recs[i], &recs[j]
				same := Key(a, 3, g) == Key(b, 3, g) && a.Iface == b.Iface
				if got := newInstKey(a, 3, g) == newInstKey(b, 3, g); got != same {
					t.Fatalf("granular %v: instKey equal %v, flow.Key and iface equal %v:\n%+v\n%+v", g, got, same, a, b)
				}
				if same {
					equal++
				}
			}
		}
	}
	if equal < 1000 {
		t.Fatalf("only %d equal pairs: the test does not exercise equality", equal)
	}
}

// TestFlowMemoryPer100k quotes what the analyser's table of flow
// instances takes per instance (bounded by <analyses flowMaxInstances>).
func TestFlowMemoryPer100k(t *testing.T) {
	a, err := New(testConfig(), 0, discard{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range 100_000 {
		r := rec(int64(i), 0, "10.0.0.1", uint16(i), 1)
		r.Src[1], r.Src[2] = byte(i>>16), byte(i>>8)
		a.Packet(&r)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if a.Stats().Flows != 100_000 {
		t.Fatalf("%d flows", a.Stats().Flows)
	}
	per := float64(m1.HeapAlloc-m0.HeapAlloc) / 100_000
	t.Logf("analyser: %.0f bytes per flow instance, %.1f MB per 100 k", per, per*100_000/1e6)
	if per > 300 {
		t.Errorf("%.0f bytes per flow instance", per)
	}
}

// A flood of new flow instances keeps the table at FlowMaxInstances;
// every sighting's flow was announced before it, and an instance forgotten
// to make room is announced again, under a new id, when it comes back.
func TestFlowFloodBounded(t *testing.T) {
	cfg := testConfig()
	cfg.Analyses.FlowMaxInstances = 1000
	r := &recorder{}
	a, err := New(cfg, 0, r, Config{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50_000
	for i := range n {
		p := rec(int64(i), 0, "10.0.0.1", uint16(i), 1)
		p.Src[1], p.Src[2] = byte(i>>16), byte(i>>8)
		a.Packet(&p)
		if a.Len() > 1000 || len(a.ents) > 1000 {
			t.Fatalf("%d instances, %d entries", a.Len(), len(a.ents))
		}
	}
	if st := a.Stats(); st.Flows != n || st.Evicted != n-1000 {
		t.Errorf("stats %+v", st)
	}
	defined := map[uint32]bool{}
	di := 0
	for _, s := range r.sigs {
		for ; di < len(r.defs) && !defined[s.Flow]; di++ {
			defined[r.defs[di].ID] = true
		}
		if !defined[s.Flow] {
			t.Fatalf("sighting of flow %d before its definition", s.Flow)
		}
	}
	// The first flow was evicted long ago: it comes back under a new id
	// with the same key.
	p := rec(n, 0, "10.0.0.1", 0, 1)
	defs := len(r.defs)
	a.Packet(&p)
	if len(r.defs) != defs+1 || r.defs[defs].ID != n || r.defs[defs].Key != r.defs[0].Key {
		t.Errorf("the first flow back: %+v (first %+v)", r.defs[defs:], r.defs[0])
	}
}

// An instance without a packet for FlowIdle is forgotten at the next
// Advance; one with packets is kept.
func TestFlowAgeing(t *testing.T) {
	cfg := testConfig()
	cfg.Analyses.FlowIdle = 10 * time.Second
	r := &recorder{}
	a, err := New(cfg, 0, r, Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := int64(time.Hour)
	quiet, busy := rec(s, 0, "10.0.0.1", 1, 1), rec(s, 0, "10.0.0.2", 2, 1)
	a.Packet(&quiet)
	for i := range 30 {
		busy.TS = s + int64(i)*int64(time.Second)
		a.Packet(&busy)
		a.Advance(busy.TS)
	}
	if a.Len() != 1 || a.Stats().Aged != 1 {
		t.Fatalf("%d instances, %d aged; want the busy one only", a.Len(), a.Stats().Aged)
	}
	quiet.TS = busy.TS
	a.Packet(&quiet)
	if len(r.defs) != 3 || r.defs[2].ID != 2 || r.defs[2].Key != r.defs[0].Key {
		t.Errorf("definitions %+v", r.defs)
	}
}
