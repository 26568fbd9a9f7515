package reconcile

import (
	"cmp"
	"slices"
)

// Putting an interval's delays in the order its figures need (split from
// interval.go and metrics.go): per flow and pair (stat), in arrival order
// at hop_to for reordering, in departure order at hop_from for the
// sequence metrics.
//
// One comparison sort of the whole interval by (stat, time) took a sixth
// of the reconciliation's time. The delays come in nearly in arrival order
// (a record is decided at its last sighting plus the duplicate window), so
// a stable counting sort by stat, linear, leaves each stat's delays nearly
// sorted already, and a sort that exploits that (insertion while few are
// out of place) finishes each. Both are written out for their element
// type: a comparison through a function value costs more than the
// comparison.

// groupScratch is the reconciler's buffers for grouping, reused at every
// interval.
type groupScratch struct {
	order  []orderEntry
	counts []int32
}

// groupOrder puts the delays of order in stat order, keeping their order
// within a stat, and returns the grouped slice (the buffer order was in
// goes to the scratch) and the start of each stat's group: stat i is
// [starts[i], starts[i+1]).
func (g *groupScratch) groupOrder(order []orderEntry, nstats int) ([]orderEntry, []int32) {
	g.counts = slices.Grow(g.counts[:0], nstats+1)[:nstats+1]
	clear(g.counts)
	for i := range order {
		g.counts[order[i].stat+1]++
	}
	for i := 1; i <= nstats; i++ {
		g.counts[i] += g.counts[i-1]
	}
	// At least order's capacity: the slot keeps the buffer it gets for
	// its next interval, which must not have to grow (and copy) again.
	out := slices.Grow(g.order[:0], cap(order))[:len(order)]
	next := g.counts[:nstats] // advances to each group's end; rebuilt below
	for i := range order {
		s := order[i].stat
		out[next[s]] = order[i]
		next[s]++
	}
	// next[i] is now the end of group i, the start of group i+1.
	copy(g.counts[1:], next)
	g.counts[0] = 0
	g.order = order[:0]
	return out, g.counts
}

// nearlyBudget is how many element moves per element the insertion sorts
// below make before they give up and sort with the standard library.
const nearlyBudget = 8

// sortArrival sorts one stat's delays by (to, from).
func sortArrival(s []orderEntry) {
	budget := nearlyBudget * len(s)
	for i := 1; i < len(s); i++ {
		x := s[i]
		j := i
		for j > 0 && (x.to < s[j-1].to || x.to == s[j-1].to && x.from < s[j-1].from) {
			s[j] = s[j-1]
			j--
		}
		s[j] = x
		if budget -= i - j; budget < 0 {
			slices.SortFunc(s, func(a, b orderEntry) int {
				if c := cmp.Compare(a.to, b.to); c != 0 {
					return c
				}
				return cmp.Compare(a.from, b.from)
			})
			return
		}
	}
}

// sortDeparture sorts one stat's sequence by (from, d).
func sortDeparture(s []seqEntry) {
	budget := nearlyBudget * len(s)
	for i := 1; i < len(s); i++ {
		x := s[i]
		j := i
		for j > 0 && (x.from < s[j-1].from || x.from == s[j-1].from && x.d < s[j-1].d) {
			s[j] = s[j-1]
			j--
		}
		s[j] = x
		if budget -= i - j; budget < 0 {
			slices.SortFunc(s, func(a, b seqEntry) int {
				if c := cmp.Compare(a.from, b.from); c != 0 {
					return c
				}
				return cmp.Compare(a.d, b.d)
			})
			return
		}
	}
}
