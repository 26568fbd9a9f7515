package sieve

// icmp dissects an ICMP (RFC 792) or ICMPv6 (RFC 4443) header at off:
//
//	0 type | 1 code | 2 checksum | 4 rest of header (4) | 8 body
//
// For error messages (ICMP destination unreachable 3, source quench 4,
// redirect 5, time exceeded 11, parameter problem 12; ICMPv6 types 1-4) the
// body quotes the offending packet, and the sieve dissects its IP header and
// the first bytes of its transport header. The ICMP error then belongs to
// the flow of the packet that caused it (trafMon 3.3), so the Record holds:
//
//   - Src, Dst, Proto, SrcPort, DstPort, TCPFlags: those of the quoted packet
//     (ports and flags only when quoted: TCPFlags needs 14 quoted bytes, and
//     a quoted non-first fragment has neither: FlagNoL4);
//   - ICMPType, ICMPCode: those of the error message itself;
//   - everything else (IPVersion, Length, TTL, DSCP, ECN, FlowLabel,
//     fragment fields, VLAN): the outer packet that was captured;
//   - FlagICMPError set.
//
// The quoted IP header must be complete and of the outer IP version, else the
// packet is malformed (or truncated when the capture cuts it).
func icmp(data []byte, off, limit int, rec *Record, l *layout) Reason {
	if r := need(data, off, 4, limit); r != Wanted {
		return r
	}
	typ := data[off]
	rec.ICMPType = typ
	rec.ICMPCode = data[off+1]
	l.l4, l.l4Proto = off, rec.Proto
	l.l4Len = min(8, limit-off, len(data)-off)
	var isErr bool
	if rec.IPVersion == 4 {
		isErr = typ == 3 || typ == 4 || typ == 5 || typ == 11 || typ == 12
	} else {
		isErr = typ >= 1 && typ <= 4
	}
	if !isErr {
		l.absent |= portFields | flagsField
		echoTxn(data, off, limit, rec)
		return Wanted
	}
	return icmpInner(data, off+8, limit, rec, l)
}

// icmpInner dissects the packet quoted by an ICMP error at off. The quote
// ends at limit (the outer IP length); the inner IP length is not checked
// since the quote is cut on purpose.
func icmpInner(data []byte, off, limit int, rec *Record, l *layout) Reason {
	var proto uint8
	l4 := -1
	short := false // the quote ends before the inner transport header
	if rec.IPVersion == 4 {
		if r := need(data, off, 20, limit); r != Wanted {
			return r
		}
		h := data[off:]
		ihl := int(h[0]&0x0f) * 4
		if h[0]>>4 != 4 || ihl < 20 {
			return Malformed
		}
		if r := need(data, off, ihl, limit); r != Wanted {
			return r
		}
		proto = h[9]
		copy(rec.Src[:4], h[12:16])
		copy(rec.Dst[:4], h[16:20])
		l.inIPHdr = ihl
		if be16(h[6:])&0x1fff != 0 {
			short = true // quoted non-first fragment
		} else {
			l4 = off + ihl
		}
	} else {
		if r := need(data, off, 40, limit); r != Wanted {
			return r
		}
		h := data[off:]
		if h[0]>>4 != 6 {
			return Malformed
		}
		copy(rec.Src[:], h[8:24])
		copy(rec.Dst[:], h[24:40])
		l.inIPHdr = 40
		w := walk6(data, off+40, limit, h[6])
		proto = w.proto
		switch w.status {
		case walkOK:
			l4 = w.l4
		case walkNoL4, walkShort:
			short = true
		case walkTruncated:
			return Truncated
		case walkTooLong:
			return Malformed
		}
	}
	rec.Proto = proto
	rec.Flags |= FlagICMPError
	l.inIP = off
	l.inProto = proto
	if proto != protoTCP && proto != protoUDP {
		if proto != protoICMP && proto != protoICMPv6 {
			rec.Flags |= FlagNoL4
		}
		l.absent |= portFields | flagsField
		return Wanted
	}
	if !short && l4+4 > limit {
		short = true
	}
	if short {
		rec.Flags |= FlagNoL4
		l.unknown |= portFields
		if proto == protoTCP {
			l.unknown |= flagsField
		} else {
			l.absent |= flagsField
		}
		return Wanted
	}
	if l4+4 > len(data) {
		return Truncated
	}
	rec.SrcPort = be16(data[l4:])
	rec.DstPort = be16(data[l4+2:])
	l.inL4 = l4
	switch {
	case proto == protoUDP:
		l.absent |= flagsField
	case l4+14 <= min(limit, len(data)):
		rec.TCPFlags = data[l4+13]
	default:
		l.unknown |= flagsField
	}
	return Wanted
}
