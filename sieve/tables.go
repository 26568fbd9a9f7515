package sieve

import (
	"net/netip"
	"slices"

	"github.com/tmon-project/tmon/flow"
)

// The interval tables of the 16/20/32-bit and address fields (prog): a
// field's value is turned into the set of its predicates that hold by a
// lookup among sorted interval starts.

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
