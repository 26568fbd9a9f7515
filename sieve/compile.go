package sieve

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/reassembly"
)

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

// fragConfig is the reassembly's bounds from <analyses> (conf.Analyses).
func fragConfig(cfg *conf.Config) reassembly.Config {
	an := cfg.Analyses.Resolved()
	return reassembly.Config{Timeout: an.FragTimeout, MaxSets: an.FragMaxSets, MaxBytes: an.FragMaxBytes, MaxFrags: an.FragMaxFrags}
}
