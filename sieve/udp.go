package sieve

// udp dissects a UDP header at off (RFC 768):
//
//	0 source port | 2 destination port | 4 length | 6 checksum | 8 payload
//
// The UDP length field is not checked against the IP length: the IP length
// bounds the packet.
func udp(data []byte, off, limit int, rec *Record, l *layout) Reason {
	if r := need(data, off, 8, limit); r != Wanted {
		return r
	}
	rec.SrcPort = be16(data[off:])
	rec.DstPort = be16(data[off+2:])
	l.l4, l.l4Len, l.l4Proto = off, 8, protoUDP
	l.absent |= flagsField | icmpFields
	udpService(data, off+8, limit, rec)
	return Wanted
}
