package reconcile

import (
	"cmp"
	"slices"
)

// Putting a stat's delays in the orders its figures need (split from
// interval.go and metrics.go): in arrival order at hop_to for reordering,
// in departure order at hop_from for the sequence metrics.
//
// A stat's delays come out of its log nearly in arrival order (a record is
// decided at its last sighting plus the duplicate window), so a sort that
// exploits that (insertion while few are out of place) does most of the
// work in linear time, and the departure order is nearly the arrival
// order again. Both are written out for their element type: a comparison
// through a function value costs more than the comparison.

// nearlyBudget is how many element moves per element the insertion sorts
// below make before they give up and sort with the standard library.
const nearlyBudget = 8

// sortArrival sorts one stat's delays by (to, from): t holds the time at
// hop_to.
func sortArrival(s []delayEntry) {
	budget := nearlyBudget * len(s)
	for i := 1; i < len(s); i++ {
		x := s[i]
		j := i
		for j > 0 && (x.t < s[j-1].t || x.t == s[j-1].t && x.from < s[j-1].from) {
			s[j] = s[j-1]
			j--
		}
		s[j] = x
		if budget -= i - j; budget < 0 {
			slices.SortFunc(s, func(a, b delayEntry) int {
				if c := cmp.Compare(a.t, b.t); c != 0 {
					return c
				}
				return cmp.Compare(a.from, b.from)
			})
			return
		}
	}
}

// sortDeparture sorts one stat's delays by (from, d): t holds the delay d.
func sortDeparture(s []delayEntry) {
	budget := nearlyBudget * len(s)
	for i := 1; i < len(s); i++ {
		x := s[i]
		j := i
		for j > 0 && (x.from < s[j-1].from || x.from == s[j-1].from && x.t < s[j-1].t) {
			s[j] = s[j-1]
			j--
		}
		s[j] = x
		if budget -= i - j; budget < 0 {
			slices.SortFunc(s, func(a, b delayEntry) int {
				if c := cmp.Compare(a.from, b.from); c != 0 {
					return c
				}
				return cmp.Compare(a.t, b.t)
			})
			return
		}
	}
}

// comparePackets is the order of an interval's per-packet rows, that of
// the owd_packet file: (Flow, Pair, From, Sig).
func comparePackets(a, b Packet) int {
	if c := cmp.Compare(a.Flow, b.Flow); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Pair, b.Pair); c != 0 {
		return c
	}
	if c := cmp.Compare(a.From, b.From); c != 0 {
		return c
	}
	return cmp.Compare(a.Sig, b.Sig)
}

// sortPackets puts an interval's per-packet rows in comparePackets order.
// They come in the order their records were decided, nearly by From over
// every flow at once, so a sort of the whole slice by the full key finds
// little order to use. Grouping them by (Flow, Pair) first — a stable
// counting sort of a permutation — leaves each group nearly in From order
// for an insertion sort; the rows (56 bytes each) are then moved once,
// along the permutation's cycles, for 4 bytes a row of scratch.
func sortPackets(p []Packet) {
	if slices.IsSortedFunc(p, comparePackets) {
		return
	}
	key := func(pk *Packet) uint64 { return uint64(pk.Flow)<<32 | uint64(uint32(pk.Pair)) }
	at := make(map[uint64]int32) // a group's size, then where it goes next
	for i := range p {
		at[key(&p[i])]++
	}
	keys := make([]uint64, 0, len(at))
	for k := range at {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var off int32
	for _, k := range keys {
		n := at[k]
		at[k] = off
		off += n
	}
	perm := make([]int32, len(p))
	for i := range p {
		k := key(&p[i])
		perm[at[k]] = int32(i)
		at[k]++
	}
	var start int32
	for _, k := range keys {
		sortGroup(p, perm[start:at[k]])
		start = at[k]
	}
	// p[j] = old p[perm[j]], cycle by cycle; a done position is marked -1.
	for i := range perm {
		if perm[i] < 0 {
			continue
		}
		tmp, j := p[i], i
		for {
			k := int(perm[j])
			perm[j] = -1
			if k == i {
				p[j] = tmp
				break
			}
			p[j] = p[k]
			j = k
		}
	}
}

// sortGroup sorts the indexes of one (Flow, Pair) group's rows by (From,
// Sig): an insertion sort while few are out of place, as sortArrival.
func sortGroup(p []Packet, g []int32) {
	less := func(a, b int32) bool {
		pa, pb := &p[a], &p[b]
		return pa.From < pb.From || pa.From == pb.From && pa.Sig < pb.Sig
	}
	budget := nearlyBudget * len(g)
	for i := 1; i < len(g); i++ {
		x := g[i]
		j := i
		for j > 0 && less(x, g[j-1]) {
			g[j] = g[j-1]
			j--
		}
		g[j] = x
		if budget -= i - j; budget < 0 {
			slices.SortFunc(g, func(a, b int32) int { return comparePackets(p[a], p[b]) })
			return
		}
	}
}
