package reconcile

import (
	"testing"

	"github.com/tmon-project/tmon/conf"
)

// TestComposeClockTolerance: a packet seen at the intermediate hop B
// before A counts as a composition violation unless it is within the sum
// of the clock error bounds of the probes at A, B and C.
func TestComposeClockTolerance(t *testing.T) {
	const us = int64(1000)
	bounds := map[int]int64{0: 200 * us, 1: 300 * us, 2: 100 * us} // e = 600µs
	for _, tc := range []struct {
		name    string
		probes  [3]int // probe observing A, B, C
		assumed bool
		clocks  ClockBound
		learnt  bool // the bounds become known after SetClocks, before Advance
		want    uint64
	}{
		// Known bounds: only the packet 3 ms out counts.
		{"bounds known", [3]int{0, 1, 2}, false, func(p int) (int64, bool) { return bounds[p], true }, false, 1},
		{"bounds learnt at Advance", [3]int{0, 1, 2}, false, nil, true, 1},
		// Otherwise the check stays strict: all three count.
		{"no clock state", [3]int{0, 1, 2}, false, nil, false, 3},
		{"one bound unknown", [3]int{0, 1, 2}, false, func(p int) (int64, bool) { return bounds[p], p != 2 }, false, 3},
		{"one probe, one clock", [3]int{0, 0, 0}, false, func(p int) (int64, bool) { return bounds[p], true }, false, 3},
		{"assumeSynced", [3]int{0, 1, 2}, true, func(p int) (int64, bool) { return bounds[p], true }, false, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := path3()
			cfg.Clock.AssumeSynced = tc.assumed
			ow := cfg.Classes[0].OneWay
			for h, p := range tc.probes {
				ow.Hops[h].Interfaces = []conf.ProbeInterface{{Probe: p}}
			}
			sink := &collectSink{}
			r, err := New(cfg, sink, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.AddFlow(0, 0); err != nil {
				t.Fatal(err)
			}
			r.SetClocks(tc.clocks)
			if tc.learnt {
				known := false
				r.SetClocks(func(p int) (int64, bool) { return bounds[p], known })
				known = true
				if err := r.Advance(t0); err != nil {
					t.Fatal(err)
				}
			}
			// Sig 1: B 0.5 ms before A, within e. Sig 2: B 3 ms before A.
			// Sig 3: B 0.4 ms after C, within e.
			for _, s := range []Sighting{
				{Flow: 0, Hop: 0, Sig: 1, TS: t0 + 10*ms}, {Flow: 0, Hop: 1, Sig: 1, TS: t0 + 10*ms - 500*us}, {Flow: 0, Hop: 2, Sig: 1, TS: t0 + 30*ms},
				{Flow: 0, Hop: 0, Sig: 2, TS: t0 + 100*ms}, {Flow: 0, Hop: 1, Sig: 2, TS: t0 + 97*ms}, {Flow: 0, Hop: 2, Sig: 2, TS: t0 + 120*ms},
				{Flow: 0, Hop: 0, Sig: 3, TS: t0 + 200*ms}, {Flow: 0, Hop: 2, Sig: 3, TS: t0 + 220*ms}, {Flow: 0, Hop: 1, Sig: 3, TS: t0 + 220*ms + 400*us},
			} {
				r.Add(s)
			}
			flush(t, r)
			if len(sink.ivs) != 1 {
				t.Fatalf("%d intervals", len(sink.ivs))
			}
			var viol, count uint64
			for i, st := range sink.ivs[0].Stats {
				m := sink.ivs[0].Metrics[i]
				if st.Pair != 2 && m.ComposeViol != 0 {
					t.Errorf("pair %d without intermediate hop: %d violations", st.Pair, m.ComposeViol)
				}
				if st.Pair == 2 {
					viol, count = m.ComposeViol, st.Count
				}
			}
			if count != 3 || viol != tc.want {
				t.Errorf("A→C: %d packets, %d composition violations, want 3, %d", count, viol, tc.want)
			}
		})
	}
}
