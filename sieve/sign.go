package sieve

import (
	"hash/crc32"

	"github.com/tmon-project/tmon/flow"
)

// castagnoli is the CRC-32C table; hash/crc32 recognises it and uses the
// SSE4.2 / ARMv8 CRC instructions.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sign returns the signature of the IP packet that starts at ip[0] (IPv4 or
// IPv6, by its version nibble) with the fields in mask zeroed, or the reason
// the packet cannot be dissected. It is what Packet computes for one-way
// classes; the reassembly stage uses it for a reassembled datagram. It does
// not allocate.
//
// The signature is the CRC-32C (Castagnoli, the checksum of iSCSI and SCTP,
// hardware-accelerated) of the IP packet, from the first byte of the IP
// header to min(IP length, captured bytes), as if these bytes were zero:
//
//   - IPv4: TTL, header checksum, and every option that may change in
//     transit (all but EOL, NOP, security 130/133, CIPSO 134, router alert
//     148 and 149: record route, timestamps and source routes are zeroed
//     whole, type and length included);
//   - IPv6: hop limit;
//   - when in mask: DSCP and ECN bits of the TOS / traffic class byte, the
//     flow label, source and destination address, the TCP/UDP source and
//     destination ports (and the ICMP echo/timestamp identifier, which NAPT
//     rewrites like a port);
//   - when an address or a port is in mask (NAT): the TCP, UDP and ICMP
//     checksums, which NAT recomputes; and for ICMP errors, the quoted
//     packet's addresses, IPv4 header checksum, ports and UDP checksum.
//
// Nothing of the link layer is covered, so MAC addresses, VLAN tags and
// Ethernet padding do not change it; neither do the snap length (beyond the
// headers) or the capture interface. IPv6 extension headers are covered as
// they are (a routing header with segments left > 0 between two probes, or a
// hop-by-hop option that changes en route, changes the signature). A
// fragment is signed on its own, like any packet.
func Sign(ip []byte, mask flow.Set) (uint32, Reason) {
	var rec Record
	var l layout
	reset(&rec, &l)
	if r := rawIP(ip, 0, &rec, &l); r != Wanted {
		return 0, r
	}
	return sign(ip, &l, mask&maskable), Wanted
}

const (
	natAddr  = flow.Set(1<<flow.Src | 1<<flow.Dst)
	natPorts = flow.Set(1<<flow.SrcPort | 1<<flow.DstPort)
)

// sign computes the signature of the dissected packet in data (see Sign).
// Header bytes that get masked are copied to a stack buffer; everything else
// is hashed in place.
func sign(data []byte, l *layout, mask flow.Set) uint32 {
	var buf [60]byte
	nat := mask&(natAddr|natPorts) != 0

	h := buf[:l.ipHdr]
	copy(h, data[l.ip:])
	if l.ipHdr == 40 && data[l.ip]>>4 == 6 {
		maskIPv6(h, mask)
	} else {
		maskIPv4(h, mask)
	}
	crc := crc32.Update(0, castagnoli, h)
	pos := l.ip + l.ipHdr
	if l.l4 >= 0 {
		crc = crc32.Update(crc, castagnoli, data[pos:l.l4]) // IPv6 extension headers
		h = buf[:l.l4Len]
		copy(h, data[l.l4:])
		maskL4(h, l.l4Proto, mask, nat)
		crc = crc32.Update(crc, castagnoli, h)
		pos = l.l4 + l.l4Len
		if l.inIP >= pos && nat {
			crc = crc32.Update(crc, castagnoli, data[pos:l.inIP])
			h = buf[:l.inIPHdr]
			copy(h, data[l.inIP:])
			if l.inIPHdr == 40 && h[0]>>4 == 6 {
				clear(h[8:40])
			} else {
				clear(h[10:12]) // NAT fixes the checksum
				clear(h[12:20])
			}
			crc = crc32.Update(crc, castagnoli, h)
			pos = l.inIP + l.inIPHdr
			if l.inL4 >= pos {
				crc = crc32.Update(crc, castagnoli, data[pos:l.inL4])
				h = buf[:min(8, l.end-l.inL4)]
				copy(h, data[l.inL4:])
				clear(h[:4])
				if l.inProto == protoUDP && len(h) == 8 {
					clear(h[6:8])
				}
				crc = crc32.Update(crc, castagnoli, h)
				pos = l.inL4 + len(h)
			}
		}
	}
	if pos < l.end {
		crc = crc32.Update(crc, castagnoli, data[pos:l.end])
	}
	return crc
}

// maskIPv4 zeroes the variable fields of a copy of an IPv4 header.
func maskIPv4(h []byte, mask flow.Set) {
	h[8] = 0            // TTL
	h[10], h[11] = 0, 0 // checksum
	if mask.Has(flow.DSCP) {
		h[1] &= 0x03
	}
	if mask.Has(flow.ECN) {
		h[1] &= 0xfc
	}
	if mask.Has(flow.Src) {
		clear(h[12:16])
	}
	if mask.Has(flow.Dst) {
		clear(h[16:20])
	}
	// options
	for i := 20; i < len(h); {
		switch t := h[i]; t {
		case 0: // end of list
			return
		case 1: // no-op
			i++
			continue
		default:
			if i+1 >= len(h) {
				return
			}
			n := int(h[i+1])
			if n < 2 || i+n > len(h) {
				clear(h[i:]) // malformed: zero the rest, deterministically
				return
			}
			switch t {
			case 130, 133, 134, 148, 149: // immutable
			default:
				clear(h[i : i+n])
			}
			i += n
		}
	}
}

// maskIPv6 zeroes the variable fields of a copy of an IPv6 header.
func maskIPv6(h []byte, mask flow.Set) {
	h[7] = 0 // hop limit
	tc := h[0]<<4 | h[1]>>4
	if mask.Has(flow.DSCP) {
		tc &= 0x03
	}
	if mask.Has(flow.ECN) {
		tc &= 0xfc
	}
	h[0] = h[0]&0xf0 | tc>>4
	h[1] = h[1]&0x0f | tc<<4
	if mask.Has(flow.FlowLabel) {
		h[1] &= 0xf0
		h[2], h[3] = 0, 0
	}
	if mask.Has(flow.Src) {
		clear(h[8:24])
	}
	if mask.Has(flow.Dst) {
		clear(h[24:40])
	}
}

// maskL4 zeroes the NAT-modified fields of a copy of a transport header.
func maskL4(h []byte, proto uint8, mask flow.Set, nat bool) {
	switch proto {
	case protoTCP, protoUDP:
		if mask.Has(flow.SrcPort) {
			h[0], h[1] = 0, 0
		}
		if mask.Has(flow.DstPort) {
			h[2], h[3] = 0, 0
		}
		if nat {
			if proto == protoTCP {
				h[16], h[17] = 0, 0
			} else {
				h[6], h[7] = 0, 0
			}
		}
	default: // ICMP, ICMPv6
		if !nat {
			return
		}
		h[2], h[3] = 0, 0
		if len(h) >= 6 && mask&natPorts != 0 && icmpQuery(proto, h[0]) {
			h[4], h[5] = 0, 0
		}
	}
}

// icmpQuery reports whether an ICMP type carries an identifier NAPT
// rewrites: echo and timestamp (ICMP), echo (ICMPv6).
func icmpQuery(proto, typ uint8) bool {
	if proto == protoICMP {
		return typ == 0 || typ == 8 || typ == 13 || typ == 14
	}
	return typ == 128 || typ == 129
}
