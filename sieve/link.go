package sieve

import "encoding/binary"

// Linux cooked captures and BSD loopback: the other link layers of the
// captures a probe is given. Each ends in an EtherType or an address family
// that says which network layer follows.

// sll dissects a Linux cooked capture (LINKTYPE_LINUX_SLL, 16 bytes):
//
//	0 packet type (2) | 2 ARPHRD type (2) | 4 address length (2) | 6 address (8) | 14 protocol (2)
func sll(data []byte, rec *Record, l *layout) Reason {
	if len(data) < 16 {
		return Truncated
	}
	return etherPayload(data, be16(data[14:]), 16, rec, l)
}

// sll2 dissects a Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 20 bytes):
//
//	0 protocol (2) | 2 reserved (2) | 4 ifindex (4) | 8 ARPHRD (2) | 10 packet type (1) | 11 address length (1) | 12 address (8)
func sll2(data []byte, rec *Record, l *layout) Reason {
	if len(data) < 20 {
		return Truncated
	}
	return etherPayload(data, be16(data), 20, rec, l)
}

// null dissects BSD loopback (LINKTYPE_NULL: a 4-byte address family in the
// byte order of the capturing host, which the sieve guesses: families are
// small numbers) and OpenBSD LINKTYPE_LOOP (network order).
func null(data []byte, linkType uint16, rec *Record, l *layout) Reason {
	if len(data) < 4 {
		return Truncated
	}
	fam := binary.BigEndian.Uint32(data)
	if linkType == LinkNull && fam > 0xffff {
		fam = binary.LittleEndian.Uint32(data)
	}
	switch fam {
	case 2: // AF_INET everywhere
		return ipv4(data, 4, rec, l)
	case 10, 24, 28, 30: // AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD, Darwin
		return ipv6(data, 4, rec, l)
	}
	return NotIP
}
