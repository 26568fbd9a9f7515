package sieve

import "encoding/binary"

// Transaction keys for the round-trip analysis (analyse/rtt, reference
// §3.5: the service protocol's header is dissected in the sieve, where the
// bytes are): what lets a response be matched to its request, read from
// the few bytes of each protocol that carry it. Nothing here allocates or
// reads beyond the captured bytes and the IP length; a header that does
// not parse leaves TxnKind 0 (the packet is still measured for everything
// else).

// TxnKind says which transaction field a record carries (Record.Txn).
type TxnKind uint8

const (
	TxnNone      TxnKind = iota
	TxnEchoReq           // ICMP/ICMPv6 echo request: Txn = identifier<<16 | sequence
	TxnEchoReply         // echo reply: the same
	TxnDNSQuery          // DNS query: Txn = id<<32 | CRC-32C of the question section's first entry
	TxnDNSReply          // DNS response: the same
	TxnNTPReq            // NTP client (mode 3): Txn = transmit timestamp
	TxnNTPReply          // NTP server (mode 4): Txn = origin timestamp (the client's transmit timestamp)
	TxnSNMPReq           // SNMP v1/v2c get, get-next, set, get-bulk, inform: Txn = request-id
	TxnSNMPReply         // SNMP response: Txn = request-id
	TxnTCP               // TCP: Txn = sequence number<<32 | acknowledgment number
)

// Well-known ports of the services keyed here.
const (
	portDNS  = 53
	portNTP  = 123
	portSNMP = 161
)

func (rec *Record) setTxn(k TxnKind, v uint64) { rec.TxnKind, rec.Txn = k, v }

// udpService keys DNS, NTP and SNMP datagrams whose UDP payload starts at
// off and ends at end.
func udpService(data []byte, off, end int, rec *Record) {
	end = min(end, len(data))
	if off >= end {
		return
	}
	p := data[off:end]
	switch {
	case rec.SrcPort == portDNS || rec.DstPort == portDNS:
		dnsTxn(p, rec)
	case rec.SrcPort == portNTP || rec.DstPort == portNTP:
		if len(p) >= 48 {
			switch p[0] & 7 {
			case 3:
				rec.setTxn(TxnNTPReq, binary.BigEndian.Uint64(p[40:]))
			case 4:
				rec.setTxn(TxnNTPReply, binary.BigEndian.Uint64(p[24:]))
			}
		}
	case rec.SrcPort == portSNMP || rec.DstPort == portSNMP:
		snmpTxn(p, rec)
	}
}

// dnsTxn: header id(2) flags(2: QR is the top bit) qdcount(2) ...(6),
// then the question: a name of labels (or a compression pointer), type(2),
// class(2). The question is part of the key so that two clients' queries
// with one id, or a spoofed answer to another name, do not match.
func dnsTxn(p []byte, rec *Record) {
	if len(p) < 12 || binary.BigEndian.Uint16(p[4:]) == 0 {
		return
	}
	o := 12
	for n := 0; ; n++ {
		if o >= len(p) || n > 127 {
			return
		}
		l := int(p[o])
		switch {
		case l == 0:
			o++
		case l&0xc0 == 0xc0:
			o += 2
		case l&0xc0 != 0:
			return
		default:
			o += 1 + l
			continue
		}
		break
	}
	if o+4 > len(p) {
		return
	}
	q := crc32c(p[12 : o+4])
	k := TxnDNSQuery
	if p[2]&0x80 != 0 {
		k = TxnDNSReply
	}
	rec.setTxn(k, uint64(binary.BigEndian.Uint16(p))<<32|uint64(q))
}

// snmpTxn: BER SEQUENCE { version INTEGER, community OCTET STRING,
// PDU [context tag] { request-id INTEGER, ... } } (v1, v2c).
func snmpTxn(p []byte, rec *Record) {
	o, ok := berEnter(p, 0, 0x30)
	if !ok {
		return
	}
	if o, ok = berSkip(p, o, 0x02); !ok {
		return
	}
	if o, ok = berSkip(p, o, 0x04); !ok {
		return
	}
	if o >= len(p) {
		return
	}
	tag := p[o]
	var k TxnKind
	switch tag {
	case 0xa0, 0xa1, 0xa3, 0xa5, 0xa6:
		k = TxnSNMPReq
	case 0xa2:
		k = TxnSNMPReply
	default:
		return
	}
	if o, ok = berEnter(p, o, tag); !ok || o+2 > len(p) || p[o] != 0x02 {
		return
	}
	n := int(p[o+1])
	if n < 1 || n > 4 || o+2+n > len(p) {
		return
	}
	var id uint32
	for _, b := range p[o+2 : o+2+n] {
		id = id<<8 | uint32(b)
	}
	rec.setTxn(k, uint64(id))
}

// berLen reads a BER length at o: its value and the offset after it.
func berLen(p []byte, o int) (int, int, bool) {
	if o >= len(p) {
		return 0, 0, false
	}
	b := int(p[o])
	if b < 0x80 {
		return b, o + 1, true
	}
	n := b & 0x7f
	if n == 0 || n > 3 || o+1+n > len(p) {
		return 0, 0, false
	}
	v := 0
	for _, x := range p[o+1 : o+1+n] {
		v = v<<8 | int(x)
	}
	return v, o + 1 + n, true
}

// berEnter checks the tag at o and returns the offset of its contents.
func berEnter(p []byte, o int, tag byte) (int, bool) {
	if o >= len(p) || p[o] != tag {
		return 0, false
	}
	_, c, ok := berLen(p, o+1)
	return c, ok
}

// berSkip checks the tag at o and returns the offset after the element.
func berSkip(p []byte, o int, tag byte) (int, bool) {
	if o >= len(p) || p[o] != tag {
		return 0, false
	}
	n, c, ok := berLen(p, o+1)
	if !ok || c+n > len(p) {
		return 0, false
	}
	return c + n, true
}

// echoTxn keys ICMP echo request/reply (types 8/0, ICMPv6 128/129) whose
// header is at off.
func echoTxn(data []byte, off, limit int, rec *Record) {
	if off+8 > min(limit, len(data)) {
		return
	}
	var k TxnKind
	switch {
	case rec.IPVersion == 4 && rec.ICMPType == 8, rec.IPVersion == 6 && rec.ICMPType == 128:
		k = TxnEchoReq
	case rec.IPVersion == 4 && rec.ICMPType == 0, rec.IPVersion == 6 && rec.ICMPType == 129:
		k = TxnEchoReply
	default:
		return
	}
	rec.setTxn(k, uint64(binary.BigEndian.Uint32(data[off+4:])))
}

func crc32c(b []byte) uint32 {
	var c uint32 = 0xffffffff
	for _, x := range b {
		c = crcTab[byte(c)^x] ^ c>>8
	}
	return ^c
}

var crcTab = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0x82f63b78
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return
}()
