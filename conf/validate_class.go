package conf

import (
	"fmt"
	"strings"
	"time"

	"github.com/tmon-project/tmon/flow"
)

// classes checks the flow classes: unique names, filters and granular
// fields the sieve can evaluate, and each one-way path against the probes
// and interfaces that observe its hops.
func (v *validator) classes() {
	names := map[string]int{}
	for i := range v.c.Classes {
		cl := &v.c.Classes[i]
		e := elem("flowClass", "name", cl.Name)
		if i == MaxClasses {
			v.addf(cl.Line, e, "more than %d flow classes", MaxClasses)
		}
		if !validName(cl.Name) {
			v.addf(cl.Line, e, "name=%q: want %s", cl.Name, nameRule)
		} else if l, dup := names[cl.Name]; dup {
			v.addf(cl.Line, e, "name=%q: already used by the class on line %d", cl.Name, l)
		} else {
			names[cl.Name] = cl.Line
		}
		if cl.Index != i {
			v.addf(cl.Line, e, "Index is %d, want its position %d", cl.Index, i)
		}
		v.fieldSet(cl, "granular", cl.Granular, func(f flow.Field) bool { return flow.Granular(f) },
			"cannot split a class (not kept in a flow key)")
		v.fieldSet(cl, "mask", cl.Mask, MaskAllowed.Has,
			"cannot be masked (only "+MaskAllowed.String()+")")
		v.filter(cl)
		if cl.OneWay != nil {
			v.oneWay(cl)
		}
	}
}

// fieldSet checks a granular or mask field set.
func (v *validator) fieldSet(cl *Class, what string, s flow.Set, ok func(flow.Field) bool, why string) {
	var all flow.Set
	for _, f := range flow.Fields() {
		all = all.With(f)
	}
	if s&^all != 0 {
		v.addf(cl.Line, elem("flowClass", "name", cl.Name), "<%s>: unknown field bits %#x", what, uint32(s&^all))
	}
	for _, f := range flow.Fields() {
		if s.Has(f) && !ok(f) {
			v.addf(cl.Line, elem("flowClass", "name", cl.Name), "<%s>: %s %s", what, f, why)
		}
	}
}

func (v *validator) filter(cl *Class) {
	f := &cl.Filter
	bad := false
	for _, g := range f.Groups {
		if len(g.Terms) == 0 {
			v.addf(g.Line, elem("or"), "empty: give at least one <match> or <and>")
			bad = true
		}
		for _, t := range g.Terms {
			if len(t.Preds) == 0 {
				v.addf(t.Line, elem("and"), "empty: give at least one <match>")
				bad = true
			}
			for _, p := range t.Preds {
				if !v.pred(&p) {
					bad = true
				}
			}
		}
	}
	if bad {
		return
	}
	line := f.Line
	if line == 0 {
		line = cl.Line
	}
	if f.Not && len(f.Groups) == 0 {
		v.addf(line, elem("filter", "not", "true"), "matches nothing: an empty filter matches every packet, and not=\"true\" inverts it")
		return
	}
	for _, err := range impossible(f) {
		v.add(err.line, err.elem, err.err)
	}
}

// pred checks one predicate on its own; it reports whether it is sound.
func (v *validator) pred(p *Pred) bool {
	e := elem("match", "field", p.Field.String())
	n := len(v.errs)
	if p.Field == 0 || p.Field.String() == fmt.Sprintf("field(%d)", uint8(p.Field)) {
		v.addf(p.Line, e, "unknown field %d", p.Field)
		return false
	}
	if p.Field.IsAddress() {
		if len(p.Ranges) > 0 {
			v.addf(p.Line, e, "numeric ranges on an address field")
		}
		if len(p.Prefixes) == 0 {
			v.addf(p.Line, e, "no value")
		}
		for _, pf := range p.Prefixes {
			switch {
			case !pf.IsValid():
				v.addf(p.Line, e, "invalid prefix")
			case pf.Addr().Zone() != "":
				v.addf(p.Line, e, "value %q: zones are not allowed", pf)
			case pf.Masked() != pf:
				v.addf(p.Line, e, "value %q: host bits set (did you mean %s?)", pf, pf.Masked())
			}
		}
	} else {
		if len(p.Prefixes) > 0 {
			v.addf(p.Line, e, "address prefixes on a numeric field")
		}
		if len(p.Ranges) == 0 {
			v.addf(p.Line, e, "no value")
		}
		max := p.Field.Max()
		for _, r := range p.Ranges {
			switch {
			case r.Lo > r.Hi:
				v.addf(p.Line, e, "value %d-%d: inverted range", r.Lo, r.Hi)
			case r.Hi > max:
				v.addf(p.Line, e, "value %s: out of range (0-%d)", r, max)
			}
		}
	}
	return len(v.errs) == n
}

// String renders r as written in a value list: "N" or "N-M".
func (r Range) String() string {
	if r.Lo == r.Hi {
		return fmt.Sprint(r.Lo)
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

func (v *validator) oneWay(cl *Class) {
	ow := cl.OneWay
	hopNames := make([]string, len(ow.Hops))
	for i, h := range ow.Hops {
		hopNames[i] = h.Name
	}
	e := elem("oneWay", "hops", strings.Join(hopNames, " "))
	if len(ow.Hops) < 2 || len(ow.Hops) > MaxHops {
		v.addf(ow.Line, e, "%d hops: a path has 2 to %d", len(ow.Hops), MaxHops)
	}
	seen := map[string]bool{}
	for _, h := range ow.Hops {
		switch {
		case !validName(h.Name):
			v.addf(ow.Line, e, "hop %q: want %s", h.Name, nameRule)
		case seen[h.Name]:
			v.addf(ow.Line, e, "hop %q: listed twice", h.Name)
		default:
			want := v.c.interfacesOf(h.Name)
			if len(want) == 0 {
				v.addf(ow.Line, e, "hop %q: no <interface> has hop=%q", h.Name, h.Name)
			} else if !equalPI(want, h.Interfaces) {
				v.addf(ow.Line, e, "hop %q: Interfaces %v, want %v (every interface with hop=%q)", h.Name, h.Interfaces, want, h.Name)
			}
		}
		seen[h.Name] = true
	}
	if ow.MaxTransit <= 0 {
		v.addf(ow.Line, e, "maxTransit=%q: must be positive", ow.MaxTransit)
	} else if ow.Timeout < ow.MaxTransit {
		v.addf(ow.Line, e, "timeout=%q: must be at least maxTransit (%s)", ow.Timeout, ow.MaxTransit)
	}
	if ow.DupWindow < 0 {
		v.addf(ow.Line, e, "dupWindow=%q: must not be negative", ow.DupWindow)
	}
	if ow.SampleRange {
		w := uint64(ow.SampleHi) - uint64(ow.SampleLo) + 1
		switch {
		case ow.SampleHi < ow.SampleLo || w&(w-1) != 0:
			v.addf(ow.Line, e, "sampleRange=\"0x%08x-0x%08x\": want a non-empty range whose width is a power of two", ow.SampleLo, ow.SampleHi)
		case ow.Sample != RangeSample(ow.SampleLo, ow.SampleHi):
			v.addf(ow.Line, e, "sampleRange=\"0x%08x-0x%08x\": sample is 1/%d, want 1/%d (2^32 / width)", ow.SampleLo, ow.SampleHi, ow.Sample, RangeSample(ow.SampleLo, ow.SampleHi))
		case ow.Sample > MaxSample:
			v.addf(ow.Line, e, "sampleRange=\"0x%08x-0x%08x\": at least 2^32/%d wide (1 packet in %d)", ow.SampleLo, ow.SampleHi, MaxSample, MaxSample)
		}
	} else if ow.Sample > MaxSample {
		v.addf(ow.Line, e, "sample=\"1/%d\": at most 1/%d", ow.Sample, MaxSample)
	}
	if !powerOfTen(ow.Resolution) {
		v.addf(ow.Line, e, "resolution=%q: want a power of ten from 1ns to 1ms", ow.Resolution)
	}
	if both := cl.Granular & cl.Mask; both != 0 {
		// The probes on either side of a NAT see different values of a
		// masked field, so they would put the same packet in different
		// flow instances and the sightings would never meet.
		v.addf(cl.Line, elem("flowClass", "name", cl.Name), "%s both granular and masked in a one-way class", both)
	}
	if len(ow.Pairs) == 0 {
		v.addf(ow.Line, e, "no hop pair")
	}
	pairs := map[[2]int]int{}
	for _, hp := range ow.Pairs {
		pe := elem("hopPair")
		if hp.From >= 0 && hp.From < len(ow.Hops) && hp.To >= 0 && hp.To < len(ow.Hops) {
			pe = elem("hopPair", "from", ow.Hops[hp.From].Name, "to", ow.Hops[hp.To].Name)
		}
		line := hp.Line
		if line == 0 {
			line = ow.Line
		}
		for i := range hp.Thresholds {
			v.threshold(&hp.Thresholds[i])
		}
		switch {
		case hp.From < 0 || hp.To >= len(ow.Hops):
			v.addf(line, pe, "hop index out of range")
		case hp.From >= hp.To:
			v.addf(line, pe, "from must come before to in the path")
		default:
			k := [2]int{hp.From, hp.To}
			if l, dup := pairs[k]; dup {
				v.addf(line, pe, "pair already given on line %d", l)
			}
			pairs[k] = line
		}
		switch {
		case len(hp.Slices) == 0:
			v.addf(line, pe, "slices: give at least one edge")
		case len(hp.Slices) > MaxSlices:
			v.addf(line, pe, "slices: %d edges, at most %d", len(hp.Slices), MaxSlices)
		}
		for i, s := range hp.Slices {
			if s <= 0 {
				v.addf(line, pe, "slices: edge %s must be positive", s)
				break
			}
			if i > 0 && s <= hp.Slices[i-1] {
				v.addf(line, pe, "slices: edge %s after %s: edges must be strictly ascending", s, hp.Slices[i-1])
				break
			}
		}
	}
}

func equalPI(a, b []ProbeInterface) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// powerOfTen reports whether d is 1ns, 10ns, ... or 1ms: sightings are sent
// as multiples of the resolution, and a decimal quantum keeps spool times exact.
func powerOfTen(d time.Duration) bool {
	for q := time.Nanosecond; q <= time.Millisecond; q *= 10 {
		if d == q {
			return true
		}
	}
	return false
}
