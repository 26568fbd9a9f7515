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
	l.l4, l.l4Len, l.l4Proto = off, 20, protoTCP
	l.absent |= icmpFields
	return Wanted
}
