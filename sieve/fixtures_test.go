package sieve

import (
	"encoding/binary"
	"net/netip"
)

// Hex fixtures, annotated like tcpdump -xx output.

// fixUDP4 is an Ethernet frame with an IPv4/UDP datagram of 32 bytes and 14
// bytes of Ethernet padding (the frame is the 60-byte minimum).
var fixUDP4 = []byte{
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00, // eth: dst, src, IPv4
	0x45, 0xb9, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, // IPv4: ihl 5, DSCP 46 ECN 1, len 32, id 0x1234, DF
	0x40, 0x11, 0xab, 0xcd, // TTL 64, UDP, checksum
	0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x07, // 192.0.2.1 → 198.51.100.7
	0x13, 0x88, 0x00, 0x35, 0x00, 0x0c, 0x12, 0x34, // UDP 5000 → 53, len 12, checksum
	0x4f, 0x57, 0x44, 0x31, // "OWD1"
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
}

// fixQinQTCP6 is an Ethernet frame with an 802.1ad tag (VLAN 100), an
// 802.1Q tag (VLAN 200) and an IPv6/TCP SYN with a hop-by-hop header.
var fixQinQTCP6 = []byte{
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x88, 0xa8, // eth, 802.1ad
	0x00, 0x64, 0x81, 0x00, // S-tag VLAN 100, next 802.1Q
	0x00, 0xc8, 0x86, 0xdd, // C-tag VLAN 200, next IPv6
	0x60, 0x2a, 0xbc, 0xde, // IPv6: traffic class 0x02 (ECN 2), flow label 0xabcde
	0x00, 0x1c, 0x00, 0x3f, // payload 28, next hop-by-hop, hop limit 63
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // 2001:db8::1
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // 2001:db8::2
	0x06, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // HBH: next TCP, len 0, PadN
	0xc0, 0x01, 0x01, 0xbb, 0x00, 0x00, 0x00, 0x01, // TCP 49153 → 443, seq 1
	0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xff, 0xff, // ack 0, doff 5, SYN, window
	0x99, 0x99, 0x00, 0x00, // checksum, urgent
}

// fixICMPUnreach is a raw IPv4 ICMP port unreachable (from 198.51.100.7 to
// 192.0.2.1) quoting the UDP datagram of fixUDP4.
var fixICMPUnreach = []byte{
	0x45, 0x00, 0x00, 0x38, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0x00, 0x00, // IPv4 len 56, ICMP
	0xc6, 0x33, 0x64, 0x07, 0xc0, 0x00, 0x02, 0x01, // 198.51.100.7 → 192.0.2.1
	0x03, 0x03, 0x12, 0x34, 0x00, 0x00, 0x00, 0x00, // ICMP unreachable/port, checksum, unused
	0x45, 0xb9, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x3f, 0x11, 0xab, 0xcd, // quoted IPv4 header
	0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x07,
	0x13, 0x88, 0x00, 0x35, 0x00, 0x0c, 0x12, 0x34, // quoted UDP header
}

// Builders for the table tests.

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func ether(et uint16, payload ...[]byte) []byte {
	return cat(append([][]byte{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, u16(et)}, payload...)...)
}

func vlanTag(id, et uint16) []byte { return cat(u16(id), u16(et)) }

// ip4 builds an IPv4 header (with options opt, padded to 4 bytes) around
// payload; frag is the flags/fragment offset word.
func ip4(proto uint8, src, dst string, frag uint16, opt []byte, payload []byte) []byte {
	for len(opt)%4 != 0 {
		opt = append(opt, 0)
	}
	ihl := 20 + len(opt)
	h := make([]byte, 20, ihl+len(payload))
	h[0] = 0x40 | byte(ihl/4)
	h[1] = 0x10
	binary.BigEndian.PutUint16(h[2:], uint16(ihl+len(payload)))
	binary.BigEndian.PutUint16(h[4:], 0xbeef)
	binary.BigEndian.PutUint16(h[6:], frag)
	h[8] = 64
	h[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	return cat(h, opt, payload)
}

// ip6 builds an IPv6 header around payload (which may start with extension
// headers: nh is the first next header).
func ip6(nh uint8, src, dst string, payload []byte) []byte {
	h := make([]byte, 40)
	binary.BigEndian.PutUint32(h, 6<<28|0x12345)
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = nh
	h[7] = 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return cat(h, payload)
}

// ext6 builds an 8-byte-unit extension header.
func ext6(next uint8, body int) []byte {
	h := make([]byte, 8+body*8)
	h[0] = next
	h[1] = byte(body)
	return h
}

func frag6(next uint8, off uint16, more bool, id uint32) []byte {
	h := make([]byte, 8)
	h[0] = next
	fo := off << 3
	if more {
		fo |= 1
	}
	binary.BigEndian.PutUint16(h[2:], fo)
	binary.BigEndian.PutUint32(h[4:], id)
	return h
}

func udpHdr(sp, dp uint16, payload []byte) []byte {
	return cat(u16(sp), u16(dp), u16(uint16(8+len(payload))), u16(0x5555), payload)
}

func tcpHdr(sp, dp uint16, flags uint8, payload []byte) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h, sp)
	binary.BigEndian.PutUint16(h[2:], dp)
	h[12] = 5 << 4
	h[13] = flags
	binary.BigEndian.PutUint16(h[16:], 0x7777)
	return cat(h, payload)
}

func icmpHdr(typ, code uint8, rest []byte) []byte {
	return cat([]byte{typ, code, 0x33, 0x33, 0, 1, 0, 2}, rest)
}

func a4(s string) [16]byte {
	var a [16]byte
	b := netip.MustParseAddr(s).As4()
	copy(a[:], b[:])
	return a
}

func a6(s string) [16]byte { return netip.MustParseAddr(s).As16() }
