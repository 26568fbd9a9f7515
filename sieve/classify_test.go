package sieve

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
)

// Helpers to write filters as Go literals.

func rng(f flow.Field, lo, hi uint32) conf.Pred {
	return conf.Pred{Field: f, Ranges: []conf.Range{{Lo: lo, Hi: hi}}}
}
func eq(f flow.Field, v uint32) conf.Pred { return rng(f, v, v) }
func pfx(f flow.Field, ps ...string) conf.Pred {
	p := conf.Pred{Field: f}
	for _, s := range ps {
		p.Prefixes = append(p.Prefixes, netip.MustParsePrefix(s))
	}
	return p
}
func not(p conf.Pred) conf.Pred { p.Not = true; return p }

// or is an OR group of single-predicate terms.
func or(ps ...conf.Pred) conf.OrGroup {
	g := conf.OrGroup{}
	for _, p := range ps {
		g.Terms = append(g.Terms, conf.AndTerm{Preds: []conf.Pred{p}})
	}
	return g
}

// and is the conjunction of OR groups.
func and(gs ...conf.OrGroup) conf.Filter { return conf.Filter{Groups: gs} }

// all is the conjunction of the predicates.
func all(ps ...conf.Pred) conf.Filter {
	f := conf.Filter{}
	for _, p := range ps {
		f.Groups = append(f.Groups, or(p))
	}
	return f
}

// anyPred is the disjunction of the predicates.
func anyPred(ps ...conf.Pred) conf.Filter { return and(or(ps...)) }

func testConfig() *conf.Config {
	cfg := &conf.Config{Classes: []conf.Class{
		{Name: "dns", Filter: and(or(eq(flow.Proto, 17)), or(eq(flow.DstPort, 53), eq(flow.SrcPort, 53)))},
		{Name: "owd", Filter: all(pfx(flow.Src, "10.0.0.0/8", "192.0.2.0/24"), eq(flow.Proto, 17), rng(flow.DstPort, 1000, 9999)),
			OneWay: &conf.OneWay{}},
		{Name: "web6", Filter: and(or(eq(flow.IPVersion, 6)), or(eq(flow.Proto, 6)), or(eq(flow.DstPort, 443), eq(flow.SrcPort, 443), eq(flow.DstPort, 80), eq(flow.SrcPort, 80)))},
		{Name: "icmp", Filter: anyPred(eq(flow.Proto, 1), eq(flow.Proto, 58))},
		{Name: "not-tcp-syn", Filter: conf.Filter{Not: true, Groups: []conf.OrGroup{{Terms: []conf.AndTerm{{Preds: []conf.Pred{eq(flow.Proto, 6), rng(flow.TCPFlags, 2, 2)}}}}}}},
		{Name: "vlan100-ef", Filter: all(eq(flow.VLAN, 100), not(eq(flow.DSCP, 0)), pfx(flow.Dst, "2001:db8::/32", "198.51.100.0/24"))},
		{Name: "everything"},
	}}
	for i := range cfg.Classes {
		cfg.Classes[i].Index = i
	}
	return cfg
}

func TestPacketClasses(t *testing.T) {
	s, err := Compile(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	const (
		dns = 1 << iota
		owd
		web6
		icmpC
		notSyn
		vlan100
		every
	)
	tests := []struct {
		name string
		link uint16
		data []byte
		want uint64
	}{
		{"udp to 53", LinkEthernet, fixUDP4, dns | notSyn | every},
		{"udp 10/8 to 5000", LinkRaw, ip4(17, "10.1.2.3", "10.0.0.2", 0, nil, udpHdr(7, 5000, nil)), owd | notSyn | every},
		{"udp 11/8 to 5000", LinkRaw, ip4(17, "11.1.2.3", "10.0.0.2", 0, nil, udpHdr(7, 5000, nil)), notSyn | every},
		{"tcp6 syn 443 in vlan", LinkEthernet, fixQinQTCP6, web6 | every},
		{"tcp6 ack 443 in vlan 100", LinkEthernet, ether(0x8100, vlanTag(100, 0x86dd), ip6(6, "2001:db8::1", "2001:db8::2", tcpHdr(443, 1234, 0x10, nil))), web6 | notSyn | every},
		{"tcp6 ack 443 in vlan 100 ef", LinkEthernet, ether(0x8100, vlanTag(100, 0x86dd), ef6(ip6(6, "2001:db8::1", "2001:db8::2", tcpHdr(443, 1234, 0x10, nil)))), web6 | notSyn | vlan100 | every},
		{"icmp unreachable of dns", LinkRaw, fixICMPUnreach, dns | notSyn | every},
		{"icmpv6 echo", LinkRaw, ip6(58, "::1", "::2", icmpHdr(128, 0, nil)), icmpC | notSyn | every},
		// a later fragment of a UDP datagram: ports undecided; the classes
		// its IP header allows decide that it is held for reassembly
		{"udp later fragment", LinkRaw, ip4(17, "10.1.2.3", "10.0.0.2", 100, nil, make([]byte, 20)), dns | owd | notSyn | every},
		{"tcp later fragment", LinkRaw, ip4(6, "10.1.2.3", "10.0.0.2", 100, nil, make([]byte, 20)), notSyn | every},
	}
	for _, tt := range tests {
		var rec Record
		ok, why := s.Packet(tt.data, 1, 0, tt.link, &rec)
		frag := strings.Contains(tt.name, "fragment")
		if (!ok && !(frag && why == Held)) || rec.Classes != tt.want {
			t.Errorf("%s: classes %07b (%v), want %07b", tt.name, rec.Classes, why, tt.want)
		}
		if frag {
			continue // held: no signature until the datagram is complete
		}
		if (rec.Classes&owd != 0) != (rec.Sig != 0) {
			t.Errorf("%s: signature %x for classes %07b", tt.name, rec.Sig, rec.Classes)
		}
	}
}

// ef6 sets the traffic class of an IPv6 packet to DSCP 46 (EF).
func ef6(p []byte) []byte {
	p[0] = p[0]&0xf0 | 0xb
	p[1] = p[1]&0x0f | 0x80
	return p
}

func TestCompileErrors(t *testing.T) {
	bad := []conf.Filter{
		all(conf.Pred{Field: 0, Ranges: []conf.Range{{Lo: 1, Hi: 1}}}),
		all(conf.Pred{Field: 99}),
		all(conf.Pred{Field: flow.Src, Ranges: []conf.Range{{Lo: 1, Hi: 2}}}),
		all(conf.Pred{Field: flow.DstPort, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}),
		all(rng(flow.DstPort, 9, 1)),
		all(conf.Pred{Field: flow.Src, Prefixes: []netip.Prefix{{}}}),
	}
	for i, f := range bad {
		if _, err := Compile(&conf.Config{Classes: []conf.Class{{Name: "x", Filter: f}}}); err == nil {
			t.Errorf("filter %d compiled", i)
		} else {
			t.Log(err)
		}
	}
	if _, err := Compile(&conf.Config{Classes: make([]conf.Class, 65)}); err == nil {
		t.Error("65 classes compiled")
	}
	var many conf.Config
	for i := range 300 {
		many.Classes = append(many.Classes, conf.Class{Filter: all(eq(flow.Length, uint32(i)))})
		if len(many.Classes) == 64 {
			break
		}
	}
	for i := range many.Classes {
		many.Classes[i].Filter = all(eq(flow.Length, uint32(i)), eq(flow.TTL, uint32(i)), eq(flow.SrcPort, uint32(i)), eq(flow.DstPort, uint32(i)), eq(flow.VLAN, uint32(i)))
	}
	if _, err := Compile(&many); err == nil {
		t.Error("320 distinct predicates compiled")
	}
}

// picker is the source of random choices: *rand.Rand, or fuzz input.
type picker interface {
	IntN(n int) int
	Int64N(n int64) int64
}

// randConfig draws a configuration from r: up to 64 classes, filters of
// every shape, predicates on every field with values from small pools so
// that random records hit them.
func randConfig(r picker) *conf.Config {
	cfg := &conf.Config{}
	nc := 1 + r.IntN(12)
	if r.IntN(8) == 0 {
		nc = 64
	}
	for ci := range nc {
		var f conf.Filter
		f.Not = r.IntN(4) == 0
		for range r.IntN(4) {
			g := conf.OrGroup{Not: r.IntN(4) == 0}
			for range r.IntN(4) {
				t := conf.AndTerm{Not: r.IntN(4) == 0}
				for range r.IntN(4) {
					t.Preds = append(t.Preds, randPred(r))
				}
				g.Terms = append(g.Terms, t)
			}
			f.Groups = append(f.Groups, g)
		}
		cfg.Classes = append(cfg.Classes, conf.Class{Name: "c", Index: ci, Filter: f})
	}
	return cfg
}

var (
	v4pool = []string{"10.0.0.0", "10.1.0.0", "10.1.2.3", "192.0.2.1", "0.0.0.0", "255.255.255.255"}
	v6pool = []string{"2001:db8::", "2001:db8::1", "2001:db8:1::", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::ffff:10.0.0.1", "fe80::1"}
)

func randPred(r picker) conf.Pred {
	f := flow.Field(1 + r.IntN(int(flow.TCPFlags)))
	p := conf.Pred{Field: f, Not: r.IntN(3) == 0}
	for range 1 + r.IntN(3) {
		if f.IsAddress() {
			if r.IntN(2) == 0 {
				a := netip.MustParseAddr(v4pool[r.IntN(len(v4pool))])
				p.Prefixes = append(p.Prefixes, netip.PrefixFrom(a, []int{0, 8, 16, 24, 31, 32}[r.IntN(6)]))
			} else {
				a := netip.MustParseAddr(v6pool[r.IntN(len(v6pool))])
				p.Prefixes = append(p.Prefixes, netip.PrefixFrom(a, []int{0, 1, 32, 48, 63, 64, 65, 96, 127, 128}[r.IntN(10)]))
			}
			continue
		}
		lo := randValue(r, f)
		hi := lo
		if r.IntN(2) == 0 {
			hi = max(lo, randValue(r, f))
		}
		p.Ranges = append(p.Ranges, conf.Range{Lo: lo, Hi: hi})
	}
	return p
}

func randValue(r picker, f flow.Field) uint32 {
	m := f.Max()
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return m
	case 2:
		return uint32(r.IntN(4))
	}
	return uint32(r.Int64N(int64(m) + 1))
}

func randRecord(r picker) (Record, flow.Set, flow.Set) {
	var rec Record
	rec.IPVersion = 4
	if r.IntN(2) == 0 {
		rec.IPVersion = 6
		a := netip.MustParseAddr(v6pool[r.IntN(len(v6pool))]).As16()
		rec.Src = a
		rec.Src[15] ^= byte(r.IntN(2))
		rec.Dst = netip.MustParseAddr(v6pool[r.IntN(len(v6pool))]).As16()
		rec.Dst[r.IntN(16)] ^= byte(r.IntN(3))
	} else {
		a := netip.MustParseAddr(v4pool[r.IntN(len(v4pool))]).As4()
		copy(rec.Src[:], a[:])
		rec.Src[3] ^= byte(r.IntN(2))
		a = netip.MustParseAddr(v4pool[r.IntN(len(v4pool))]).As4()
		copy(rec.Dst[:], a[:])
		rec.Dst[r.IntN(4)] ^= byte(r.IntN(3))
	}
	rec.Proto = uint8(randValue(r, flow.Proto))
	rec.DSCP = uint8(randValue(r, flow.DSCP))
	rec.ECN = uint8(randValue(r, flow.ECN))
	rec.TTL = uint8(randValue(r, flow.TTL))
	rec.Length = randValue(r, flow.Length)
	if r.IntN(2) == 0 {
		rec.Flags |= FlagFragment
	}
	rec.FlowLabel = randValue(r, flow.FlowLabel)
	rec.SrcPort = uint16(randValue(r, flow.SrcPort))
	rec.DstPort = uint16(randValue(r, flow.DstPort))
	rec.ICMPType = uint8(randValue(r, flow.ICMPType))
	rec.ICMPCode = uint8(randValue(r, flow.ICMPCode))
	rec.VLAN = uint16(randValue(r, flow.VLAN))
	rec.TCPFlags = uint8(randValue(r, flow.TCPFlags))
	var absent, unknown flow.Set
	for _, f := range []flow.Field{flow.SrcPort, flow.DstPort, flow.TCPFlags, flow.ICMPType, flow.ICMPCode} {
		switch r.IntN(6) {
		case 0:
			absent = absent.With(f)
		case 1:
			unknown = unknown.With(f)
		}
	}
	return rec, absent, unknown
}

// TestClassifyAgreesWithSlow checks the compiled sieve against the
// reference evaluator on random configurations and records.
func TestClassifyAgreesWithSlow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for range n {
		cfg := randConfig(r)
		s, err := Compile(cfg)
		if err != nil {
			if strings.Contains(err.Error(), "distinct predicates") {
				continue
			}
			t.Fatal(err)
		}
		for range 50 {
			rec, absent, unknown := randRecord(r)
			checkAgree(t, s, cfg, &rec, absent, unknown)
		}
	}
}

func checkAgree(t *testing.T, s *Sieve, cfg *conf.Config, rec *Record, absent, unknown flow.Set) {
	t.Helper()
	l := layout{absent: absent, unknown: unknown}
	got := s.classify(rec, &l)
	want := slowClasses(cfg, rec, absent, unknown)
	if got != want {
		t.Fatalf("classes %b, reference %b\nrecord %+v absent %v unknown %v\nconfig %+v", got, want, *rec, absent, unknown, cfg.Classes)
	}
}
