package sieve

import (
	"hash/crc32"

	"github.com/tmon-project/tmon/flow"
)

// castagnoli is the CRC-32C table; hash/crc32 recognises it and uses the
// SSE4.2 / ARMv8 CRC instructions.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sign returns the signature of the IP packet that starts at ip[0] (IPv4 or
// IPv6, by its version nibble), or the reason the packet cannot be
// dissected. It is what Packet computes for the packets of one-way classes,
// with the same mask (the union of every class's Mask); the reassembly stage
// uses it for a reassembled datagram. It does not allocate. Like Packet, it
// must be called from one goroutine at a time.
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
//   - always: the TCP, UDP, ICMP and ICMPv6 checksums. A checksum is a
//     function of bytes the signature covers anyway, so it adds nothing;
//     and a sender with checksum offload hands the capture a packet whose
//     transport checksum is not computed yet, so the sender's copy and the
//     wire's would differ (seen in the two-point corpus: UDP checksum
//     partial at hop A, final at hop B);
//   - when an address or a port is in mask (NAT): for ICMP errors, the
//     quoted packet's addresses, IPv4 header checksum, ports and UDP
//     checksum.
//
// Nothing of the link layer is covered, so MAC addresses, VLAN tags and
// Ethernet padding do not change it; neither do the snap length (beyond the
// headers) or the capture interface. IPv6 extension headers are covered as
// they are (a routing header with segments left > 0 between two probes, or a
// hop-by-hop option that changes en route, changes the signature). A
// fragment is signed on its own, like any packet.
func (s *Sieve) Sign(ip []byte) (uint32, Reason) {
	var rec Record
	var l layout
	reset(&rec, &l)
	if r := rawIP(ip, 0, &rec, &l); r != Wanted {
		return 0, r
	}
	return sign(ip, &l, s.sigMask, s.scratch), Wanted
}

const (
	natAddr  = flow.Set(1<<flow.Src | 1<<flow.Dst)
	natPorts = flow.Set(1<<flow.SrcPort | 1<<flow.DstPort)
)

// sign computes the signature of the dissected packet in data (see Sign).
// A packet of up to wholeMax bytes (most packets) is copied whole to the
// scratch buffer, masked there at the offsets of its headers, and hashed
// in one CRC call: the buffer is 8-byte aligned, so the CRC instructions
// run over whole aligned words, with none of the byte-by-byte alignment
// steps that two calls over a header copy and an unaligned payload cost
// (the CRC's latency chain is most of the signature's time). Longer
// packets are hashed in pieces (signPieces) rather than copied.
func sign(data []byte, l *layout, mask flow.Set, sc *signScratch) uint32 {
	n := l.end - l.ip
	if n > wholeMax {
		return signPieces(data, l, mask, &sc.piece)
	}
	h := sc.whole[:n]
	copy(h, data[l.ip:l.end])
	if l.ipHdr == 40 && h[0]>>4 == 6 {
		maskIPv6(h[:40], mask)
	} else {
		maskIPv4(h[:l.ipHdr], mask)
	}
	if l.l4 >= 0 {
		nat := mask&(natAddr|natPorts) != 0
		o := l.l4 - l.ip
		maskL4(h[o:o+l.l4Len], l.l4Proto, mask, nat)
		if pos := l.l4 + l.l4Len; l.inIP >= pos && nat {
			o = l.inIP - l.ip
			maskInnerIP(h[o : o+l.inIPHdr])
			if pos = l.inIP + l.inIPHdr; l.inL4 >= pos {
				o = l.inL4 - l.ip
				maskInnerL4(h[o:o+min(8, l.end-l.inL4)], l.inProto)
			}
		}
	}
	return crc32.Update(0, castagnoli, h)
}

// wholeMax is the longest packet sign copies whole: beyond it the copy
// costs more than the second CRC call it saves.
const wholeMax = 512

// signScratch is the sieve's buffers for signing, allocated on their own
// so that whole starts on an 8-byte boundary (the allocator aligns an
// object of this size; the CRC code aligns its input itself, at a cost).
// They are not on the stack because hash/crc32 calls its accelerated code
// through a function variable, which makes any slice given to it escape.
type signScratch struct {
	whole [wholeMax]byte
	piece [signBuf]byte
}

// maskInnerIP zeroes, in a copy of the IP header an ICMP error quotes,
// what NAT rewrites: the addresses and (IPv4) the header checksum.
func maskInnerIP(h []byte) {
	if len(h) == 40 && h[0]>>4 == 6 {
		clear(h[8:40])
	} else {
		clear(h[10:12]) // NAT fixes the checksum
		clear(h[12:20])
	}
}

// maskInnerL4 zeroes the ports (and the UDP checksum) of the first n ≤ 8
// bytes of the transport header an ICMP error quotes.
func maskInnerL4(h []byte, proto uint8) {
	clear(h[:4])
	if proto == protoUDP && len(h) == 8 {
		clear(h[6:8])
	}
}

// signPieces is sign for a packet longer than wholeMax (and the reference
// sign's tests compare with). Header bytes that get masked are copied to
// buf; short unmasked stretches between them are copied along, so that the
// usual packet costs two CRC calls (headers, payload); the payload is
// hashed in place.
func signPieces(data []byte, l *layout, mask flow.Set, buf *[signBuf]byte) uint32 {
	nat := mask&(natAddr|natPorts) != 0
	w := signer{buf: buf}

	h := w.masked(data[l.ip : l.ip+l.ipHdr])
	if l.ipHdr == 40 && data[l.ip]>>4 == 6 {
		maskIPv6(h, mask)
	} else {
		maskIPv4(h, mask)
	}
	pos := l.ip + l.ipHdr
	if l.l4 >= 0 {
		w.plain(data[pos:l.l4]) // IPv6 extension headers
		h = w.masked(data[l.l4 : l.l4+l.l4Len])
		maskL4(h, l.l4Proto, mask, nat)
		pos = l.l4 + l.l4Len
		if l.inIP >= pos && nat {
			w.plain(data[pos:l.inIP])
			maskInnerIP(w.masked(data[l.inIP : l.inIP+l.inIPHdr]))
			pos = l.inIP + l.inIPHdr
			if l.inL4 >= pos {
				w.plain(data[pos:l.inL4])
				n := min(8, l.end-l.inL4)
				maskInnerL4(w.masked(data[l.inL4:l.inL4+n]), l.inProto)
				pos = l.inL4 + n
			}
		}
	}
	w.plain(data[pos:l.end])
	w.flush()
	return w.crc
}

// signBuf is the size of the scratch buffer: room for a masked piece (at
// most 60 bytes) after up to 64 bytes of copied stretches and pieces.
const signBuf = 128

// signer feeds CRC-32C with masked copies and in-place stretches.
type signer struct {
	crc uint32
	buf *[signBuf]byte
	n   int
}

// masked copies src to the buffer and returns the copy, for masking.
func (w *signer) masked(src []byte) []byte {
	if w.n+len(src) > signBuf {
		w.flush()
	}
	h := w.buf[w.n : w.n+len(src)]
	copy(h, src)
	w.n += len(src)
	return h
}

// plain hashes src as it is: copied along when short, in place otherwise.
func (w *signer) plain(src []byte) {
	if len(src) == 0 {
		return
	}
	if len(src) <= 64 && w.n+len(src) <= signBuf-60 {
		w.n += copy(w.buf[w.n:], src)
		return
	}
	w.flush()
	w.crc = crc32.Update(w.crc, castagnoli, src)
}

func (w *signer) flush() {
	if w.n > 0 {
		w.crc = crc32.Update(w.crc, castagnoli, w.buf[:w.n])
		w.n = 0
	}
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
		// The checksum is a function of the bytes covered anyway, so
		// leaving it out loses nothing; and where the sender's copy is
		// captured with checksum offload it is not computed yet.
		if proto == protoTCP {
			h[16], h[17] = 0, 0
		} else {
			h[6], h[7] = 0, 0
		}
	default: // ICMP, ICMPv6
		h[2], h[3] = 0, 0
		if nat && len(h) >= 6 && mask&natPorts != 0 && icmpQuery(proto, h[0]) {
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
