package reconcile

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestRecentTableAgreesWithMap drives the recent table (until filter,
// pending puts, growth, sweeps, the limit) and a plain map with the same
// random operations and compares every get. Keys come from a small pool so
// that gets hit, puts overwrite and the filter's false positives meet
// pending entries; the limit is reached in some rounds; the watermark moves
// between sweeps, now and then far ahead (the filter cannot tell there and
// must let every get through), and some rounds run at negative times.
// The table's contract: an entry whose until is at or after the watermark
// is returned exactly, an absent one never, an expired one may be.
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
		maxT := int64(500 + r.IntN(2500)) // epochs of 8 ns to 32 ns
		tab := newRecentTable(maxT)
		ref := map[uint64]recentDone{}
		now := int64(r.IntN(1000))
		if round%5 == 1 {
			now = -1_000_000
		}
		wm, swept := int64(math.MinInt64), int64(0)
		var hits, refused, filtered int
		for op := range 30000 {
			fs := pool[r.IntN(len(pool))]
			switch k := r.IntN(100); {
			case k < 45:
				now += int64(r.IntN(10))
				d := recentDone{ref: now, until: now + int64(r.IntN(int(2*maxT)))}
				tab.put(fs, d, limit)
				if _, ok := ref[fs]; ok || len(ref) < limit {
					ref[fs] = d
				} else {
					refused++
				}
			case k < 97:
				got, ok := tab.get(fs)
				want, wok := ref[fs]
				switch {
				case wok && want.until >= wm:
					if !ok || got != want {
						t.Fatalf("round %d op %d: get %x = %+v %v, map %+v (live at %d)", round, op, fs, got, ok, want, wm)
					}
					hits++
				case wok:
					if ok && got != want {
						t.Fatalf("round %d op %d: get %x = %+v, map %+v (expired at %d)", round, op, fs, got, want, wm)
					}
					if !ok {
						filtered++
					}
				case ok:
					t.Fatalf("round %d op %d: get %x = %+v, absent from the map", round, op, fs, got)
				}
			default:
				// The reconciler's watermark: behind the times put,
				// swept once per maxT of progress. Once in a while far
				// ahead without a sweep (the filter cannot tell there),
				// and the times put follow it.
				w := now - int64(r.IntN(int(3*maxT)))
				far := r.IntN(50) == 0
				if far {
					w = now + 300*maxT
					now = w
				}
				if w <= wm {
					continue
				}
				wm = w
				if far || wm-swept < maxT {
					tab.setWatermark(wm)
					continue
				}
				swept = wm
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
		if hits == 0 || filtered == 0 || (limit < 1<<30 && refused == 0) {
			t.Fatalf("round %d: %d hits, %d expired filtered, %d refused: the operations did not exercise the table", round, hits, filtered, refused)
		}
	}
}

// TestRecentUntilFilterEdges puts entries whose until falls on, just
// before and just after an epoch boundary and asks for them with the
// watermark on, before and after their until, across a sweep that
// re-counts the epochs and with the watermark near the filter's range
// (254 epochs past the sweep's): an entry is always found while its until
// is at or after the watermark. And an expired one whose cells it alone
// set is not (the point of the filter).
func TestRecentUntilFilterEdges(t *testing.T) {
	for _, maxT := range []int64{1, 63, 64, 127, 1000, int64(time.Second), 3 * int64(time.Second)} {
		tab := newRecentTable(maxT)
		e := int64(1) << tab.unit
		if maxT/e >= 64 || (tab.unit > 0 && maxT/(e/2) < 64) {
			t.Fatalf("maxT %d: epoch %d ns, want the largest power of two with fewer than 64 per maxT", maxT, e)
		}
		for _, start := range []int64{-7 * e, 0, 1_795_403_700 * int64(time.Second)} {
			b := (start>>tab.unit + 10) << tab.unit // an epoch boundary
			for _, until := range []int64{b - 1, b, b + 1, b + 200*e, b + 254*e, b + 260*e} {
				for _, sweepAt := range []int64{math.MinInt64, start, b - 1, b, until, until + 1} {
					tab := newRecentTable(maxT)
					if sweepAt != math.MinInt64 {
						tab.sweep(sweepAt)
					}
					fs := uint64(until)<<20 | 77
					tab.put(fs, recentDone{ref: until - maxT, until: until}, 1<<30)
					for _, wm := range []int64{until - e, until - 1, until, until + 1, until + e, until + 2*e} {
						if sweepAt != math.MinInt64 && wm < sweepAt {
							continue
						}
						tab.setWatermark(wm)
						d, ok := tab.get(fs)
						if wm <= until && (!ok || d.until != until) {
							t.Fatalf("maxT %d sweep at %d: until %d not found at watermark %d (epoch %d)", maxT, sweepAt, until, wm, e)
						}
						if wm > until+e && wm>>tab.unit-tab.base < 255 && ok {
							t.Fatalf("maxT %d sweep at %d: until %d found at watermark %d: the filter let an expired entry through", maxT, sweepAt, until, wm)
						}
					}
				}
			}
		}
	}
}

// TestClashWithRecentAtEdges: a packet completes; a later packet of the
// same flow and signature, after the first was decided (so only the
// recent table remembers it), is a clash when the watermark has not passed
// the first's until (the later of its last sighting + DupWindow and its
// reference time + MaxTransit) and it is at most MaxTransit from the
// first's reference time: at, just before and just after an epoch of the
// table's filter, with the watermark at, just before and just after that
// until, and with or without a sweep of the table at that watermark.
func TestClashWithRecentAtEdges(t *testing.T) {
	const maxT = 100 * ms
	unit := newRecentTable(maxT).unit
	e := int64(1) << unit
	for _, off := range []int64{-1, 0, 1} {
		// until = ref + maxT (the copy's delay is shorter) on an epoch
		// boundary, shifted by off.
		until := (t0/e+1000)*e + off
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
						t.Errorf("until %d (epoch boundary %+d), watermark until%+d, sweep %v, second packet at ref+%d: %d clashes, %d completed; want %d, 2",
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
