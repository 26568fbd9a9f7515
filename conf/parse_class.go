package conf

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tmon-project/tmon/flow"
)

// class parses a <flowClass>: its filter (or groups, matches, negations),
// granular fields and one-way path with its hop pairs and slices.
func (p *parser) class(n *node) Class {
	a := p.attrs(n, "name", "ftpData")
	cl := Class{Line: n.line}
	cl.Name, _ = a.required("name")
	switch v, ok := a.vals["ftpData"]; {
	case !ok || v == "all":
	case v == "flags":
		cl.FTPDataFlags = true
	default:
		a.bad("ftpData", errors.New("want all or flags"))
	}
	var seenFilter, seenGranular, seenMask, seenOneWay bool
	for _, k := range n.kids {
		switch k.name {
		case "filter":
			if p.once(&seenFilter, k) {
				cl.Filter = p.filter(k)
			}
		case "granular":
			if p.once(&seenGranular, k) {
				cl.Granular = p.fields(k)
			}
		case "mask":
			if p.once(&seenMask, k) {
				cl.Mask = p.fields(k)
			}
		case "oneWay":
			if p.once(&seenOneWay, k) {
				cl.OneWay = p.oneWay(k)
			}
		default:
			p.unknownKid(n, k, "filter", "granular", "mask", "oneWay")
		}
	}
	return cl
}

func (p *parser) fields(n *node) flow.Set {
	a := p.attrs(n, "fields")
	p.noKids(n)
	v, ok := a.required("fields")
	if !ok {
		return 0
	}
	s, err := parseFields(v)
	if err != nil {
		a.bad("fields", err)
	}
	return s
}

// notAttr reads the optional not attribute.
func notAttr(a attrs) bool {
	var not bool
	a.boolean("not", &not)
	return not
}

// filter reads the first level: <match> (a group of one term of one
// predicate) and <or>/<nor> groups.
func (p *parser) filter(n *node) Filter {
	f := Filter{Not: notAttr(p.attrs(n, "not")), Line: n.line}
	for _, k := range n.kids {
		switch k.name {
		case "match":
			pr := p.match(k)
			f.Groups = append(f.Groups, OrGroup{Line: k.line, Terms: []AndTerm{{Line: k.line, Preds: []Pred{pr}}}})
		case "or", "nor":
			f.Groups = append(f.Groups, p.or(k))
		default:
			p.unknownKid(n, k, "match", "or", "nor")
		}
	}
	return f
}

// not reads the negation of an <or>/<and> (attribute not) or of its
// shorthand <nor>/<nand> (which take no attribute).
func (p *parser) not(n *node) bool {
	if strings.HasPrefix(n.name, "n") {
		p.attrs(n)
		return true
	}
	return notAttr(p.attrs(n, "not"))
}

func (p *parser) or(n *node) OrGroup {
	g := OrGroup{Not: p.not(n), Line: n.line}
	for _, k := range n.kids {
		switch k.name {
		case "match":
			g.Terms = append(g.Terms, AndTerm{Line: k.line, Preds: []Pred{p.match(k)}})
		case "and", "nand":
			t := AndTerm{Not: p.not(k), Line: k.line}
			for _, m := range k.kids {
				if m.name != "match" {
					p.unknownKid(k, m, "match")
					continue
				}
				t.Preds = append(t.Preds, p.match(m))
			}
			if len(t.Preds) == 0 {
				p.errf(k, "empty: give at least one <match>")
			}
			g.Terms = append(g.Terms, t)
		default:
			p.unknownKid(n, k, "match", "and", "nand")
		}
	}
	if len(g.Terms) == 0 {
		p.errf(n, "empty: give at least one <match> or <and>")
	}
	return g
}

func (p *parser) match(n *node) Pred {
	a := p.attrs(n, "field", "value", "not")
	p.noKids(n)
	pr := Pred{Not: notAttr(a), Line: n.line}
	name, ok := a.required("field")
	if !ok {
		return pr
	}
	f, err := flow.ParseField(name)
	if err != nil {
		p.errf(n, "%w", err)
		return pr
	}
	pr.Field = f
	v, ok := a.required("value")
	if !ok {
		return pr
	}
	pr.Ranges, pr.Prefixes, err = parseValues(f, v)
	if err != nil {
		a.bad("value", err)
	}
	return pr
}

func (p *parser) oneWay(n *node) *OneWay {
	a := p.attrs(n, "hops", "maxTransit", "timeout", "dupWindow", "resolution", "perPacket", "size", "sample", "sampleRange")
	ow := &OneWay{MaxTransit: DefaultMaxTransit, DupWindow: DefaultDupWindow, Resolution: DefaultResolution, Line: n.line}
	if v, ok := a.required("hops"); ok {
		for _, h := range strings.Fields(v) {
			ow.Hops = append(ow.Hops, Hop{Name: h})
		}
	}
	a.duration("maxTransit", &ow.MaxTransit)
	ow.Timeout = 2 * ow.MaxTransit
	a.duration("timeout", &ow.Timeout)
	a.duration("dupWindow", &ow.DupWindow)
	a.duration("resolution", &ow.Resolution)
	a.boolean("perPacket", &ow.PerPacket)
	a.boolean("size", &ow.Size)
	a.sample("sample", &ow.Sample)
	a.sampleRange("sampleRange", "sample", ow)
	for _, k := range n.kids {
		if k.name != "hopPair" {
			p.unknownKid(n, k, "hopPair")
			continue
		}
		ow.Pairs = append(ow.Pairs, p.hopPair(k, ow.Hops))
	}
	if len(ow.Pairs) == 0 && len(ow.Hops) >= 2 {
		ow.Pairs = []HopPair{{From: 0, To: len(ow.Hops) - 1, Slices: DefaultSlices()}}
	}
	return ow
}

func (p *parser) hopPair(n *node, hops []Hop) HopPair {
	a := p.attrs(n, "from", "to", "slices")
	hp := HopPair{Line: n.line, Slices: DefaultSlices(), Thresholds: p.thresholds(n)}
	index := func(attr string, dst *int) {
		v, ok := a.required(attr)
		if !ok {
			return
		}
		i := slices.IndexFunc(hops, func(h Hop) bool { return h.Name == v })
		if i < 0 {
			names := make([]string, len(hops))
			for j, h := range hops {
				names[j] = h.Name
			}
			a.bad(attr, fmt.Errorf("not a hop of the path (hops: %s)", strings.Join(names, " ")))
			return
		}
		*dst = i
	}
	index("from", &hp.From)
	index("to", &hp.To)
	if v, ok := a.vals["slices"]; ok {
		s, err := parseDurations(v)
		if err != nil {
			a.bad("slices", err)
		}
		hp.Slices = s
	}
	return hp
}
