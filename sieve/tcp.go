package sieve

// tcp dissects a TCP header at off (RFC 9293):
//
//	0 source port | 2 destination port | 4 sequence | 8 acknowledgment
//	12 data offset<<4 | 13 flags | 14 window | 16 checksum | 18 urgent | 20 options ...
//
// The 20 fixed bytes must be captured; options need not be (snap length).
func tcp(data []byte, off, limit int, rec *Record, l *layout) Reason {
	if r := need(data, off, 20, limit); r != Wanted {
		return r
	}
	h := data[off:]
	doff := int(h[12]>>4) * 4
	if doff < 20 || off+doff > limit {
		return Malformed
	}
	rec.TCPWindow = be16(h[14:])
	rec.TCPPayload = uint16(min(limit-off-doff, 1<<16-1))
	rec.SrcPort = be16(h)
	rec.DstPort = be16(h[2:])
	rec.TCPFlags = h[13]
	rec.setTxn(TxnTCP, uint64(be32(h[4:]))<<32|uint64(be32(h[8:])))
	if doff > 20 {
		tcpTimestamps(h[20:min(doff, len(h))], rec)
	}
	l.l4, l.l4Len, l.l4Proto = off, 20, protoTCP
	l.absent |= icmpFields
	return Wanted
}

// tcpTimestamps reads the timestamps option (RFC 7323 §3: kind 8, length
// 10, TSval, TSecr) from the captured options opt into rec.TSVal and
// rec.TSEcr, for the round trips of analyse/rtt. An option list that does
// not parse, or is cut by the snap length before the option, leaves them
// 0.
func tcpTimestamps(opt []byte, rec *Record) {
	for i := 0; i < len(opt); {
		switch opt[i] {
		case 0: // end of option list
			return
		case 1: // no-operation
			i++
			continue
		}
		if i+1 >= len(opt) {
			return
		}
		n := int(opt[i+1])
		if n < 2 || i+n > len(opt) {
			return
		}
		if opt[i] == 8 && n == 10 {
			rec.TSVal, rec.TSEcr = be32(opt[i+2:]), be32(opt[i+6:])
			return
		}
		i += n
	}
}
