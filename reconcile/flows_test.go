package reconcile

import (
	"math/rand/v2"
	"testing"
)

// TestFlowTableChurn declares ids in increasing order as a collector does,
// a few flows living long and most retired soon after (RemoveFlow), and
// checks every lookup against a map and that the pages held follow the
// flows held, not the ids given out.
func TestFlowTableChurn(t *testing.T) {
	var tb flowTable
	want := map[uint32]int32{}
	rng := rand.New(rand.NewPCG(1, 2))
	var live []uint32
	const ids = 1_000_000
	maxPages := 0
	for id := uint32(0); id < ids; id++ {
		cl := int32(rng.IntN(5))
		tb.set(id, cl)
		want[id] = cl
		live = append(live, id)
		// Retire the oldest flows but one in a thousand (long-lived ones
		// pin their pages), keeping at most 500 short-lived ones.
		for len(live) > 500 {
			old := live[0]
			live = live[1:]
			if old%1000 == 0 {
				continue
			}
			tb.remove(old)
			delete(want, old)
		}
		if id%997 == 0 {
			for _, x := range []uint32{id, id / 2, id + 1, rng.Uint32N(id + 1)} {
				w, ok := want[x]
				if !ok {
					w = -1
				}
				if g := tb.get(x); g != w {
					t.Fatalf("after id %d: get(%d) = %d, want %d", id, x, g, w)
				}
			}
		}
		maxPages = max(maxPages, tb.pagesHeld())
	}
	// 1000 long-lived flows pin at most 1000 pages; 500 short-lived ones
	// span at most 3.
	if limit := ids/1000 + 3; maxPages > limit {
		t.Errorf("%d pages held at most, want ≤ %d (%d ids given out)", maxPages, limit, ids)
	}
	for id := uint32(0); id < ids; id++ {
		tb.remove(id)
	}
	if tb.pagesHeld() != 0 || len(tb.pages) != 0 {
		t.Errorf("all retired: %d pages held, directory %d", tb.pagesHeld(), len(tb.pages))
	}
	// Below the pages held again (a snapshot restores ids in any order).
	tb.set(5000, 1)
	tb.set(10, 2)
	if tb.get(10) != 2 || tb.get(5000) != 1 || tb.get(11) != -1 || tb.get(1<<31) != -1 {
		t.Errorf("set below the base: get(10)=%d get(5000)=%d", tb.get(10), tb.get(5000))
	}
}
