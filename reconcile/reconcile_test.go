package reconcile

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
)

// t0 is a whole second: slot boundaries fall on t0 + k·1s.
const t0 = 1_795_403_700 * int64(time.Second)

// collectSink keeps deep copies of the intervals it is given.
type collectSink struct {
	ivs  []Interval
	fail int // fail this many calls first
}

func (s *collectSink) WriteInterval(iv *Interval) error {
	if s.fail > 0 {
		s.fail--
		return errors.New("disk full")
	}
	c := *iv
	c.Stats = slices.Clone(iv.Stats)
	for i := range c.Stats {
		c.Stats[i].Hist = slices.Clone(c.Stats[i].Hist)
	}
	c.Packets = slices.Clone(iv.Packets)
	c.Incomplete = slices.Clone(iv.Incomplete)
	s.ivs = append(s.ivs, c)
	return nil
}

// stat returns the stats of flow and pair in the interval starting at start.
func (s *collectSink) stat(t *testing.T, start int64, flow uint32, pair int) PairStats {
	t.Helper()
	for _, iv := range s.ivs {
		if iv.Start != start {
			continue
		}
		for _, st := range iv.Stats {
			if st.Flow == flow && st.Pair == pair {
				return st
			}
		}
	}
	return PairStats{}
}

// path3 is a per-packet class over hops A, B, C with every pair, and a
// 2-hop class X, Y with the default pair.
func path3() *conf.Config {
	return &conf.Config{Interval: time.Second, Classes: []conf.Class{
		{Name: "abc", Index: 0, OneWay: &conf.OneWay{
			Hops: hops("A", "B", "C"), MaxTransit: 100 * time.Millisecond, Timeout: 200 * time.Millisecond,
			DupWindow: time.Millisecond, PerPacket: true,
			Pairs: []conf.HopPair{
				{From: 0, To: 1, Slices: durs(10 * ms)},
				{From: 1, To: 2, Slices: durs(10 * ms)},
				{From: 0, To: 2, Slices: durs(10*ms, 20*ms)},
			},
		}},
		{Name: "xy", Index: 1, OneWay: &conf.OneWay{
			Hops: hops("X", "Y"), MaxTransit: 100 * time.Millisecond, Timeout: 200 * time.Millisecond,
			DupWindow: time.Millisecond,
		}},
	}}
}

func newPath3(t *testing.T) (*Reconciler, *collectSink) {
	t.Helper()
	sink := &collectSink{}
	r, err := New(path3(), sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for f, c := range []int{0, 0, 1, 1} {
		if err := r.AddFlow(uint32(f), c); err != nil {
			t.Fatal(err)
		}
	}
	return r, sink
}

func flush(t *testing.T, r *Reconciler) {
	t.Helper()
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
}

type counts struct{ n, lost, missed, dup, reo, clash uint64 }

func countsOf(st PairStats) counts {
	return counts{st.Count, st.Lost, st.Missed, st.Duplicate, st.Reordered, st.Clashes}
}

func TestLostVersusMissed(t *testing.T) {
	r, sink := newPath3(t)
	add := func(sig uint32, hop uint8, ts int64) { r.Add(Sighting{Flow: 0, Hop: hop, Sig: sig, TS: ts}) }
	add(1, 0, t0+100*ms) // A, B seen: lost after B
	add(1, 1, t0+110*ms)
	add(2, 0, t0+200*ms) // A, C seen: B missed
	add(2, 2, t0+220*ms)
	add(3, 1, t0+305*ms) // B, C seen: A missed
	add(3, 2, t0+315*ms)
	add(4, 0, t0+400*ms) // A only: lost after A
	flush(t, r)

	// Per pair: (A→B, B→C, A→C). A packet seen at both hops of a pair
	// has its delay there measured, whatever happened elsewhere (RFC 5644).
	want := [3]counts{
		{n: 1, lost: 1, missed: 2}, // 1 measured (A, B seen); 4 lost; 2 (B absent) and 3 (A absent) missed
		{n: 1, lost: 1, missed: 1}, // 3 measured (B, C seen); 1 lost (B seen, C not); 2 missed (B absent)
		{n: 1, lost: 2, missed: 1}, // 2 measured (A, C seen); 1 and 4 lost; 3 missed (A absent)
	}
	for p, w := range want {
		if got := countsOf(sink.stat(t, t0, 0, p)); got != w {
			t.Errorf("pair %d: %+v, want %+v", p, got, w)
		}
	}
	iv := sink.ivs[0]
	var kinds []string
	for _, in := range iv.Incomplete {
		k := "missed"
		if in.Lost {
			k = "lost"
		}
		kinds = append(kinds, k)
	}
	if !slices.Equal(kinds, []string{"lost", "missed", "missed", "lost"}) {
		t.Errorf("incomplete rows %v", kinds)
	}
	if c := r.Counters(); c.Lost != 2 || c.Missed != 2 || c.Completed != 0 || c.Live != 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestCompleteOutOfOrderAndAlternativeHop(t *testing.T) {
	r, sink := newPath3(t)
	// Hop B is watched by two probes (alternative routes): the packet is
	// seen at B by one of them, which delivers before the probe at A.
	r.Add(Sighting{Flow: 0, Hop: 2, Sig: 7, TS: t0 + 25*ms})
	r.Add(Sighting{Flow: 0, Hop: 1, Sig: 7, TS: t0 + 12*ms})
	r.Add(Sighting{Flow: 0, Hop: 0, Sig: 7, TS: t0 + 1*ms})
	// The second alternative saw the same packet too: a duplicate at B.
	r.Add(Sighting{Flow: 0, Hop: 1, Sig: 7, TS: t0 + 12*ms + 300_000})
	flush(t, r)
	ab, bc, ac := sink.stat(t, t0, 0, 0), sink.stat(t, t0, 0, 1), sink.stat(t, t0, 0, 2)
	if ab.Count != 1 || ab.Sum != 11*ms || ab.Duplicate != 1 || ab.Hist[1] != 1 {
		t.Errorf("A→B %+v", ab)
	}
	if bc.Count != 1 || bc.Sum != 13*ms || bc.Duplicate != 0 || bc.Hist[1] != 1 {
		t.Errorf("B→C %+v", bc)
	}
	if ac.Count != 1 || ac.Min != 24*ms || ac.Max != 24*ms || !slices.Equal(ac.Hist, []uint64{0, 0, 1}) {
		t.Errorf("A→C %+v", ac)
	}
	want := []Packet{
		{Flow: 0, Class: 0, Pair: 0, Sig: 7, From: t0 + 1*ms, To: t0 + 12*ms},
		{Flow: 0, Class: 0, Pair: 1, Sig: 7, From: t0 + 12*ms, To: t0 + 25*ms},
		{Flow: 0, Class: 0, Pair: 2, Sig: 7, From: t0 + 1*ms, To: t0 + 25*ms},
	}
	if !slices.Equal(sink.ivs[0].Packets, want) {
		t.Errorf("packets %+v", sink.ivs[0].Packets)
	}
	if c := r.Counters(); c.Completed != 1 || c.Duplicates != 1 || c.Lost+c.Missed != 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestDuplicates(t *testing.T) {
	r, sink := newPath3(t)
	x := func(hop uint8, ts int64) { r.Add(Sighting{Flow: 2, Hop: hop, Sig: 9, TS: ts}) }
	x(0, t0+10*ms)
	x(0, t0+10*ms+500_000) // at X within 1 ms: duplicate, no pair ends at X
	x(1, t0+30*ms)         // completes
	x(1, t0+30*ms+999_999) // after completion, within the window: still a duplicate
	x(1, t0+32*ms)         // beyond the window: another packet, a clash
	flush(t, r)
	st := sink.stat(t, t0, 2, 0)
	if got, want := countsOf(st), (counts{n: 1, dup: 1, clash: 1, missed: 1}); got != want {
		t.Errorf("X→Y %+v, want %+v", got, want)
	}
	if c := r.Counters(); c.Duplicates != 2 || c.Clashes != 1 || c.Completed != 1 || c.Missed != 1 {
		t.Errorf("counters %+v", c)
	}
}

func TestClashNearestInTime(t *testing.T) {
	r, sink := newPath3(t)
	x := func(hop uint8, ts int64) { r.Add(Sighting{Flow: 3, Hop: hop, Sig: 0xabcd, TS: ts}) }
	// Two packets with one signature, 50 ms apart, delays 10 and 12 ms;
	// the probe at X delivers both before the probe at Y.
	x(0, t0+100*ms)
	x(0, t0+150*ms) // meets the first record: clash
	x(1, t0+110*ms) // nearest: the first
	x(1, t0+162*ms) // nearest: the second
	flush(t, r)
	st := sink.stat(t, t0, 3, 0)
	if st.Count != 2 || st.Sum != 22*ms || st.Min != 10*ms || st.Max != 12*ms || st.Clashes != 1 || st.Missed+st.Lost != 0 {
		t.Errorf("X→Y %+v", st)
	}
	// Outside MaxTransit the same signature is another packet, no clash.
	r2, sink2 := newPath3(t)
	r2.Add(Sighting{Flow: 3, Hop: 0, Sig: 1, TS: t0})
	r2.Add(Sighting{Flow: 3, Hop: 1, Sig: 1, TS: t0 + 101*ms})
	flush(t, r2)
	if got := countsOf(sink2.stat(t, t0, 3, 0)); got != (counts{lost: 1, missed: 1}) {
		t.Errorf("far apart: %+v", got)
	}
}

// Clashing packets sent closer together than the delay: the nearest time
// would pair them the wrong way round; path order and the usual transit do
// not. And when the first of two clashing packets is lost, the second's
// sighting must not complete the first's record.
func TestClashCloserThanDelay(t *testing.T) {
	for _, order := range []string{"X first", "Y first", "interleaved"} {
		r, sink := newPath3(t)
		add := func(hop uint8, sig uint32, ts int64) { r.Add(Sighting{Flow: 3, Hop: hop, Sig: sig, TS: ts}) }
		// Ten packets set the usual transit X→Y to 20 ms.
		for i := range int64(10) {
			add(0, uint32(100+i), t0+i*ms)
			add(1, uint32(100+i), t0+i*ms+20*ms)
		}
		// Two packets with one signature, 2 ms apart (beyond the 1 ms
		// duplicate window), delays 20 and 21 ms.
		x1, x2, y1, y2 := t0+300*ms, t0+302*ms, t0+320*ms, t0+323*ms
		switch order {
		case "X first":
			add(0, 7, x1)
			add(0, 7, x2)
			add(1, 7, y1)
			add(1, 7, y2)
		case "Y first":
			add(1, 7, y1)
			add(1, 7, y2)
			add(0, 7, x1)
			add(0, 7, x2)
		case "interleaved":
			add(0, 7, x1)
			add(1, 7, y1)
			add(0, 7, x2)
			add(1, 7, y2)
		}
		// The first of another clashing pair is lost.
		add(0, 8, t0+500*ms)
		add(0, 8, t0+560*ms)
		add(1, 8, t0+580*ms)
		flush(t, r)
		// Wrong pairings give 18 and 23 ms, or 80 ms.
		st := sink.stat(t, t0, 3, 0)
		if st.Count != 13 || st.Sum != 261*ms || st.Min != 20*ms || st.Max != 21*ms || st.Lost != 1 {
			t.Errorf("%s: count %d sum %d min %d max %d lost %d; want 13, 261 ms, 20 ms, 21 ms, 1", order, st.Count, st.Sum, st.Min, st.Max, st.Lost)
		}
	}
}

// A sighting out of path order with every candidate (here: the second
// packet's X seen after the first packet's Y, before the first packet's X,
// as PDUs retried under loss arrive) opens a record of its own once the
// class has learned its transit, instead of making a negative delay.
func TestClashOutOfOrderRefused(t *testing.T) {
	r, sink := newPath3(t)
	add := func(hop uint8, sig uint32, ts int64) { r.Add(Sighting{Flow: 3, Hop: hop, Sig: sig, TS: ts}) }
	for i := range int64(20) {
		add(0, uint32(100+i), t0+i*ms)
		add(1, uint32(100+i), t0+i*ms+20*ms)
	}
	add(1, 7, t0+318*ms) // first packet at Y
	add(0, 7, t0+360*ms) // second packet at X: after the first's Y
	add(0, 7, t0+300*ms) // first packet at X
	add(1, 7, t0+380*ms) // second packet at Y
	flush(t, r)
	st := sink.stat(t, t0, 3, 0)
	if st.Count != 22 || st.Min != 18*ms || st.Max != 20*ms || st.Lost+st.Missed != 0 || st.Clashes != 1 {
		t.Errorf("count %d min %d max %d lost %d missed %d clashes %d; want 22, 18 ms, 20 ms, 0, 0, 1",
			st.Count, st.Min, st.Max, st.Lost, st.Missed, st.Clashes)
	}
}

func TestReordered(t *testing.T) {
	r, sink := newPath3(t)
	p := func(sig uint32, from, to int64) {
		r.Add(Sighting{Flow: 2, Hop: 0, Sig: sig, TS: t0 + from})
		r.Add(Sighting{Flow: 2, Hop: 1, Sig: sig, TS: t0 + to})
	}
	p(1, 0, 30*ms)     // overtaken by 2
	p(2, 5*ms, 20*ms)  //
	p(3, 10*ms, 40*ms) //
	p(4, 12*ms, 35*ms) // overtaken by nothing (arrives before 3)... 3 left earlier: 4 is in order, 3 is reordered
	// Another flow's order does not matter.
	r.Add(Sighting{Flow: 3, Hop: 0, Sig: 5, TS: t0 + 1*ms})
	r.Add(Sighting{Flow: 3, Hop: 1, Sig: 5, TS: t0 + 50*ms})
	flush(t, r)
	// Arrival order at Y: 2 (left 5), 1 (left 0 < 5: reordered), 4 (left 12),
	// 3 (left 10 < 12: reordered).
	if st := sink.stat(t, t0, 2, 0); st.Count != 4 || st.Reordered != 2 {
		t.Errorf("flow 2: %+v", st)
	}
	if st := sink.stat(t, t0, 3, 0); st.Count != 1 || st.Reordered != 0 {
		t.Errorf("flow 3: %+v", st)
	}
}

func TestIntervalBoundaries(t *testing.T) {
	r, sink := newPath3(t)
	s := func(sig uint32, hop uint8, ts int64) { r.Add(Sighting{Flow: 2, Hop: hop, Sig: sig, TS: ts}) }
	s(1, 0, t0+999*ms) // leaves X in slot 0, reaches Y in slot 1: slot 0
	s(1, 1, t0+1005*ms)
	s(2, 0, t0+1000*ms) // exactly on the boundary: slot 1
	s(2, 1, t0+1001*ms)

	// Slot 0 ends at t0+1s; with a 200 ms timeout it can close once the
	// watermark is past t0+1.2s.
	if err := r.Advance(t0 + 1200*ms); err != nil {
		t.Fatal(err)
	}
	if len(sink.ivs) != 0 {
		t.Fatalf("slot 0 closed at watermark = end + timeout")
	}
	// A late sighting still lands in the open slot 0 (a probe that was
	// behind the watermark it promised).
	s(3, 0, t0+900*ms)
	s(3, 1, t0+950*ms)
	if err := r.Advance(t0 + 1200*ms + 1); err != nil {
		t.Fatal(err)
	}
	if len(sink.ivs) != 1 || sink.ivs[0].Start != t0 || sink.ivs[0].Length != time.Second {
		t.Fatalf("after end + timeout: %d intervals %+v", len(sink.ivs), sink.ivs)
	}
	if st := sink.stat(t, t0, 2, 0); st.Count != 2 || st.Sum != 6*ms+50*ms {
		t.Errorf("slot 0: %+v", st)
	}
	// Slot 0 is closed: a sighting for it is dropped and counted.
	s(4, 0, t0+999*ms)
	if c := r.Counters(); c.Late != 1 || c.Live != 0 {
		t.Errorf("counters %+v", c)
	}
	flush(t, r)
	if len(sink.ivs) != 2 || sink.ivs[1].Start != t0+int64(time.Second) {
		t.Fatalf("%d intervals", len(sink.ivs))
	}
	if st := sink.stat(t, t0+int64(time.Second), 2, 0); st.Count != 1 || st.Sum != 1*ms {
		t.Errorf("slot 1: %+v", st)
	}
}

func TestExpiryTiming(t *testing.T) {
	r, sink := newPath3(t)
	r.Add(Sighting{Flow: 2, Hop: 0, Sig: 1, TS: t0 + 100*ms})
	// Expired when its earliest time is older than watermark − timeout.
	if err := r.Advance(t0 + 300*ms); err != nil {
		t.Fatal(err)
	}
	if r.Counters().Live != 1 {
		t.Fatal("expired at watermark = first + timeout")
	}
	if err := r.Advance(t0 + 300*ms + 1); err != nil {
		t.Fatal(err)
	}
	if c := r.Counters(); c.Live != 0 || c.Lost != 1 {
		t.Fatalf("counters %+v", c)
	}
	// A sighting that arrives later becomes a new record: the packet was
	// already declared lost.
	r.Add(Sighting{Flow: 2, Hop: 1, Sig: 1, TS: t0 + 310*ms})
	flush(t, r)
	if got := countsOf(sink.stat(t, t0, 2, 0)); got != (counts{lost: 1, missed: 1}) {
		t.Errorf("%+v", got)
	}
}

func TestSinkFailureRetries(t *testing.T) {
	r, sink := newPath3(t)
	sink.fail = 1
	r.Add(Sighting{Flow: 2, Hop: 0, Sig: 1, TS: t0})
	r.Add(Sighting{Flow: 2, Hop: 1, Sig: 1, TS: t0 + ms})
	if err := r.Advance(t0 + 2*int64(time.Second)); err == nil {
		t.Fatal("sink error not returned")
	}
	// Still open: a sighting for it is not late.
	r.Add(Sighting{Flow: 2, Hop: 0, Sig: 2, TS: t0 + 2*ms})
	r.Add(Sighting{Flow: 2, Hop: 1, Sig: 2, TS: t0 + 4*ms})
	if err := r.Advance(t0 + 3*int64(time.Second)); err != nil {
		t.Fatal(err)
	}
	if st := sink.stat(t, t0, 2, 0); st.Count != 2 || st.Sum != 3*ms {
		t.Errorf("%+v", st)
	}
	if c := r.Counters(); c.Late != 0 || c.Intervals != 1 {
		t.Errorf("counters %+v", c)
	}
}

func TestForcedExpiry(t *testing.T) {
	sink := &collectSink{}
	r, err := New(path3(), sink, Options{MaxRecords: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddFlow(0, 1); err != nil {
		t.Fatal(err)
	}
	r.Add(Sighting{Flow: 0, Hop: 0, Sig: 1, TS: t0 + 10*ms})
	r.Add(Sighting{Flow: 0, Hop: 0, Sig: 2, TS: t0 + 20*ms})
	r.Add(Sighting{Flow: 0, Hop: 0, Sig: 3, TS: t0 + 30*ms}) // forces out sig 1
	r.Add(Sighting{Flow: 0, Hop: 1, Sig: 1, TS: t0 + 40*ms}) // too late for it: forces out sig 2
	// Forced out, fate unknown: dropped, not lost (sig 1's second hop
	// came after it was decided, a record of its own).
	if c := r.Counters(); c.Forced != 2 || c.Live != 2 || c.Lost != 0 || c.Dropped != 2 {
		t.Errorf("counters %+v", c)
	}
	flush(t, r)
}

func TestInvalid(t *testing.T) {
	r, _ := newPath3(t)
	r.Add(Sighting{Flow: 99, Hop: 0})
	r.Add(Sighting{Flow: 2, Hop: 2}) // 2-hop class
	if c := r.Counters(); c.Invalid != 2 || c.Live != 0 {
		t.Errorf("counters %+v", c)
	}
	cfg := path3()
	cfg.Classes = append(cfg.Classes, conf.Class{Name: "plain", Index: 2})
	r, err := New(cfg, &collectSink{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddFlow(0, 2); !errors.Is(err, ErrNoOneWay) {
		t.Errorf("AddFlow on a class without one-way: %v", err)
	}
	if err := r.AddFlow(0, 3); err == nil {
		t.Error("AddFlow on a missing class: no error")
	}
	for _, mod := range []func(*conf.OneWay){
		func(o *conf.OneWay) { o.Hops = hops("a") },
		func(o *conf.OneWay) { o.Hops = hops("1", "2", "3", "4", "5", "6", "7", "8", "9") },
		func(o *conf.OneWay) { o.Timeout = 0 },
		func(o *conf.OneWay) { o.Pairs = []conf.HopPair{{From: 1, To: 0}} },
		func(o *conf.OneWay) { o.Pairs = []conf.HopPair{{From: 0, To: 1, Slices: durs(2, 1)}} },
	} {
		cfg := path3()
		mod(cfg.Classes[1].OneWay)
		if _, err := New(cfg, &collectSink{}, Options{}); err == nil {
			t.Errorf("New accepted %+v", cfg.Classes[1].OneWay)
		}
	}
}

func TestSumSquaresAgainstBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var u Uint128
	want := new(big.Int)
	add := func(d int64) {
		u.AddSquare(d)
		want.Add(want, new(big.Int).Mul(big.NewInt(d), big.NewInt(d)))
		if u.String() != want.String() {
			t.Fatalf("after %d: %s, want %s", d, u.String(), want.String())
		}
	}
	for range 100000 {
		add((rng.Int64() - math.MaxInt64/2) >> (23 + rng.IntN(40))) // delays up to ±18 min
	}
	// The extremes: 2·(2^63)² still fits 128 bits.
	u, want = Uint128{}, new(big.Int)
	for _, d := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 3_000_000_000, -4_294_967_296} {
		add(d)
	}
	// Decimal conversion at the carries between 64-bit words and 10^19.
	for _, s := range []string{"18446744073709551616", "10000000000000000000", "99999999999999999999", "340282366920938463463374607431768211455"} {
		b, _ := new(big.Int).SetString(s, 10)
		v := Uint128{Hi: new(big.Int).Rsh(b, 64).Uint64(), Lo: b.Uint64()}
		if v.String() != s {
			t.Errorf("%s printed %s", s, v.String())
		}
	}
}

// TestAddDoesNotAllocate checks the steady state of a 2-hop flow: records,
// tree nodes, heap and slot storage all come back from their pools.
func TestAddDoesNotAllocate(t *testing.T) {
	r, _ := newPath3(t)
	r.sink = discard{}
	var ts int64 = t0
	var sig uint32
	step := func() {
		for range 100 {
			sig++
			ts += 100_000
			r.Add(Sighting{Flow: 2, Hop: 0, Sig: sig, TS: ts})
			r.Add(Sighting{Flow: 2, Hop: 1, Sig: sig, TS: ts + 5*ms})
			if sig%8 == 0 {
				r.Add(Sighting{Flow: 2, Hop: 0, Sig: sig + 1<<31, TS: ts}) // a loss now and then
			}
		}
		if err := r.Advance(ts - 10*ms); err != nil {
			t.Fatal(err)
		}
	}
	for range 3000 { // grow every pool over several slots
		step()
	}
	if a := testing.AllocsPerRun(200, step); a != 0 {
		t.Errorf("%v allocations per 200 sightings", a)
	}
}

type discard struct{}

func (discard) WriteInterval(*Interval) error { return nil }

// Two packets with one signature, 300 ms apart on a path of ~20 ms, their
// four sightings delivered in every order (the probes' PDUs reordered by
// the network or by retries): each is paired with its own, never the first
// packet's X with the second's Y (a 320 ms delay and a false lost and
// missed). And with the first packet lost before Y, in every order of its
// three sightings: one delay of 21 ms and one loss.
func TestClashPairingAnyOrder(t *testing.T) {
	x1, x2 := t0+400*ms, t0+700*ms
	y1, y2 := x1+20*ms, x2+21*ms
	type sight struct {
		hop uint8
		ts  int64
	}
	var perms func(s []sight) [][]sight
	perms = func(s []sight) [][]sight {
		if len(s) <= 1 {
			return [][]sight{append([]sight(nil), s...)}
		}
		var out [][]sight
		for i := range s {
			rest := append(append([]sight(nil), s[:i]...), s[i+1:]...)
			for _, p := range perms(rest) {
				out = append(out, append([]sight{s[i]}, p...))
			}
		}
		return out
	}
	for _, tc := range []struct {
		name           string
		sights         []sight
		n, sum, lost   uint64
		wantMin, wantM int64
	}{
		{"both delivered", []sight{{0, x1}, {0, x2}, {1, y1}, {1, y2}}, 2, uint64(41 * ms), 0, 20 * ms, 21 * ms},
		{"first lost", []sight{{0, x1}, {0, x2}, {1, y2}}, 1, uint64(21 * ms), 1, 21 * ms, 21 * ms},
	} {
		for i, order := range perms(tc.sights) {
			// The demo's class: maxTransit 1 s, timeout 2 s, so that
			// the two packets are candidates for each other's record.
			cfg := path3()
			cfg.Classes[1].OneWay.MaxTransit, cfg.Classes[1].OneWay.Timeout = time.Second, 2*time.Second
			sink := &collectSink{}
			r, err := New(cfg, sink, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for f, c := range []int{0, 0, 1, 1} {
				if err := r.AddFlow(uint32(f), c); err != nil {
					t.Fatal(err)
				}
			}
			// Twenty packets teach the class its transit X→Y, ~20 ms.
			for k := range int64(20) {
				r.Add(Sighting{Flow: 3, Hop: 0, Sig: uint32(100 + k), TS: t0 + k*ms})
				r.Add(Sighting{Flow: 3, Hop: 1, Sig: uint32(100 + k), TS: t0 + k*ms + 20*ms + k%2*ms})
			}
			if err := r.Advance(t0 + 200*ms); err != nil {
				t.Fatal(err)
			}
			for _, s := range order {
				r.Add(Sighting{Flow: 3, Hop: s.hop, Sig: 7, TS: s.ts})
			}
			flush(t, r)
			st := sink.stat(t, t0, 3, 0)
			n, sum := st.Count-20, uint64(st.Sum-int64(20*20*ms+10*ms))
			if n != tc.n || sum != tc.sum || st.Lost != tc.lost || st.Missed != 0 || st.Max != tc.wantM {
				t.Errorf("%s, order %d %v: %d delays summing %d ns (max %d), lost %d, missed %d; want %d summing %d (max %d), lost %d, missed 0",
					tc.name, i, order, n, sum, st.Max, st.Lost, st.Missed, tc.n, tc.sum, tc.wantM, tc.lost)
			}
			if st.Clashes != 1 {
				t.Errorf("%s, order %d: %d clashes, want 1", tc.name, i, st.Clashes)
			}
			for _, iv := range sink.ivs {
				if !iv.Accounting.Balanced() {
					t.Errorf("%s, order %d: accounting %+v", tc.name, i, iv.Accounting)
				}
			}
		}
	}
}

// Two copies of a packet at one hop within the duplicate window: the
// earlier is the packet, the later the duplicate, in either arrival order
// (a PDU retried or reordered can bring the copy first).
func TestDuplicateEarlierWins(t *testing.T) {
	for _, copyFirst := range []bool{false, true} {
		r, sink := newPath3(t)
		r.Add(Sighting{Flow: 3, Hop: 0, Sig: 9, TS: t0})
		orig, cp := Sighting{Flow: 3, Hop: 1, Sig: 9, TS: t0 + 20*ms}, Sighting{Flow: 3, Hop: 1, Sig: 9, TS: t0 + 20*ms + ms/2}
		if copyFirst {
			r.Add(cp)
			r.Add(orig)
		} else {
			r.Add(orig)
			r.Add(cp)
		}
		flush(t, r)
		st := sink.stat(t, t0, 3, 0)
		if st.Count != 1 || st.Sum != 20*ms || st.Duplicate != 1 {
			t.Errorf("copy first %v: count %d sum %d duplicates %d; want 1, 20 ms, 1", copyFirst, st.Count, st.Sum, st.Duplicate)
		}
	}
}

// Each class waits for the probes of its own hops: with probe 3 (hop Y of
// class xy) silent, class ab's records are decided as its probes' stamps
// pass, while class xy's wait, and its late-coming sighting completes its
// packet instead of meeting a record already decided lost. Intervals close
// only once every class has passed them.
func TestAdvanceProbesPerClass(t *testing.T) {
	cfg := path3()
	on := func(probe int) []conf.ProbeInterface { return []conf.ProbeInterface{{Probe: probe}} }
	cfg.Classes[0].OneWay.Hops = []conf.Hop{{Name: "A", Interfaces: on(0)}, {Name: "B", Interfaces: on(1)}, {Name: "C", Interfaces: on(1)}}
	cfg.Classes[1].OneWay.Hops = []conf.Hop{{Name: "X", Interfaces: on(2)}, {Name: "Y", Interfaces: on(3)}}
	sink := &collectSink{}
	r, err := New(cfg, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for f, c := range []int{0, 0, 1, 1} {
		if err := r.AddFlow(uint32(f), c); err != nil {
			t.Fatal(err)
		}
	}
	r.Add(Sighting{Flow: 0, Hop: 0, Sig: 1, TS: t0})        // lost after A
	r.Add(Sighting{Flow: 3, Hop: 0, Sig: 2, TS: t0 + 1*ms}) // its Y sighting is still at the silent probe
	later := t0 + 2*int64(time.Second)
	if err := r.AdvanceProbes([]int64{later, later, later, t0}); err != nil {
		t.Fatal(err)
	}
	if k := r.Counters(); k.Lost != 1 || k.Live != 1 || len(sink.ivs) != 0 {
		t.Fatalf("after class ab's stamps passed: %+v, %d intervals written; want ab's packet lost, xy's waiting, nothing closed", k, len(sink.ivs))
	}
	r.Add(Sighting{Flow: 3, Hop: 1, Sig: 2, TS: t0 + 21*ms})
	if err := r.AdvanceProbes([]int64{later, later, later, later}); err != nil {
		t.Fatal(err)
	}
	if len(sink.ivs) == 0 {
		t.Fatal("no interval closed once every probe passed it")
	}
	st := sink.stat(t, t0, 3, 0)
	if st.Count != 1 || st.Sum != 20*ms || st.Lost+st.Missed != 0 {
		t.Errorf("class xy: %+v; want one delay of 20 ms", countsOf(st))
	}
	if k := r.Counters(); k.Lost != 1 || k.Late != 0 || k.Missed != 0 {
		t.Errorf("%+v", k)
	}
}
