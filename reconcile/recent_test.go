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
