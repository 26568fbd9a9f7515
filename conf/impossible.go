package conf

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/tmon-project/tmon/flow"
)

// This file finds filters that can never match: a conjunction of predicates
// that no packet satisfies is a mistake in the file (a typo in a prefix, a
// port on the wrong protocol) that would otherwise show only as a class that
// stays silent. Each field's allowed values are kept as sorted sets of
// intervals, exact for prefixes and ranges alike.

// u128 is a 128-bit unsigned integer: a numeric field value or an address.
type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a u128) inc() u128 {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

func (a u128) dec() u128 {
	if a.lo == 0 {
		return u128{a.hi - 1, ^uint64(0)}
	}
	return u128{a.hi, a.lo - 1}
}

// span is an inclusive interval; spans is a sorted list of disjoint ones.
type span struct{ lo, hi u128 }
type spans []span

func normalize(s spans) spans {
	slices.SortFunc(s, func(a, b span) int { return a.lo.cmp(b.lo) })
	var out spans
	for _, x := range s {
		if n := len(out); n > 0 && (x.lo.cmp(out[n-1].hi) <= 0 || x.lo == out[n-1].hi.inc()) {
			if x.hi.cmp(out[n-1].hi) > 0 {
				out[n-1].hi = x.hi
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

func intersect(a, b spans) spans {
	var out spans
	for i, j := 0, 0; i < len(a) && j < len(b); {
		lo, hi := a[i].lo, a[i].hi
		if b[j].lo.cmp(lo) > 0 {
			lo = b[j].lo
		}
		if b[j].hi.cmp(hi) < 0 {
			hi = b[j].hi
		}
		if lo.cmp(hi) <= 0 {
			out = append(out, span{lo, hi})
		}
		if a[i].hi.cmp(b[j].hi) < 0 {
			i++
		} else {
			j++
		}
	}
	return out
}

// complement returns the values of u not in s (s lies within u).
func complement(s spans, u span) spans {
	var out spans
	cur := u.lo
	for _, x := range s {
		if x.lo.cmp(cur) > 0 {
			out = append(out, span{cur, x.lo.dec()})
		}
		if x.hi.cmp(u.hi) >= 0 {
			return out
		}
		cur = x.hi.inc()
	}
	return append(out, span{cur, u.hi})
}

func (s spans) has(v uint32) bool {
	x := u128{0, uint64(v)}
	for _, r := range s {
		if r.lo.cmp(x) <= 0 && x.cmp(r.hi) <= 0 {
			return true
		}
	}
	return false
}

// values is the set of values a field may take: part 0 holds numbers or
// IPv4 addresses, part 1 IPv6 addresses.
type values [2]spans

func (v values) empty() bool { return len(v[0]) == 0 && len(v[1]) == 0 }

var (
	v4Universe = span{u128{}, u128{0, 1<<32 - 1}}
	v6Universe = span{u128{}, u128{^uint64(0), ^uint64(0)}}
)

// universe returns every value field f can take on an IP packet.
func universe(f flow.Field) values {
	switch {
	case f.IsAddress():
		return values{{v4Universe}, {v6Universe}}
	case f == flow.IPVersion:
		return values{{num(4, 4), num(6, 6)}}
	}
	return values{{num(0, f.Max())}}
}

func num(lo, hi uint32) span { return span{u128{0, uint64(lo)}, u128{0, uint64(hi)}} }

func prefixSpan(p netip.Prefix) span {
	a := p.Masked().Addr()
	var lo, mask u128
	host := a.BitLen() - p.Bits()
	if a.Is4() {
		b := a.As4()
		lo.lo = uint64(binary.BigEndian.Uint32(b[:]))
	} else {
		b := a.As16()
		lo = u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
	}
	switch {
	case host >= 64:
		mask = u128{^uint64(0) >> (128 - host), ^uint64(0)}
	case host > 0:
		mask.lo = ^uint64(0) >> (64 - host)
	}
	return span{lo, u128{lo.hi | mask.hi, lo.lo | mask.lo}}
}

// predValues returns the values p admits, within the field's universe.
func predValues(p Pred, not bool) values {
	u := universe(p.Field)
	var v values
	for _, r := range p.Ranges {
		v[0] = append(v[0], num(r.Lo, r.Hi))
	}
	for _, pf := range p.Prefixes {
		part := 1
		if pf.Addr().Is4() {
			part = 0
		}
		v[part] = append(v[part], prefixSpan(pf))
	}
	for i := range v {
		v[i] = normalize(v[i])
		if len(u[i]) > 0 {
			v[i] = intersect(v[i], u[i])
		}
	}
	if p.Not != not {
		for i := range v {
			if len(u[i]) > 0 {
				var c spans
				for _, us := range u[i] {
					c = append(c, intersect(complement(v[i], us), spans{us})...)
				}
				v[i] = c
			}
		}
	}
	return v
}

// conj is the set of packets a conjunction of predicates admits, one value
// set per field, with the lines of the predicates that narrowed each field.
type conj struct {
	vals  [32]values
	set   flow.Set
	lines [32][]int
}

// filterErr is one impossible conjunction, blamed on a predicate.
type filterErr struct {
	line int
	elem string
	err  error
}

// add narrows c by p (negated when not) and reports when c became empty.
func (c *conj) add(p Pred, not bool) *filterErr {
	f := p.Field
	v := predValues(p, not)
	if c.set.Has(f) {
		for i := range v {
			v[i] = intersect(v[i], c.vals[f][i])
		}
	}
	earlier := c.lines[f]
	c.vals[f], c.set, c.lines[f] = v, c.set.With(f), append(slices.Clip(earlier), p.Line)
	bad := func(format string, args ...any) *filterErr {
		return &filterErr{p.Line, elem("match", "field", f.String()), fmt.Errorf("filter can never match: "+format, args...)}
	}
	if v.empty() {
		if len(earlier) == 0 {
			return bad("no %s value satisfies it", f)
		}
		return bad("no %s value satisfies both this and the <match> on %s", f, lineList(earlier))
	}
	// Address families and the IP version must agree.
	versions := universe(flow.IPVersion)[0]
	var why []string
	narrow := func(g flow.Field, allowed spans) {
		if !c.set.Has(g) {
			return
		}
		if n := intersect(versions, allowed); len(n) < len(versions) {
			versions = n
			why = append(why, fmt.Sprintf("%s (%s)", g, lineList(c.lines[g])))
		}
	}
	if c.set.Has(flow.IPVersion) {
		narrow(flow.IPVersion, c.vals[flow.IPVersion][0])
	}
	for _, g := range []flow.Field{flow.Src, flow.Dst} {
		var fam spans
		if len(c.vals[g][0]) > 0 {
			fam = append(fam, num(4, 4))
		}
		if len(c.vals[g][1]) > 0 {
			fam = append(fam, num(6, 6))
		}
		narrow(g, fam)
	}
	if c.set.Has(flow.FlowLabel) && !c.vals[flow.FlowLabel][0].has(0) {
		narrow(flow.FlowLabel, spans{num(6, 6)}) // IPv4 packets have flow label 0
	}
	if len(versions) == 0 {
		return bad("%s allow no common IP version", strings.Join(why, " and "))
	}
	// Ports are zero except for TCP and UDP.
	for _, g := range []flow.Field{flow.SrcPort, flow.DstPort} {
		if c.set.Has(g) && !c.vals[g][0].has(0) && c.set.Has(flow.Proto) &&
			!c.vals[flow.Proto][0].has(6) && !c.vals[flow.Proto][0].has(17) {
			return bad("%s (%s) is non-zero only for TCP and UDP, which ip.proto (%s) excludes",
				g, lineList(c.lines[g]), lineList(c.lines[flow.Proto]))
		}
	}
	return nil
}

func lineList(lines []int) string {
	s := make([]string, len(lines))
	for i, l := range lines {
		s[i] = fmt.Sprint(l)
	}
	if len(s) == 1 {
		return "line " + s[0]
	}
	return "lines " + strings.Join(s, ", ")
}

// impossible returns the parts of f that no packet can satisfy. Groups that
// are plain conjunctions (a lone <match>, an <or> of one <and>) are folded
// into a context every other term is checked against, since the top level is
// an AND: a term contradicting the context can never contribute. Reported:
// a contradictory context, a term contradicting itself, and an <or> whose
// every term contradicts the context. A redundant term (one of several in an
// <or>, or in a <nor>) is not an error.
func impossible(f *Filter) []filterErr {
	var ctx conj
	var rest []OrGroup
	for _, g := range f.Groups {
		if len(g.Terms) != 1 {
			rest = append(rest, g)
			continue
		}
		t := g.Terms[0]
		neg := g.Not != t.Not
		if neg && len(t.Preds) != 1 {
			rest = append(rest, g) // NOT(a AND b) is a disjunction
			continue
		}
		for _, p := range t.Preds {
			if err := ctx.add(p, neg); err != nil {
				return []filterErr{*err}
			}
		}
	}
	var errs []filterErr
	for _, g := range rest {
		var dead []filterErr
		for _, t := range g.Terms {
			// A term contradicting itself is a mistake wherever it is.
			var alone conj
			if err := alone.addAll(t.Preds); err != nil {
				errs = append(errs, *err)
				continue
			}
			c := ctx
			if err := c.addAll(t.Preds); err != nil {
				dead = append(dead, *err)
			}
		}
		// A term contradicting only the rest of the filter is redundant,
		// unless every term of a plain OR is: then nothing matches.
		if !g.Not && len(dead) == len(g.Terms) {
			errs = append(errs, dead...)
		}
	}
	return errs
}

func (c *conj) addAll(preds []Pred) *filterErr {
	for _, p := range preds {
		if err := c.add(p, false); err != nil {
			return err
		}
	}
	return nil
}
