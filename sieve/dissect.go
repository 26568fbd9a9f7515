package sieve

import (
	"encoding/binary"

	"github.com/tmon-project/tmon/flow"
)

// The link types Dissect understands (pcap LINKTYPE_* / DLT_* values).
const (
	LinkNull     uint16 = 0   // BSD loopback: 4-byte address family in host order
	LinkEthernet uint16 = 1   // Ethernet II / 802.3
	LinkRaw12    uint16 = 12  // DLT_RAW on most systems
	LinkRaw14    uint16 = 14  // DLT_RAW on OpenBSD
	LinkRaw      uint16 = 101 // LINKTYPE_RAW: IPv4 or IPv6 by the version nibble
	LinkLoop     uint16 = 108 // OpenBSD loopback: address family in network order
	LinkSLL      uint16 = 113 // Linux cooked capture
	LinkIPv4     uint16 = 228 // raw IPv4
	LinkIPv6     uint16 = 229 // raw IPv6
	LinkSLL2     uint16 = 276 // Linux cooked capture v2
)

// IP protocol numbers the sieve dissects or walks.
const (
	protoHopByHop = 0
	protoICMP     = 1
	protoTCP      = 6
	protoUDP      = 17
	protoRouting  = 43
	protoFragment = 44
	protoESP      = 50
	protoAH       = 51
	protoICMPv6   = 58
	protoNoNext   = 59
	protoDstOpts  = 60
)

// l4Fields are the fields read from the transport header.
const l4Fields = flow.Set(1<<flow.SrcPort | 1<<flow.DstPort | 1<<flow.TCPFlags | 1<<flow.ICMPType | 1<<flow.ICMPCode)

const (
	portFields = flow.Set(1<<flow.SrcPort | 1<<flow.DstPort)
	icmpFields = flow.Set(1<<flow.ICMPType | 1<<flow.ICMPCode)
	flagsField = flow.Set(1 << flow.TCPFlags)
)

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// dissect fills rec and l from one frame of the given link type.
func dissect(data []byte, linkType uint16, rec *Record, l *layout) Reason {
	reset(rec, l)
	switch linkType {
	case LinkEthernet:
		return ethernet(data, rec, l)
	case LinkRaw, LinkRaw12, LinkRaw14:
		return rawIP(data, 0, rec, l)
	case LinkIPv4:
		return ipv4(data, 0, rec, l)
	case LinkIPv6:
		return ipv6(data, 0, rec, l)
	case LinkSLL:
		return sll(data, rec, l)
	case LinkSLL2:
		return sll2(data, rec, l)
	case LinkNull, LinkLoop:
		return null(data, linkType, rec, l)
	}
	return UnsupportedLink
}

// rawIP dispatches on the IP version nibble at data[off].
func rawIP(data []byte, off int, rec *Record, l *layout) Reason {
	if off >= len(data) {
		return Truncated
	}
	switch data[off] >> 4 {
	case 4:
		return ipv4(data, off, rec, l)
	case 6:
		return ipv6(data, off, rec, l)
	}
	return Malformed
}

// transport dissects the transport header of protocol proto at off. limit
// is where the IP packet ends by its length field (it may lie beyond the
// captured data).
func transport(data []byte, off, limit int, proto uint8, rec *Record, l *layout) Reason {
	switch {
	case proto == protoTCP:
		return tcp(data, off, limit, rec, l)
	case proto == protoUDP:
		return udp(data, off, limit, rec, l)
	case proto == protoICMP && rec.IPVersion == 4, proto == protoICMPv6 && rec.IPVersion == 6:
		return icmp(data, off, limit, rec, l)
	}
	rec.Flags |= FlagNoL4
	l.absent |= l4Fields
	return Wanted
}

// noL4 marks a packet whose transport header is not in this packet (a
// non-first fragment, or a first fragment too short to hold it): fields the
// protocol would carry are unknown, the others absent.
func noL4(proto uint8, rec *Record, l *layout) Reason {
	rec.Flags |= FlagNoL4
	switch {
	case proto == protoTCP:
		l.unknown |= portFields | flagsField
		l.absent |= icmpFields
	case proto == protoUDP:
		l.unknown |= portFields
		l.absent |= flagsField | icmpFields
	case proto == protoICMP && rec.IPVersion == 4, proto == protoICMPv6 && rec.IPVersion == 6:
		// an ICMP error would carry the inner ports and flags too
		l.unknown |= l4Fields
	default:
		l.absent |= l4Fields
	}
	return Wanted
}

// need checks that n bytes from off lie within the IP packet (limit, else
// the packet is malformed) and within the capture (else truncated).
func need(data []byte, off, n, limit int) Reason {
	switch {
	case off+n > limit:
		return Malformed
	case off+n > len(data):
		return Truncated
	}
	return Wanted
}
