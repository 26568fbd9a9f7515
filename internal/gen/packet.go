package gen

import (
	"encoding/binary"
	"net/netip"
)

// Frames are built by hand: the generator must control every byte (IP id,
// fragment offsets, the router's rewrite), and the tests check the result
// against gopacket's independent encoder.

// MAC addresses of the two links. Hop A is the link host A → router, hop B
// the link router → host B.
var (
	macHostA   = [6]byte{0x02, 0x00, 0x00, 0x00, 0x0a, 0x01}
	macRouterA = [6]byte{0x02, 0x00, 0x00, 0x00, 0x0a, 0xfe}
	macRouterB = [6]byte{0x02, 0x00, 0x00, 0x00, 0x0b, 0xfe}
	macHostB   = [6]byte{0x02, 0x00, 0x00, 0x00, 0x0b, 0x01}
)

const (
	ethHeaderLen  = 14
	vlanTagLen    = 4
	minFrameLen   = 60 // Ethernet minimum without FCS: shorter frames are padded
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86DD
	etherTypeARP  = 0x0806
	etherTypeVLAN = 0x8100

	protoTCP = 6
	protoUDP = 17

	ttlAtA = 64
)

// checksum is the Internet checksum (RFC 1071) of b, starting from sum.
func checksum(sum uint32, b []byte) uint16 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// pseudoSum is the partial sum of the transport pseudo-header.
func pseudoSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	s, d := src.AsSlice(), dst.AsSlice()
	add(s)
	add(d)
	sum += uint32(proto) + uint32(length&0xffff) + uint32(length>>16)
	return sum
}

// l4Segment builds the UDP or TCP header and payload of f with its checksum.
func l4Segment(f *flow, payload []byte) []byte {
	var seg []byte
	switch f.proto {
	case protoUDP:
		seg = make([]byte, 8+len(payload))
		binary.BigEndian.PutUint16(seg[0:], f.sport)
		binary.BigEndian.PutUint16(seg[2:], f.dport)
		binary.BigEndian.PutUint16(seg[4:], uint16(len(seg)))
		copy(seg[8:], payload)
		c := checksum(pseudoSum(f.src, f.dst, protoUDP, len(seg)), seg)
		if c == 0 {
			c = 0xffff // 0 means "no checksum" in UDP
		}
		binary.BigEndian.PutUint16(seg[6:], c)
	case protoTCP:
		seg = make([]byte, 20+len(payload))
		binary.BigEndian.PutUint16(seg[0:], f.sport)
		binary.BigEndian.PutUint16(seg[2:], f.dport)
		binary.BigEndian.PutUint32(seg[4:], f.tcpSeq)
		binary.BigEndian.PutUint32(seg[8:], f.tcpAck)
		seg[12] = 5 << 4
		seg[13] = 0x18 // PSH, ACK: a connection in its data phase
		binary.BigEndian.PutUint16(seg[14:], 502)
		copy(seg[20:], payload)
		binary.BigEndian.PutUint16(seg[16:], checksum(pseudoSum(f.src, f.dst, protoTCP, len(seg)), seg))
		f.tcpSeq += uint32(len(payload))
	}
	return seg
}

// ipv4Packet builds an IPv4 packet around payload (a whole segment or one
// fragment of it). fragOff is in bytes (a multiple of 8).
func ipv4Packet(src, dst netip.Addr, proto uint8, id uint16, fragOff int, more bool, payload []byte) []byte {
	p := make([]byte, 20+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], id)
	ff := uint16(fragOff / 8)
	if more {
		ff |= 0x2000
	}
	if fragOff == 0 && !more && proto == protoTCP {
		ff |= 0x4000 // DF, as TCP stacks set it
	}
	binary.BigEndian.PutUint16(p[6:], ff)
	p[8] = ttlAtA
	p[9] = proto
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], checksum(0, p[:20]))
	copy(p[20:], payload)
	return p
}

// ipv6Packet builds an IPv6 packet around a segment.
func ipv6Packet(src, dst netip.Addr, proto uint8, flowLabel uint32, seg []byte) []byte {
	p := make([]byte, 40+len(seg))
	binary.BigEndian.PutUint32(p[0:], 6<<28|flowLabel&0xfffff)
	binary.BigEndian.PutUint16(p[4:], uint16(len(seg)))
	p[6] = proto
	p[7] = ttlAtA
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	copy(p[40:], seg)
	return p
}

// fragment splits an IPv4 segment into fragments of at most mtu bytes.
func fragment(src, dst netip.Addr, proto uint8, id uint16, seg []byte, mtu int) [][]byte {
	per := (mtu - 20) &^ 7
	var out [][]byte
	for off := 0; off < len(seg); off += per {
		end := min(off+per, len(seg))
		out = append(out, ipv4Packet(src, dst, proto, id, off, end < len(seg), seg[off:end]))
	}
	return out
}

// ethFrame puts an IP packet (or ARP) in an Ethernet frame, with an 802.1Q
// tag when vlan is not 0 and zero padding up to the 60-byte minimum when pad.
func ethFrame(dst, src [6]byte, etherType uint16, vlan uint16, pad bool, payload []byte) []byte {
	hl := ethHeaderLen
	if vlan != 0 {
		hl += vlanTagLen
	}
	n := hl + len(payload)
	if pad && n < minFrameLen {
		n = minFrameLen
	}
	f := make([]byte, n)
	copy(f[0:], dst[:])
	copy(f[6:], src[:])
	if vlan != 0 {
		binary.BigEndian.PutUint16(f[12:], etherTypeVLAN)
		binary.BigEndian.PutUint16(f[14:], vlan)
	}
	binary.BigEndian.PutUint16(f[hl-2:], etherType)
	copy(f[hl:], payload)
	return f
}

// routed is what the router forwards onto link B: the same IP packet with
// TTL or hop limit one less and, for IPv4, the header checksum recomputed.
// Nothing else changes: no NAT on this path.
func routed(ip []byte) []byte {
	out := append([]byte(nil), ip...)
	switch out[0] >> 4 {
	case 4:
		out[8]--
		out[10], out[11] = 0, 0
		ihl := int(out[0]&0x0f) * 4
		binary.BigEndian.PutUint16(out[10:], checksum(0, out[:ihl]))
	case 6:
		out[7]--
	}
	return out
}

// arpRequest is a who-has from sender to target, as seen on either link.
func arpRequest(senderMAC [6]byte, sender, target netip.Addr) []byte {
	p := make([]byte, 28)
	binary.BigEndian.PutUint16(p[0:], 1) // Ethernet
	binary.BigEndian.PutUint16(p[2:], etherTypeIPv4)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], 1) // request
	copy(p[8:], senderMAC[:])
	s, t := sender.As4(), target.As4()
	copy(p[14:], s[:])
	copy(p[24:], t[:])
	return p
}
