package reconcile

import (
	"math/rand/v2"
	"testing"
)

// TestRecentTableAgreesWithMap drives the recent table (filter, pending
// puts, growth, sweeps, the limit) and a plain map with the same random
// operations and compares every get. Keys come from a small pool so that
// gets hit, puts overwrite and the filter's false positives meet pending
// entries; the limit is reached in some rounds.
func TestRecentTableAgreesWithMap(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 40 {
		limit := 1 << 30
		if round%4 == 3 {
			limit = 50 + r.IntN(500) // reached: puts of new keys refused
		}
		pool := make([]uint64, 200+r.IntN(5000))
		for i := range pool {
			pool[i] = uint64(r.Uint32N(1000))<<32 | uint64(r.Uint32())
		}
		tab := newRecentTable()
		ref := map[uint64]recentDone{}
		var now int64
		var hits, refused int
		for op := range 30000 {
			fs := pool[r.IntN(len(pool))]
			switch k := r.IntN(100); {
			case k < 45:
				now += int64(r.IntN(10))
				d := recentDone{ref: now, until: now + int64(r.IntN(2000))}
				tab.put(fs, d, limit)
				if _, ok := ref[fs]; ok || len(ref) < limit {
					ref[fs] = d
				} else {
					refused++
				}
			case k < 99:
				got, ok := tab.get(fs)
				want, wok := ref[fs]
				if ok != wok || (ok && got != want) {
					t.Fatalf("round %d op %d: get %x = %+v %v, map %+v %v", round, op, fs, got, ok, want, wok)
				}
				if ok {
					hits++
				}
			default:
				wm := now - int64(r.IntN(1000))
				tab.sweep(wm)
				for k, d := range ref {
					if d.until < wm {
						delete(ref, k)
					}
				}
			}
		}
		tab.flush()
		if tab.n != len(ref) {
			t.Fatalf("round %d: table holds %d, map %d", round, tab.n, len(ref))
		}
		if hits == 0 || (limit < 1<<30 && refused == 0) {
			t.Fatalf("round %d: %d hits, %d refused: the operations did not exercise the table", round, hits, refused)
		}
	}
}

// TestClashWithRecentAtEdges: a packet completes; a later packet of the
// same flow and signature, after the first was decided (so only the
// recent table remembers it), is a clash when the watermark has not passed
// the first's until (the later of its last sighting + DupWindow and its
// reference time + MaxTransit) and it is at most MaxTransit from the
// first's reference time, with the watermark at, just before and just after that
// until, and with or without a sweep of the table at that watermark.
func TestClashWithRecentAtEdges(t *testing.T) {
	const maxT = 100 * ms
	const e = 2 * ms // a step of watermark
	for _, off := range []int64{-1, 0, 1} {
		// until = ref + maxT (the second sighting's delay is shorter),
		// on a whole millisecond shifted by off.
		until := t0 + 2000*ms + off
		ref := until - maxT
		for _, dwm := range []int64{-1, 0, 1, e} {
			for _, sweep := range []bool{false, true} {
				for _, dt := range []int64{maxT, maxT + 1} {
					r, sink := newPath3(t)
					x := func(hop uint8, ts int64) { r.Add(Sighting{Flow: 2, Hop: hop, Sig: 0x5eed, TS: ts}) }
					x(0, ref)
					x(1, ref+10*ms)
					// The first advance sweeps the table (the first
					// ever); the second sweeps it again only when it
					// is a maxT of watermark later.
					first := until + dwm - maxT
					if !sweep {
						first++
					}
					for _, w := range []int64{first, until + dwm} {
						if err := r.Advance(w); err != nil {
							t.Fatal(err)
						}
					}
					if r.Counters().Live != 0 {
						t.Fatalf("the first packet is still live at watermark %d: the test needs it decided", until+dwm)
					}
					x(0, ref+dt)
					x(1, ref+dt+10*ms)
					flush(t, r)
					want := uint64(0)
					if dwm <= 0 && dt <= maxT {
						want = 1
					}
					if c := r.Counters(); c.Clashes != want || c.Completed != 2 {
						t.Errorf("until %d (%+d), watermark until%+d, sweep %v, second packet at ref+%d: %d clashes, %d completed; want %d, 2",
							until, off, dwm, sweep, dt, c.Clashes, c.Completed, want)
					}
					var clashes uint64
					for _, iv := range sink.ivs {
						for _, st := range iv.Stats {
							clashes += st.Clashes
						}
					}
					if clashes != want {
						t.Errorf("until %d, watermark until%+d: %d clashes in the intervals, want %d", until, dwm, clashes, want)
					}
				}
			}
		}
	}
}
