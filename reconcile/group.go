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
