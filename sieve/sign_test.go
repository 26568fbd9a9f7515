package sieve

import (
	"bytes"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
)

func oneWayConfig(mask flow.Set) *conf.Config {
	return &conf.Config{Classes: []conf.Class{{Name: "all", Mask: mask, OneWay: &conf.OneWay{}}}}
}

func mustSig(t *testing.T, s *Sieve, link uint16, data []byte) uint32 {
	t.Helper()
	var rec Record
	ok, why := s.Packet(data, 0, 0, link, &rec)
	if !ok {
		t.Fatalf("packet not wanted: %v", why)
	}
	return rec.Sig
}

// TestSignInvariant: the same IP packet seen at two points, after a router
// (TTL and checksum), on another segment (MAC addresses, a VLAN tag) with
// other padding, has the same signature; any payload byte change changes it.
func TestSignInvariant(t *testing.T) {
	s, err := Compile(oneWayConfig(0))
	if err != nil {
		t.Fatal(err)
	}
	a := bytes.Clone(fixUDP4)
	b := cat([]byte{9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8, 0x81, 0x00, 0x00, 0x2a, 0x08, 0x00}, fixUDP4[14:14+32], []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6})
	b[18+8] = 17              // TTL
	b[18+10], b[18+11] = 1, 2 // checksum
	sa, sb := mustSig(t, s, LinkEthernet, a), mustSig(t, s, LinkEthernet, b)
	if sa != sb {
		t.Fatalf("signatures differ: %08x %08x", sa, sb)
	}
	if raw, _ := s.Sign(fixUDP4[14:]); raw != sa {
		t.Fatalf("Sign on the IP packet %08x, Packet %08x", raw, sa)
	}
	for i := 14 + 28; i < 14+32; i++ {
		c := bytes.Clone(a)
		c[i] ^= 0x01
		if mustSig(t, s, LinkEthernet, c) == sa {
			t.Errorf("payload byte %d changed, signature did not", i-14-28)
		}
	}
	// header bytes that are not masked count too
	for _, i := range []int{1, 4, 9, 13, 17, 21, 25} {
		c := bytes.Clone(a)
		c[14+i] ^= 0x01
		if mustSig(t, s, LinkEthernet, c) == sa {
			t.Errorf("IP byte %d changed, signature did not", i)
		}
	}
	// The UDP checksum is left out: a sender with checksum offload is
	// captured before the NIC fills it in.
	c := bytes.Clone(a)
	c[14+26], c[14+27] = 0xee, 0x5a
	if mustSig(t, s, LinkEthernet, c) != sa {
		t.Errorf("UDP checksum changed the signature")
	}
}

// TestSignMasks: fields in the mask do not change the signature; NAT of an
// address or a port also hides the transport checksum.
func TestSignMasks(t *testing.T) {
	udp := ip4(17, "10.0.0.1", "10.0.0.2", 0, nil, udpHdr(1000, 2000, []byte("payload!")))
	tcp6 := ip6(6, "2001:db8::1", "2001:db8::2", tcpHdr(1000, 2000, 0x18, []byte("payload!")))
	echo := ip4(1, "10.0.0.1", "10.0.0.2", 0, nil, icmpHdr(8, 0, []byte("ping")))
	tests := []struct {
		name string
		pkt  []byte
		mask flow.Set
		edit func(p []byte)
	}{
		{"snat v4", udp, 1 << flow.Src, func(p []byte) { p[12] = 172; p[26] ^= 0xff }},
		{"dnat v4", udp, 1 << flow.Dst, func(p []byte) { p[19] = 9; p[27] ^= 0xff }},
		{"napt v4", udp, 1<<flow.Src | 1<<flow.SrcPort, func(p []byte) { p[12] = 172; p[20], p[21] = 0xee, 0xee; p[26] ^= 0xff }},
		{"dscp", udp, 1 << flow.DSCP, func(p []byte) { p[1] = 0xb8 }},
		{"ecn", udp, 1 << flow.ECN, func(p []byte) { p[1] |= 3 }},
		{"v6 flow label and dscp", tcp6, 1<<flow.FlowLabel | 1<<flow.DSCP, func(p []byte) { p[1] = 0x8f; p[2], p[3] = 9, 9; p[0] = 0x6b }},
		{"v6 snat", tcp6, 1 << flow.Src, func(p []byte) { p[8] = 0xfd; p[40+16] ^= 1 }},
		{"v6 dport", tcp6, 1 << flow.DstPort, func(p []byte) { p[42] = 7; p[40+17] ^= 1 }},
		{"icmp echo napt", echo, 1<<flow.Src | 1<<flow.SrcPort, func(p []byte) { p[12] = 172; p[22] ^= 1; p[24] ^= 7 }},
	}
	for _, tt := range tests {
		a := bytes.Clone(tt.pkt)
		b := bytes.Clone(tt.pkt)
		tt.edit(b)
		sa, _ := signWith(a, tt.mask)
		sb, _ := signWith(b, tt.mask)
		if sa != sb {
			t.Errorf("%s: masked signatures differ", tt.name)
		}
		s0, _ := signWith(b, 0)
		if s0 == sa {
			t.Errorf("%s: unmasked signature does not see the edit", tt.name)
		}
	}
}

// TestSignReference compares sign with the CRC-32C of a masked copy of the
// whole IP packet, built byte by byte at known offsets.
func TestSignReference(t *testing.T) {
	pl := []byte("0123456789abcdefghij")
	opts := []byte{0x07, 7, 4, 1, 2, 3, 4, 0x94, 4, 0, 0, 0x01, 0x00} // record route, router alert, NOP, EOL
	v4 := ip4(17, "10.0.0.1", "10.0.0.2", 0, opts, udpHdr(1000, 2000, pl))
	mask := flow.Set(1<<flow.Src | 1<<flow.DstPort | 1<<flow.ECN)
	ref := bytes.Clone(v4)
	ref[1] &= 0xfc
	ref[8] = 0
	ref[10], ref[11] = 0, 0
	clear(ref[12:16])
	clear(ref[20:27]) // record route (mutable)
	ihl := 20 + 16
	clear(ref[ihl+2 : ihl+4]) // dport
	clear(ref[ihl+6 : ihl+8]) // UDP checksum
	got, why := signWith(v4, mask)
	if why != Wanted || got != crc32.Checksum(ref, castagnoli) {
		t.Fatalf("v4 with options: %08x (%v), reference %08x", got, why, crc32.Checksum(ref, castagnoli))
	}

	v6 := ip6(0, "2001:db8::1", "2001:db8::2", cat(ext6(60, 0), ext6(6, 1), tcpHdr(1000, 2000, 2, pl)))
	mask = 1<<flow.Dst | 1<<flow.SrcPort | 1<<flow.FlowLabel
	ref = bytes.Clone(v6)
	ref[1] &= 0xf0
	ref[2], ref[3] = 0, 0
	ref[7] = 0
	clear(ref[24:40])
	th := 40 + 8 + 16
	clear(ref[th : th+2])
	clear(ref[th+16 : th+18])
	got, _ = signWith(v6, mask)
	if got != crc32.Checksum(ref, castagnoli) {
		t.Fatalf("v6 with extension headers: %08x, reference %08x", got, crc32.Checksum(ref, castagnoli))
	}

	// ICMP error with NAT masking: the quoted addresses, checksum and ports go too.
	icmpErr := bytes.Clone(fixICMPUnreach)
	ref = bytes.Clone(icmpErr)
	ref[8], ref[10], ref[11] = 0, 0, 0
	clear(ref[12:16])
	clear(ref[22:24])         // ICMP checksum
	clear(ref[28+10 : 28+20]) // quoted checksum and addresses
	clear(ref[48:52])         // quoted ports
	clear(ref[54:56])         // quoted UDP checksum
	got, _ = signWith(icmpErr, 1<<flow.Src)
	if got != crc32.Checksum(ref, castagnoli) {
		t.Fatalf("icmp error: %08x, reference %08x", got, crc32.Checksum(ref, castagnoli))
	}

	// truncated capture: only the captured bytes
	cut := v4[:len(v4)-5]
	ref = bytes.Clone(cut)
	ref[8], ref[10], ref[11] = 0, 0, 0
	clear(ref[20:27])
	clear(ref[ihl+6 : ihl+8]) // UDP checksum, always left out
	got, _ = signWith(cut, 0)
	if got != crc32.Checksum(ref, castagnoli) {
		t.Fatalf("truncated: %08x, reference %08x", got, crc32.Checksum(ref, castagnoli))
	}
}

func TestSignOnlyOneWay(t *testing.T) {
	cfg := &conf.Config{Classes: []conf.Class{{Name: "plain"}}}
	s, _ := Compile(cfg)
	var rec Record
	s.Packet(fixUDP4, 0, 0, LinkEthernet, &rec)
	if rec.Sig != 0 || s.Stats().Signed != 0 {
		t.Fatalf("signed a packet of no one-way class")
	}
}

// signWith signs ip with the mask of a one-way class masking mask.
func signWith(ip []byte, mask flow.Set) (uint32, Reason) {
	s, err := Compile(oneWayConfig(mask))
	if err != nil {
		panic(err)
	}
	return s.Sign(ip)
}

// TestSignWholeAgreesWithPieces: the one-copy signature of a short packet
// equals the piecewise one (the form longer packets take) on every frame of
// the tcpdump and Zeek corpora, many of them malformed or truncated, under
// masks that touch each masked field, ICMP errors' quoted headers included.
func TestSignWholeAgreesWithPieces(t *testing.T) {
	var names []string
	for _, sub := range []string{"tcpdump", "zeek"} {
		dir := corpusDir(t, sub)
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				names = append(names, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	masks := []flow.Set{0, natAddr | natPorts, 1<<flow.Src | 1<<flow.DstPort, 1<<flow.DSCP | 1<<flow.ECN | 1<<flow.FlowLabel}
	sc := new(signScratch)
	var compared, inner, options int
	for _, name := range names {
		frames, _ := readCapture(name, 1<<20)
		for i, f := range frames {
			var rec Record
			var l layout
			if dissect(f.data, f.link, &rec, &l) != Wanted || l.end-l.ip > wholeMax {
				continue
			}
			for _, m := range masks {
				whole := sign(f.data, &l, m, sc)
				pieces := signPieces(f.data, &l, m, &sc.piece)
				if whole != pieces {
					t.Fatalf("%s #%d mask %v: whole %08x, pieces %08x", filepath.Base(name), i+1, m, whole, pieces)
				}
			}
			compared++
			if l.inIP >= 0 {
				inner++
			}
			if l.ipHdr > 20 && rec.IPVersion == 4 || l.l4 > l.ip+l.ipHdr {
				options++
			}
		}
	}
	t.Logf("%d packets compared, %d ICMP errors with a quoted header, %d with IPv4 options or IPv6 extension headers", compared, inner, options)
	if compared < 5000 || inner < 20 || options < 50 {
		t.Errorf("too few packets of each kind compared: %d, %d, %d", compared, inner, options)
	}
}
