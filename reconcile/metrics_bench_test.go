package reconcile

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
)

// BenchmarkIntervalMetrics is the cost of the IPPM metrics per delay
// measured: an interval of 100 000 packets over 16 flows (2 % lost,
// jittered so that many are reordered) is closed again and again; one op is one
// packet of the interval (run with -benchtime 2000000x or more) (the sort by hop_from time, the five
// log-linear histograms, quantiles, loss runs, reordering extents, all
// of it computed from the stats' delay logs by finish).
func BenchmarkIntervalMetrics(b *testing.B) {
	cfg := &conf.Config{Interval: 10 * time.Second, Classes: []conf.Class{{Name: "x", OneWay: &conf.OneWay{
		Hops: hops("in", "out"), MaxTransit: time.Second, Timeout: 2 * time.Second, DupWindow: time.Millisecond,
		Pairs: []conf.HopPair{{From: 0, To: 1, Slices: durs(2*ms, 5*ms, 10*ms, 15*ms)}},
	}}}}
	r, err := New(cfg, discard{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for f := range uint32(16) {
		if err := r.AddFlow(f, 0); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 100_000
	for i := range n {
		t := t0 + int64(i)*50_000
		s := Sighting{Flow: uint32(i % 16), Sig: rng.Uint32(), TS: t}
		r.Add(s)
		if rng.IntN(50) != 0 {
			s.Hop, s.TS = 1, t+10*ms+rng.Int64N(2*ms)
			r.Add(s)
		}
	}
	for i := range r.classes {
		r.expireClass(&r.classes[i], math.MaxInt64)
	}
	sl := r.slots.open[0]
	r.finish(sl)
	b.ReportAllocs()
	b.ResetTimer()
	// One op is one packet of the interval: b.N/n closes.
	for range max(b.N/n, 1) {
		r.finish(sl)
	}
}
