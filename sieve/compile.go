package sieve

import (
	"fmt"
	"github.com/tmon-project/tmon/reassembly"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tmon-project/tmon/conf"
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

// Compile builds the sieve of cfg: all classes' filters in one structure,
// the signature mask (the union of every class's Mask: a packet must hash the
// same whatever classes it matched) and the set of one-way classes. It
// rejects configurations it cannot compile: more than MaxClasses classes or
// MaxPreds distinct predicates, unknown fields, ranges on address fields,
// prefixes on numeric fields, inverted ranges and invalid prefixes.
func Compile(cfg *conf.Config) (*Sieve, error) {
	if len(cfg.Classes) > MaxClasses {
		return nil, fmt.Errorf("sieve: compile: %d classes, at most %d", len(cfg.Classes), MaxClasses)
	}
	c := compiler{ids: map[string]int{}}
	s := &Sieve{nClasses: len(cfg.Classes), sigMask: signatureMask(cfg), reasm: reassembly.New(fragConfig(cfg)), ftpx: ftpTable{idle: int64(cfg.Analyses.Resolved().TCPIdle)}, scratch: new(signScratch)}
	for ci := range cfg.Classes {
		cl := &cfg.Classes[ci]
		if cl.OneWay != nil {
			s.oneWay |= 1 << ci
		}
		if cl.FTPDataFlags {
			s.ftpFlags |= 1 << ci
		}
		if err := c.class(ci, cl); err != nil {
			return nil, fmt.Errorf("sieve: compile: class %q (line %d): %w", cl.Name, cl.Line, err)
		}
	}
	c.build(&s.prog)
	return s, nil
}

// signatureMask is the union of the classes' Mask, restricted to the fields
// the signature can mask.
func signatureMask(cfg *conf.Config) flow.Set {
	var m flow.Set
	for i := range cfg.Classes {
		m |= cfg.Classes[i].Mask
	}
	return m & maskable
}

// maskable are the fields Sign can zero.
const maskable = flow.Set(1<<flow.Src | 1<<flow.Dst | 1<<flow.SrcPort | 1<<flow.DstPort |
	1<<flow.DSCP | 1<<flow.ECN | 1<<flow.FlowLabel)

type compiler struct {
	ids   map[string]int // canonical predicate → index
	preds []conf.Pred    // by index, normalised
	users []uint64       // by index: classes using it
	p     prog
}

// pred returns the index of the canonical form of p (without its Not).
func (c *compiler) pred(p *conf.Pred, ci int) (int, error) {
	f := p.Field
	if f == 0 || f > flow.TCPFlags {
		return 0, fmt.Errorf("line %d: unknown field %d", p.Line, f)
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(f)))
	n := conf.Pred{Field: f}
	if f.IsAddress() {
		if len(p.Ranges) > 0 {
			return 0, fmt.Errorf("line %d: %s takes prefixes, not ranges", p.Line, f)
		}
		for _, pf := range p.Prefixes {
			if !pf.IsValid() {
				return 0, fmt.Errorf("line %d: %s: invalid prefix", p.Line, f)
			}
			n.Prefixes = append(n.Prefixes, pf.Masked())
		}
		slices.SortFunc(n.Prefixes, func(a, b netip.Prefix) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return a.Bits() - b.Bits()
		})
		n.Prefixes = slices.Compact(n.Prefixes)
		for _, pf := range n.Prefixes {
			b.WriteString(" " + pf.String())
		}
	} else {
		if len(p.Prefixes) > 0 {
			return 0, fmt.Errorf("line %d: %s takes values or ranges, not prefixes", p.Line, f)
		}
		for _, r := range p.Ranges {
			if r.Lo > r.Hi {
				return 0, fmt.Errorf("line %d: %s: range %d-%d is inverted", p.Line, f, r.Lo, r.Hi)
			}
			n.Ranges = append(n.Ranges, r)
		}
		slices.SortFunc(n.Ranges, func(a, b conf.Range) int {
			if a.Lo != b.Lo {
				return cmpU32(a.Lo, b.Lo)
			}
			return cmpU32(a.Hi, b.Hi)
		})
		n.Ranges = slices.Compact(n.Ranges)
		for _, r := range n.Ranges {
			fmt.Fprintf(&b, " %d-%d", r.Lo, r.Hi)
		}
	}
	key := b.String()
	id, ok := c.ids[key]
	if !ok {
		if len(c.preds) == MaxPreds {
			return 0, fmt.Errorf("more than %d distinct predicates in the configuration", MaxPreds)
		}
		id = len(c.preds)
		c.ids[key] = id
		c.preds = append(c.preds, n)
		c.users = append(c.users, 0)
	}
	c.users[id] |= 1 << ci
	return id, nil
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// class compiles the filter of class ci.
func (c *compiler) class(ci int, cl *conf.Class) error {
	p := &c.p
	cp := classProg{lo: uint32(len(p.groups)), not: cl.Filter.Not, bit: 1 << ci}
	for _, g := range cl.Filter.Groups {
		gp := groupProg{lo: uint32(len(p.terms)), not: g.Not}
		for _, t := range g.Terms {
			tp := termProg{lo: uint32(len(p.lits)), not: t.Not}
			for i := range t.Preds {
				id, err := c.pred(&t.Preds[i], ci)
				if err != nil {
					return err
				}
				w, bit := uint8(id/64), uint64(1)<<(id%64)
				n := uint64(0)
				if t.Preds[i].Not {
					n = bit
				}
				// Merge into a litWord of the same word that does not have the
				// predicate yet; p AND NOT p gets two litWords, so that it is
				// false, or undecided when p is.
				j := int(tp.lo)
				for ; j < len(p.lits); j++ {
					lw := &p.lits[j]
					if lw.w == w && (lw.mask&bit == 0 || lw.neg&bit == n) {
						lw.mask |= bit
						lw.neg |= n
						break
					}
				}
				if j == len(p.lits) {
					p.lits = append(p.lits, litWord{w: w, mask: bit, neg: n})
				}
			}
			tp.hi = uint32(len(p.lits))
			p.terms = append(p.terms, tp)
		}
		gp.hi = uint32(len(p.terms))
		p.groups = append(p.groups, gp)
	}
	cp.hi = uint32(len(p.groups))
	p.classes = append(p.classes, cp)
	return nil
}

// build turns the numbered predicates into per-field tables and computes
// each class's required 8-bit literals.
func (c *compiler) build(out *prog) {
	p := &c.p
	p.nw = (len(c.preds) + 63) / 64
	byField := map[flow.Field][]int{}
	for id, pr := range c.preds {
		byField[pr.Field] = append(byField[pr.Field], id)
		p.onField[pr.Field][id/64] |= 1 << (id % 64)
	}
	for f := flow.Field(1); f <= flow.TCPFlags; f++ {
		ids := byField[f]
		if len(ids) == 0 {
			continue
		}
		var classes uint64
		for _, id := range ids {
			classes |= c.users[id]
		}
		switch {
		case f.IsAddress():
			p.addrF = append(p.addrF, c.addrTable(f, ids, classes))
		case f.Max() <= 255:
			bf := byteField{f: f}
			for _, id := range ids {
				for _, r := range c.preds[id].Ranges {
					for v := r.Lo; v <= min(r.Hi, 255); v++ {
						bf.tab[v][id/64] |= 1 << (id % 64)
					}
				}
			}
			p.byteF = append(p.byteF, bf)
		default:
			p.wideF = append(p.wideF, c.wideTable(f, ids, classes))
		}
	}
	// Required literals: in a non-negated filter, a non-negated group with a
	// single non-negated term makes every literal of that term necessary.
	var early bits
	for _, bf := range p.byteF {
		for w := range predWords {
			early[w] |= p.onField[bf.f][w]
		}
	}
	for i := range p.classes {
		cp := &p.classes[i]
		if cp.not {
			continue
		}
		for _, g := range p.groups[cp.lo:cp.hi] {
			if g.not || g.hi-g.lo != 1 {
				continue
			}
			t := p.terms[g.lo]
			if t.not {
				continue
			}
			for _, lw := range p.lits[t.lo:t.hi] {
				cp.reqMask[lw.w] |= lw.mask & early[lw.w]
				cp.reqNeg[lw.w] |= lw.neg & early[lw.w]
			}
		}
	}
	for i := range p.classes {
		c.flatten(&p.classes[i])
	}
	if p.nw <= 1 {
		for _, a := range p.anys {
			p.fastAnys = append(p.fastAnys, anyOf1{mask: a.mask[0], neg: a.neg[0], not: a.not})
		}
		for _, cp := range p.classes {
			fc := fastClass{bit: cp.bit,
				allMask: cp.allMask[0], allNeg: cp.allNeg[0], anyLo: cp.anyLo, anyHi: cp.anyHi,
				genLo: cp.genLo, genHi: cp.genHi, not: cp.not, anyNot: true}
			if fc.anyLo < fc.anyHi {
				a := p.fastAnys[fc.anyLo]
				fc.anyMask, fc.anyNeg, fc.anyNot = a.mask, a.neg, a.not
				fc.anyLo++
			}
			fc.simple = fc.anyLo == fc.anyHi && fc.genLo == fc.genHi
			p.fast = append(p.fast, fc)
			p.all1 |= fc.bit
			if fc.anyNot {
				p.anyNot1 |= fc.bit
			}
			if fc.not {
				p.not1 |= fc.bit
			}
			if !fc.simple {
				p.complex1 |= fc.bit
			}
		}
		p.buildEntries1()
	}
	*out = *p
}

// buildEntries1 fills the one-word form's per-value entries of every field.
func (p *prog) buildEntries1() {
	for _, bf := range p.byteF {
		b1 := byteField1{f: bf.f, absent: p.entry1(bf.f, 0)}
		for v := range bf.tab {
			pf := bf.tab[v][0]
			k := slices.IndexFunc(b1.ents, func(e entry1) bool { return e.p == pf })
			if k < 0 {
				k = len(b1.ents)
				b1.ents = append(b1.ents, p.entry1(bf.f, pf))
			}
			b1.idx[v] = uint8(k)
		}
		p.byte1 = append(p.byte1, b1)
	}
	for i := range p.wideF {
		wf := &p.wideF[i]
		wf.absent1 = p.entry1(wf.f, 0)
		for _, set := range wf.sets {
			wf.ents1 = append(wf.ents1, p.entry1(wf.f, set[0]))
		}
	}
	for i := range p.addrF {
		af := &p.addrF[i]
		af.absent1 = p.entry1(af.f, 0)
		for _, set := range af.v4sets {
			af.ents4 = append(af.ents4, p.entry1(af.f, set[0]))
		}
		for _, set := range af.v6sets {
			af.ents6 = append(af.ents6, p.entry1(af.f, set[0]))
		}
	}
}

// entry1 returns the one-word entry of field f when the predicates pf (of
// f) hold and f's others do not.
func (p *prog) entry1(f flow.Field, pf uint64) entry1 {
	e := entry1{p: pf}
	fm := p.onField[f][0]
	for i := range p.fast {
		c := &p.fast[i]
		if am := c.allMask & fm; (pf^c.allNeg)&am != am {
			e.dead |= c.bit
		}
		if an := c.anyMask & fm; (pf^c.anyNeg)&an != 0 {
			e.hit |= c.bit
		}
	}
	return e
}

// flatten fills the flattened form of class cp. A group whose terms each
// hold one literal is an OR of literals; when it has one term it becomes
// required literals (NOT of a single literal: the negated literal); a
// non-negated group with one term of several literals adds them all as
// required; anything else stays a general group.
func (c *compiler) flatten(cp *classProg) {
	p := &c.p
	cp.anyLo, cp.genLo = uint32(len(p.anys)), uint32(len(p.general))
	for gi := cp.lo; gi < cp.hi; gi++ {
		g := p.groups[gi]
		if g.hi-g.lo == 1 && !g.not && !p.terms[g.lo].not {
			// one non-negated conjunction: all its literals are required
			t := p.terms[g.lo]
			for _, lw := range p.lits[t.lo:t.hi] {
				if cp.allMask[lw.w]&lw.mask&(cp.allNeg[lw.w]^lw.neg) != 0 {
					goto general // p AND NOT p: keep the exact form
				}
				cp.allMask[lw.w] |= lw.mask
				cp.allNeg[lw.w] |= lw.neg
			}
			continue
		}
		{
			var a anyOf
			a.not = g.not
			for ti := g.lo; ti < g.hi; ti++ {
				t := p.terms[ti]
				if t.hi-t.lo != 1 || popcount(p.lits[t.lo].mask) != 1 {
					goto general
				}
				lw := p.lits[t.lo]
				neg := lw.neg
				if t.not {
					neg ^= lw.mask
				}
				if a.mask[lw.w]&lw.mask != 0 {
					goto general // the same predicate twice: keep the exact form
				}
				a.mask[lw.w] |= lw.mask
				a.neg[lw.w] |= neg
			}
			if g.hi-g.lo == 0 {
				goto general
			}
			p.anys = append(p.anys, a)
			continue
		}
	general:
		p.general = append(p.general, gi)
	}
	cp.anyHi, cp.genHi = uint32(len(p.anys)), uint32(len(p.general))
}

func popcount(x uint64) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

func (c *compiler) wideTable(f flow.Field, ids []int, classes uint64) wideField {
	starts := []uint32{0}
	for _, id := range ids {
		for _, r := range c.preds[id].Ranges {
			starts = append(starts, r.Lo)
			if r.Hi != ^uint32(0) {
				starts = append(starts, r.Hi+1)
			}
		}
	}
	slices.Sort(starts)
	starts = slices.Compact(starts)
	wf := wideField{f: f, classes: classes, starts: starts, sets: make([]bits, len(starts))}
	for f.Max()>>wf.shift > 255 {
		wf.shift++
	}
	for b := range wf.bucket {
		first := uint32(b) << wf.shift
		last := ^uint32(0) // the last bucket takes every value above it
		if b < 255 {
			last = uint32(b+1)<<wf.shift - 1
		}
		lo, hi := search32(starts, first), search32(starts, last)
		wf.bucket[b] = span{uint32(lo), uint32(hi - lo)}
	}
	if f.Max() <= 0xffff && len(starts) >= denseMin && len(starts) <= 256 {
		wf.dense = make([]uint8, int(f.Max())+1)
		for i, lo := range starts {
			hi := len(wf.dense)
			if i+1 < len(starts) {
				hi = int(min(starts[i+1], uint32(hi)))
			}
			for v := int(min(lo, uint32(len(wf.dense)))); v < hi; v++ {
				wf.dense[v] = uint8(i)
			}
		}
	}
	for i, v := range starts {
		for _, id := range ids {
			for _, r := range c.preds[id].Ranges {
				if r.Lo <= v && v <= r.Hi {
					wf.sets[i][id/64] |= 1 << (id % 64)
				}
			}
		}
	}
	return wf
}

// u128 is an IPv6 address as two big-endian halves.
type u128 = [2]uint64

func less128(a, b u128) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }

func addrU128(a [16]byte) u128 { return u128{be64(a[:8]), be64(a[8:])} }

func be64(b []byte) uint64 { return uint64(be32(b))<<32 | uint64(be32(b[4:])) }

// prefixRange returns the first and last address of pf as 128-bit values
// (IPv4 in the low 32 bits).
func prefixRange(pf netip.Prefix) (lo, hi u128) {
	a := pf.Addr()
	if a.Is4() {
		v := uint64(be32(a.AsSlice()))
		span := uint64(1)<<(32-pf.Bits()) - 1
		return u128{0, v}, u128{0, v | span}
	}
	lo = addrU128(a.As16())
	hi = lo
	host := 128 - pf.Bits()
	switch {
	case host >= 64:
		hi[1] = ^uint64(0)
		hi[0] |= ^uint64(0) >> (128 - host)
		if host == 128 {
			hi[0] = ^uint64(0)
		}
	case host > 0:
		hi[1] |= uint64(1)<<host - 1
	}
	return lo, hi
}

func (c *compiler) addrTable(f flow.Field, ids []int, classes uint64) addrField {
	af := addrField{f: f, classes: classes, v4: []uint32{0}, v6: []u128{{}}}
	for _, id := range ids {
		for _, pf := range c.preds[id].Prefixes {
			lo, hi := prefixRange(pf)
			if pf.Addr().Is4() {
				af.v4 = append(af.v4, uint32(lo[1]))
				if hi[1] != 0xffffffff {
					af.v4 = append(af.v4, uint32(hi[1])+1)
				}
				continue
			}
			af.v6 = append(af.v6, lo)
			if hi != (u128{^uint64(0), ^uint64(0)}) {
				next := u128{hi[0], hi[1] + 1}
				if next[1] == 0 {
					next[0]++
				}
				af.v6 = append(af.v6, next)
			}
		}
	}
	slices.Sort(af.v4)
	af.v4 = slices.Compact(af.v4)
	slices.SortFunc(af.v6, func(a, b u128) int {
		switch {
		case less128(a, b):
			return -1
		case less128(b, a):
			return 1
		}
		return 0
	})
	af.v6 = slices.Compact(af.v6)
	for b := range 256 {
		first, last := uint32(b)<<24, uint32(b)<<24|0xffffff
		lo, hi := search32(af.v4, first), search32(af.v4, last)
		af.b4[b] = span{uint32(lo), uint32(hi - lo)}
		first6, last6 := u128{uint64(b) << 56, 0}, u128{uint64(b)<<56 | (1<<56 - 1), ^uint64(0)}
		lo, hi = search128(af.v6, first6), search128(af.v6, last6)
		af.b6[b] = span{uint32(lo), uint32(hi - lo)}
	}
	af.v4sets = make([]bits, len(af.v4))
	af.v6sets = make([]bits, len(af.v6))
	for _, id := range ids {
		for _, pf := range c.preds[id].Prefixes {
			lo, hi := prefixRange(pf)
			if pf.Addr().Is4() {
				for i, v := range af.v4 {
					if uint32(lo[1]) <= v && v <= uint32(hi[1]) {
						af.v4sets[i][id/64] |= 1 << (id % 64)
					}
				}
				continue
			}
			for i, v := range af.v6 {
				if !less128(v, lo) && !less128(hi, v) {
					af.v6sets[i][id/64] |= 1 << (id % 64)
				}
			}
		}
	}
	return af
}

// fragConfig is the reassembly's bounds from <analyses> (conf.Analyses).
func fragConfig(cfg *conf.Config) reassembly.Config {
	an := cfg.Analyses.Resolved()
	return reassembly.Config{Timeout: an.FragTimeout, MaxSets: an.FragMaxSets, MaxBytes: an.FragMaxBytes, MaxFrags: an.FragMaxFrags}
}
