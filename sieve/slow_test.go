package sieve

import (
	"net/netip"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
)

// slowClasses is the obvious reference for (*Sieve).classify: it evaluates
// every class's conf.Filter directly, predicate by predicate, in the same
// three-valued logic (absent field: the test is false; unknown: undecided).
func slowClasses(cfg *conf.Config, rec *Record, absent, unknown flow.Set) uint64 {
	var out uint64
	for i := range cfg.Classes {
		if slowFilter(&cfg.Classes[i].Filter, rec, absent, unknown) != tFalse {
			out |= 1 << i
		}
	}
	return out
}

func slowFilter(f *conf.Filter, rec *Record, absent, unknown flow.Set) int {
	and := tTrue
	for _, g := range f.Groups {
		or := tFalse
		for _, t := range g.Terms {
			a := tTrue
			for i := range t.Preds {
				a = tAnd(a, slowPred(&t.Preds[i], rec, absent, unknown))
			}
			or = tOr(or, tNot(a, t.Not))
		}
		and = tAnd(and, tNot(or, g.Not))
	}
	return tNot(and, f.Not)
}

func tAnd(a, b int) int {
	switch {
	case a == tFalse || b == tFalse:
		return tFalse
	case a == tUnknown || b == tUnknown:
		return tUnknown
	}
	return tTrue
}

func tOr(a, b int) int {
	switch {
	case a == tTrue || b == tTrue:
		return tTrue
	case a == tUnknown || b == tUnknown:
		return tUnknown
	}
	return tFalse
}

func slowPred(p *conf.Pred, rec *Record, absent, unknown flow.Set) int {
	if unknown.Has(p.Field) {
		return tUnknown
	}
	in := false
	if !absent.Has(p.Field) {
		if p.Field.IsAddress() {
			a := rec.Src
			if p.Field == flow.Dst {
				a = rec.Dst
			}
			addr := netip.AddrFrom16(a)
			if rec.IPVersion == 4 {
				addr = netip.AddrFrom4([4]byte(a[:4]))
			}
			for _, pf := range p.Prefixes {
				in = in || pf.Contains(addr)
			}
		} else {
			v := slowValue(rec, p.Field)
			for _, r := range p.Ranges {
				in = in || r.Lo <= v && v <= r.Hi
			}
		}
	}
	v := tFalse
	if in {
		v = tTrue
	}
	return tNot(v, p.Not)
}

func slowValue(rec *Record, f flow.Field) uint32 {
	switch f {
	case flow.IPVersion:
		return uint32(rec.IPVersion)
	case flow.Proto:
		return uint32(rec.Proto)
	case flow.DSCP:
		return uint32(rec.DSCP)
	case flow.ECN:
		return uint32(rec.ECN)
	case flow.TTL:
		return uint32(rec.TTL)
	case flow.Length:
		return rec.Length
	case flow.Fragment:
		if rec.Flags&FlagFragment != 0 {
			return 1
		}
		return 0
	case flow.FlowLabel:
		return rec.FlowLabel
	case flow.SrcPort:
		return uint32(rec.SrcPort)
	case flow.DstPort:
		return uint32(rec.DstPort)
	case flow.ICMPType:
		return uint32(rec.ICMPType)
	case flow.ICMPCode:
		return uint32(rec.ICMPCode)
	case flow.VLAN:
		return uint32(rec.VLAN)
	case flow.TCPFlags:
		return uint32(rec.TCPFlags)
	}
	panic("unknown field")
}
