package conf

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestSpansReference checks normalize, intersect and complement against
// plain sets of small numbers.
func TestSpansReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 64
	random := func() (spans, [n]bool) {
		var s spans
		var set [n]bool
		for range r.IntN(5) {
			lo := r.IntN(n)
			hi := lo + r.IntN(n-lo)
			s = append(s, num(uint32(lo), uint32(hi)))
			for v := lo; v <= hi; v++ {
				set[v] = true
			}
		}
		return normalize(s), set
	}
	check := func(what string, s spans, want [n]bool) {
		t.Helper()
		for i := 1; i < len(s); i++ {
			if s[i-1].hi.inc().cmp(s[i].lo) >= 0 {
				t.Fatalf("%s: %v not sorted, disjoint and merged", what, s)
			}
		}
		for v := range n {
			if s.has(uint32(v)) != want[v] {
				t.Fatalf("%s: %v has(%d) = %v", what, s, v, !want[v])
			}
		}
	}
	for range 2000 {
		a, as := random()
		b, bs := random()
		check("normalize", a, as)
		var and, not [n]bool
		for v := range n {
			and[v] = as[v] && bs[v]
			not[v] = !as[v]
		}
		check("intersect", intersect(a, b), and)
		check("complement", complement(a, num(0, n-1)), not)
	}
}

func TestPrefixSpan(t *testing.T) {
	for _, tc := range []struct {
		p      string
		lo, hi u128
	}{
		{"10.0.0.0/8", u128{0, 0x0a000000}, u128{0, 0x0affffff}},
		{"0.0.0.0/0", u128{0, 0}, u128{0, 0xffffffff}},
		{"1.2.3.4/32", u128{0, 0x01020304}, u128{0, 0x01020304}},
		{"::/0", u128{0, 0}, u128{^uint64(0), ^uint64(0)}},
		{"2001:db8::/32", u128{0x20010db800000000, 0}, u128{0x20010db8ffffffff, ^uint64(0)}},
		{"2001:db8::/64", u128{0x20010db800000000, 0}, u128{0x20010db800000000, ^uint64(0)}},
		{"2001:db8::8000:0:0:0/65", u128{0x20010db800000000, 1 << 63}, u128{0x20010db800000000, ^uint64(0)}},
		{"::1/128", u128{0, 1}, u128{0, 1}},
	} {
		s := prefixSpan(netip.MustParsePrefix(tc.p))
		if s.lo != tc.lo || s.hi != tc.hi {
			t.Errorf("%s: %x-%x, want %x-%x", tc.p, s.lo, s.hi, tc.lo, tc.hi)
		}
	}
}
