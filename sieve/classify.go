package sieve

import (
	mbits "math/bits"

	"github.com/tmon-project/tmon/flow"
)

// classify returns the classes that want the dissected packet (see prog).
//
// A predicate on a field the packet does not have (ports of an ICMP packet,
// ICMP type of a TCP segment, TCP flags of a UDP datagram) is false, so its
// negation is true, as in tcpdump filters.
//
// A non-first fragment has no transport header: predicates on its ports,
// TCP flags or ICMP type/code are undecided, and the filter is evaluated in
// three-valued logic (NOT undecided = undecided; AND is false if any operand
// is false; OR is true if any operand is true). The fragment is a candidate
// of every class whose filter comes out true or undecided; the analyser
// keeps it only for the classes of its first fragment.
func (s *Sieve) classify(rec *Record, l *layout) uint64 {
	p := &s.prog
	if p.nw <= 1 && l.unknown == 0 {
		return s.classify1(rec, l.absent)
	}
	var P bits
	skip := l.absent | l.unknown
	for i := range p.byteF {
		bf := &p.byteF[i]
		if skip&(1<<bf.f) != 0 {
			continue
		}
		t := &bf.tab[byteValue(rec, bf.f)]
		for w := range p.nw {
			P[w] |= t[w]
		}
	}
	if l.unknown != 0 {
		return s.classify3(rec, l, &P)
	}
	// more than 64 predicates from here on
	alive := uint64(0)
	for i := range p.classes {
		c := &p.classes[i]
		ok := true
		for w := range p.nw {
			if (P[w]^c.reqNeg[w])&c.reqMask[w] != c.reqMask[w] {
				ok = false
			}
		}
		if ok {
			alive |= c.bit
		}
	}
	if alive == 0 {
		return 0
	}
	s.wide(rec, skip, alive, &P)
	var out uint64
	for i := range p.classes {
		c := &p.classes[i]
		if alive&c.bit != 0 && p.eval2(&P, c) {
			out |= c.bit
		}
	}
	return out
}

// wide evaluates the round-2 fields for the classes in alive.
func (s *Sieve) wide(rec *Record, skip flow.Set, alive uint64, P *bits) {
	p := &s.prog
	for i := range p.wideF {
		wf := &p.wideF[i]
		if wf.classes&alive == 0 || skip&(1<<wf.f) != 0 {
			continue
		}
		t := &wf.sets[wf.index(wideValue(rec, wf.f))]
		for w := range p.nw {
			P[w] |= t[w]
		}
	}
	for i := range p.addrF {
		af := &p.addrF[i]
		if af.classes&alive == 0 {
			continue
		}
		a := &rec.Src
		if af.f == flow.Dst {
			a = &rec.Dst
		}
		t := af.set(rec.IPVersion, a)
		for w := range p.nw {
			P[w] |= t[w]
		}
	}
}

// classify1 is classify for configurations of at most 64 predicates and
// packets with no undecided field (absent: the fields the packet lacks).
// Each field's entry (entry1) says which classes it kills and which it
// hits; a wide or address field is looked up only when a class it
// concerns is still alive.
func (s *Sieve) classify1(rec *Record, absent flow.Set) uint64 {
	p := &s.prog
	var P0, dead, hit uint64
	for i := range p.byte1 {
		bf := &p.byte1[i]
		e := &bf.absent
		if absent&(1<<bf.f) == 0 {
			e = &bf.ents[bf.idx[byteValue(rec, bf.f)]]
		}
		P0 |= e.p
		dead |= e.dead
		hit |= e.hit
	}
	if dead == p.all1 {
		return p.not1
	}
	for i := range p.wideF {
		wf := &p.wideF[i]
		if wf.classes&^dead == 0 {
			continue
		}
		e := &wf.absent1
		if absent&(1<<wf.f) == 0 {
			v := wideValue(rec, wf.f)
			var k int
			if int(v) < len(wf.dense) {
				k = int(wf.dense[v])
			} else {
				sp := wf.bucket[min(v>>wf.shift, 255)]
				k = int(sp.lo)
				if sp.n != 0 {
					k += count32(wf.starts[sp.lo+1:sp.lo+1+sp.n], v)
				}
			}
			e = &wf.ents1[k]
		}
		P0 |= e.p
		dead |= e.dead
		hit |= e.hit
	}
	for i := range p.addrF {
		af := &p.addrF[i]
		if af.classes&^dead == 0 {
			continue
		}
		e := &af.absent1
		if absent&(1<<af.f) == 0 {
			a := &rec.Src
			if af.f == flow.Dst {
				a = &rec.Dst
			}
			e = af.entry1(rec.IPVersion, a)
		}
		P0 |= e.p
		dead |= e.dead
		hit |= e.hit
	}
	ok := p.all1 &^ dead & (hit ^ p.anyNot1)
	for a := ok & p.complex1; a != 0; a &= a - 1 {
		c := &p.fast[mbits.TrailingZeros64(a)]
		if !p.rest1(P0, c) {
			ok &^= c.bit
		}
	}
	return ok ^ p.not1
}

// entry1 is set for the one-word form.
func (af *addrField) entry1(version uint8, a *[16]byte) *entry1 {
	if version == 4 {
		v := be32(a[:4])
		sp := af.b4[v>>24]
		return &af.ents4[int(sp.lo)+count32(af.v4[sp.lo+1:sp.lo+1+sp.n], v)]
	}
	v := addrU128(*a)
	sp := af.b6[v[0]>>56]
	return &af.ents6[int(sp.lo)+search128(af.v6[sp.lo:sp.lo+1+sp.n], v)]
}

// index returns the interval of value v.
func (wf *wideField) index(v uint32) int {
	if int(v) < len(wf.dense) {
		return int(wf.dense[v])
	}
	sp := wf.bucket[min(v>>wf.shift, 255)]
	return int(sp.lo) + count32(wf.starts[sp.lo+1:sp.lo+1+sp.n], v)
}

// set returns the predicates that hold for address a of an IPv4 (version 4)
// or IPv6 packet.
func (af *addrField) set(version uint8, a *[16]byte) *bits {
	if version == 4 {
		v := be32(a[:4])
		sp := af.b4[v>>24]
		return &af.v4sets[int(sp.lo)+count32(af.v4[sp.lo+1:sp.lo+1+sp.n], v)]
	}
	v := addrU128(*a)
	sp := af.b6[v[0]>>56]
	return &af.v6sets[int(sp.lo)+search128(af.v6[sp.lo:sp.lo+1+sp.n], v)]
}

// count32 returns the number of elements of s (ascending) that are ≤ v.
func count32(s []uint32, v uint32) int {
	if len(s) <= 16 {
		n := 0
		for _, b := range s {
			n += int((uint64(v)-uint64(b))>>63) ^ 1
		}
		return n
	}
	lo, hi := 0, len(s) // invariant: s[:lo] ≤ v < s[hi:]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m] <= v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// eval2 evaluates class c on predicate set P (two-valued: nothing unknown),
// on its flattened form.
func (p *prog) eval2(P *bits, c *classProg) bool {
	for w := range p.nw {
		if (P[w]^c.allNeg[w])&c.allMask[w] != c.allMask[w] {
			return c.not
		}
	}
	for ai := c.anyLo; ai < c.anyHi; ai++ {
		a := &p.anys[ai]
		var hit uint64
		for w := range p.nw {
			hit |= (P[w] ^ a.neg[w]) & a.mask[w]
		}
		if (hit != 0) == a.not {
			return c.not
		}
	}
	for _, gi := range p.general[c.genLo:c.genHi] {
		if !p.group2(P, &p.groups[gi]) {
			return c.not
		}
	}
	return !c.not
}

// rest1 is the part of eval2 after the required literals, for
// configurations of at most 64 predicates: whether the OR-of-literals groups
// and the general groups of class c all hold (before the class's NOT).
func (p *prog) rest1(P0 uint64, c *fastClass) bool {
	for _, a := range p.fastAnys[c.anyLo:c.anyHi] {
		if ((P0^a.neg)&a.mask != 0) == a.not {
			return false
		}
	}
	for _, gi := range p.general[c.genLo:c.genHi] {
		P := bits{P0}
		if !p.group2(&P, &p.groups[gi]) {
			return false
		}
	}
	return true
}

// group2 evaluates one OR group as written.
func (p *prog) group2(P *bits, g *groupProg) bool {
	for ti := g.lo; ti < g.hi; ti++ {
		t := &p.terms[ti]
		and := true
		for li := t.lo; and && li < t.hi; li++ {
			lw := &p.lits[li]
			and = (P[lw.w]^lw.neg)&lw.mask == lw.mask
		}
		if and != t.not {
			return !g.not
		}
	}
	return g.not
}

// Three-valued truth.
const (
	tFalse = iota
	tTrue
	tUnknown
)

func tNot(v int, not bool) int {
	if not && v != tUnknown {
		return tTrue + tFalse - v
	}
	return v
}

// classify3 is classify for a packet with undecided fields.
func (s *Sieve) classify3(rec *Record, l *layout, P *bits) uint64 {
	p := &s.prog
	var U bits
	for f := flow.Field(1); f <= flow.TCPFlags; f++ {
		if l.unknown&(1<<f) != 0 {
			for w := range p.nw {
				U[w] |= p.onField[f][w]
			}
		}
	}
	all := uint64(0)
	for i := range p.classes {
		all |= p.classes[i].bit
	}
	s.wide(rec, l.absent|l.unknown, all, P)
	var out uint64
	for i := range p.classes {
		c := &p.classes[i]
		v := tTrue
		for gi := c.lo; gi < c.hi && v != tFalse; gi++ {
			g := &p.groups[gi]
			or := tFalse
			for ti := g.lo; ti < g.hi && or != tTrue; ti++ {
				t := &p.terms[ti]
				and := tTrue
				for li := t.lo; and != tFalse && li < t.hi; li++ {
					lw := &p.lits[li]
					val := (P[lw.w] ^ lw.neg) & lw.mask &^ U[lw.w]
					unk := U[lw.w] & lw.mask
					switch {
					case val|unk != lw.mask:
						and = tFalse
					case unk != 0:
						and = tUnknown
					}
				}
				switch tNot(and, t.not) {
				case tTrue:
					or = tTrue
				case tUnknown:
					or = tUnknown
				}
			}
			switch tNot(or, g.not) {
			case tFalse:
				v = tFalse
			case tUnknown:
				v = tUnknown
			}
		}
		if tNot(v, c.not) != tFalse {
			out |= c.bit
		}
	}
	return out
}

// search32 returns the index of the last element of starts (ascending,
// starts[0] == 0) that is ≤ v.
func search32(starts []uint32, v uint32) int {
	if len(starts) <= 16 {
		// branch-free count of the starts ≤ v after the first
		i := 0
		for _, b := range starts[1:] {
			i += int((uint64(v)-uint64(b))>>63) ^ 1
		}
		return i
	}
	lo, hi := 0, len(starts) // invariant: starts[lo] ≤ v < starts[hi]
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if starts[m] <= v {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

func search128(starts []u128, v u128) int {
	lo, hi := 0, len(starts)
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if !less128(v, starts[m]) {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// byteValue returns the value of an 8-bit field of rec.
func byteValue(rec *Record, f flow.Field) uint8 {
	switch f {
	case flow.IPVersion:
		return rec.IPVersion
	case flow.Proto:
		return rec.Proto
	case flow.DSCP:
		return rec.DSCP
	case flow.ECN:
		return rec.ECN
	case flow.TTL:
		return rec.TTL
	case flow.Fragment:
		return uint8(rec.Flags & FlagFragment)
	case flow.ICMPType:
		return rec.ICMPType
	case flow.ICMPCode:
		return rec.ICMPCode
	case flow.TCPFlags:
		return rec.TCPFlags
	}
	return 0
}

// wideValue returns the value of a wider numeric field of rec.
func wideValue(rec *Record, f flow.Field) uint32 {
	switch f {
	case flow.Length:
		return rec.Length
	case flow.FlowLabel:
		return rec.FlowLabel
	case flow.SrcPort:
		return uint32(rec.SrcPort)
	case flow.DstPort:
		return uint32(rec.DstPort)
	case flow.VLAN:
		return uint32(rec.VLAN)
	}
	return 0
}
