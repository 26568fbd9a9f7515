package sieve

// ipv4 dissects an IPv4 header at off (RFC 791):
//
//	0 version|IHL | 1 DSCP|ECN | 2 total length | 4 identification | 6 flags|fragment offset
//	8 TTL | 9 protocol | 10 header checksum | 12 source | 16 destination | 20 options ...
//
// The total length bounds everything after it: link-layer padding beyond it
// is never read. A capture shorter than the total length is accepted with
// FlagTruncated as long as the headers the sieve needs are there.
func ipv4(data []byte, off int, rec *Record, l *layout) Reason {
	if off+20 > len(data) {
		return Truncated
	}
	h := data[off:]
	if h[0]>>4 != 4 {
		return Malformed
	}
	ihl := int(h[0]&0x0f) * 4
	total := int(be16(h[2:]))
	if ihl < 20 || total < ihl {
		return Malformed
	}
	if off+ihl > len(data) {
		return Truncated
	}
	rec.IPVersion = 4
	rec.DSCP = h[1] >> 2
	rec.ECN = h[1] & 3
	rec.Length = uint32(total)
	rec.TTL = h[8]
	rec.Proto = h[9]
	copy(rec.Src[:4], h[12:16])
	copy(rec.Dst[:4], h[16:20])

	limit := off + total
	l.ip, l.ipHdr, l.end = off, ihl, limit
	if limit > len(data) {
		l.end = len(data)
		rec.Flags |= FlagTruncated
	}

	frag := be16(h[6:])
	mf := frag&0x2000 != 0
	rec.FragOff = frag & 0x1fff
	if mf || rec.FragOff != 0 {
		rec.Flags |= FlagFragment
		l.fragPay, l.fragNH, l.fragProto, l.fragID = off+ihl, -1, rec.Proto, uint32(be16(h[4:]))
		if mf {
			rec.Flags |= FlagMoreFrags
		}
		if rec.FragOff != 0 {
			return noL4(rec.Proto, rec, l)
		}
		if off+ihl+minL4(rec.Proto) > limit {
			// a first fragment too short to hold the transport header
			return noL4(rec.Proto, rec, l)
		}
		if mf {
			// The transport header may go on in the next fragment (TCP
			// options): reassembly reads it whole.
			if r := transport(data, off+ihl, limit, rec.Proto, rec, l); r != Malformed {
				return r
			}
			return noL4(rec.Proto, rec, l)
		}
	}
	return transport(data, off+ihl, limit, rec.Proto, rec, l)
}

// minL4 is the transport header length the sieve reads for proto.
func minL4(proto uint8) int {
	switch proto {
	case protoTCP:
		return 20
	case protoUDP:
		return 8
	case protoICMP, protoICMPv6:
		return 4
	}
	return 0
}
