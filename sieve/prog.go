package sieve

import (
	"github.com/tmon-project/tmon/flow"
)

// Limits of one compiled configuration.
const (
	MaxClasses = 64             // classes are bits of a uint64
	MaxPreds   = 64 * predWords // distinct predicates over all classes
	predWords  = 4
)

// bits is a set of predicates (bit i: predicate i holds).
type bits [predWords]uint64

// The compiled sieve (trafMon 3.4): every distinct predicate of every class's
// filter is numbered once. Per packet, each field that some predicate tests
// is loaded once and turned, by one table lookup, into the set of its
// predicates that hold; the sets are OR-ed into one predicate bitset. Each
// class's three-level filter is then a walk over bitmask tests:
//
//	term  = [NOT] (P ^ neg) & mask == mask        (a conjunction of literals)
//	group = [NOT] OR(terms)
//	class = [NOT] AND(groups)
//
// Fields are evaluated in two rounds: first the 8-bit fields (one 256-entry
// table each); then, before the 16/20/32-bit and address fields (interval
// tables), classes whose required literals already failed are dropped and a
// field no remaining class tests is skipped.
type prog struct {
	nw      int         // words of bits in use
	byteF   []byteField // round 1
	wideF   []wideField // round 2: numeric fields wider than 8 bits
	addrF   []addrField // round 2: Src, Dst
	onField [flow.TCPFlags + 1]bits
	byte1   []byteField1 // byteF with one word of predicates, when nw ≤ 1

	classes  []classProg
	fast     []fastClass // classes, compact, when nw ≤ 1
	fastAnys []anyOf1

	// Class sets of the one-word form (classify1): every class; those
	// whose inline OR group is negated or absent (anyNot); those negated
	// as a whole; those with more than the required literals and the
	// inline group to check (not simple).
	all1, anyNot1, not1, complex1 uint64
	anys                          []anyOf
	general                       []uint32
	groups                        []groupProg
	terms                         []termProg
	lits                          []litWord
}

// byteField evaluates the predicates on one 8-bit field: tab[v] are the
// predicates that hold for value v.
type byteField struct {
	f   flow.Field
	tab [256]bits
}

// byteField1 is byteField for configurations of at most 64 predicates:
// the value's entry through a byte index (a field has few distinct
// predicate sets), so that the tables stay in the L1 cache.
type byteField1 struct {
	f      flow.Field
	absent entry1 // the packet lacks the field: its predicates are false
	ents   []entry1
	idx    [256]uint8
}

// entry1 is what one value of one field decides in the one-word form
// (classify1): the field's predicates that hold (p); the classes whose
// required literals on the field fail (dead: they cannot match, whatever
// the other fields hold); the classes whose inline OR group has a literal
// on the field that holds (hit). A class's required literals and its
// inline group each test predicates of several fields, but every literal
// tests one field: required literals hold when no field kills the class,
// the group when some field hits it. So the whole verdict of a simple
// class is three ORs per field and a few mask operations per packet, for
// all classes at once, instead of a loop over the classes (the loop was
// a third of the sieve's time in its benchmark).
type entry1 struct{ p, dead, hit uint64 }

// span is the part of a sorted list of interval starts that lies in one
// bucket (one 1/256 of a field's value space): starts[lo] is the last start
// ≤ the bucket's first value, and the n starts after it lie in the bucket.
type span struct{ lo, n uint32 }

// wideField evaluates the predicates on a numeric field by elementary
// intervals: starts is ascending and begins with 0; sets[i] holds on
// [starts[i], starts[i+1]).
type wideField struct {
	f       flow.Field
	classes uint64 // classes with a predicate on f
	starts  []uint32
	sets    []bits
	dense   []uint8 // when not nil: dense[v] is the interval of v (16-bit fields with many intervals)
	shift   uint8   // v>>shift is the bucket of v (clamped to 255)
	bucket  [256]span

	ents1   []entry1 // the one-word form of sets (nw ≤ 1)
	absent1 entry1
}

// denseMin is the number of intervals from which a 16-bit field gets a
// direct lookup table (64 KiB at most) instead of a search: only the lines
// of the values seen are touched, so even two intervals gain from it.
const denseMin = 2

// addrField does the same for an address field, separately per family.
type addrField struct {
	f       flow.Field
	classes uint64
	v4      []uint32
	v4sets  []bits
	v6      [][2]uint64
	v6sets  []bits
	b4, b6  [256]span // buckets by the first byte of the address

	ents4, ents6 []entry1 // the one-word form of v4sets, v6sets (nw ≤ 1)
	absent1      entry1
}

type classProg struct {
	lo, hi  uint32 // groups (the filter as written; classify3 walks them)
	not     bool
	bit     uint64
	reqMask bits // literals on 8-bit fields that must hold for the class to match
	reqNeg  bits

	// The same filter, flattened for two-valued evaluation:
	//	[NOT] ( all(allMask, allNeg) AND any(anyOf...) AND groups(general...) )
	allMask, allNeg bits
	anyLo, anyHi    uint32 // into prog.anys: groups that are an OR of literals
	genLo, genHi    uint32 // into prog.general: other groups, by index into groups
}

// fastClass is the flattened form of a class when all predicates fit in one
// word: small enough that all classes stay in a few cache lines.
type fastClass struct {
	bit, allMask, allNeg       uint64
	anyLo, anyHi, genLo, genHi uint32
	not                        bool

	// The first OR-of-literals group, inline (when there is none: mask 0
	// and not set, which always holds); anyLo is past it.
	anyMask, anyNeg uint64
	anyNot          bool
	simple          bool // nothing in anys or general beyond the inline group
}

type anyOf1 struct {
	mask, neg uint64
	not       bool
}

// anyOf is a group that is a disjunction of literals: it holds when
// (P ^ neg) & mask != 0 (negated: when it is zero).
type anyOf struct {
	mask, neg bits
	not       bool
}

type groupProg struct {
	lo, hi uint32 // terms
	not    bool
}

type termProg struct {
	lo, hi uint32 // lits
	not    bool
}

// litWord is the part of a term's conjunction in one word of bits: the
// predicates in mask, negated where neg has the bit.
type litWord struct {
	w         uint8
	mask, neg uint64
}
