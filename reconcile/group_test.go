package reconcile

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestGroupAndSort compares the grouping by stat and the two near-order
// sorts with the standard library's sorts by the whole key, on inputs from
// nearly sorted (the insertion sort finishes) to shuffled (it gives up
// and sorts).
func TestGroupAndSort(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var g groupScratch
	for round := range 200 {
		n := r.IntN(3000)
		nstats := 1 + r.IntN(40)
		jitter := []int64{0, 3, 50, 1 << 20}[round%4] // how far out of arrival order
		order := make([]orderEntry, n)
		for i := range order {
			to := int64(i)*10 + r.Int64N(jitter+1)
			order[i] = orderEntry{stat: int32(r.IntN(nstats)), to: to, from: to - r.Int64N(40+jitter)}
		}
		want := slices.Clone(order)
		slices.SortStableFunc(want, func(a, b orderEntry) int { return cmp.Compare(a.stat, b.stat) })
		got, starts := g.groupOrder(slices.Clone(order), nstats)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: grouping differs from a stable sort by stat", round)
		}
		if len(starts) != nstats+1 || starts[nstats] != int32(n) {
			t.Fatalf("round %d: starts %v for %d entries", round, starts, n)
		}
		for si := range nstats {
			grp := got[starts[si]:starts[si+1]]
			for _, o := range grp {
				if o.stat != int32(si) {
					t.Fatalf("round %d: stat %d in group %d", round, o.stat, si)
				}
			}
			ref := slices.Clone(grp)
			slices.SortFunc(ref, func(a, b orderEntry) int {
				return cmp.Or(cmp.Compare(a.to, b.to), cmp.Compare(a.from, b.from))
			})
			sortArrival(grp)
			if !slices.Equal(grp, ref) {
				t.Fatalf("round %d: arrival order differs", round)
			}
			seq := make([]seqEntry, len(grp))
			for i, o := range grp {
				seq[i] = seqEntry{stat: o.stat, from: o.from, d: o.to - o.from}
			}
			sref := slices.Clone(seq)
			slices.SortFunc(sref, func(a, b seqEntry) int {
				return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.d, b.d))
			})
			sortDeparture(seq)
			if !slices.Equal(seq, sref) {
				t.Fatalf("round %d: departure order differs", round)
			}
		}
	}
}
