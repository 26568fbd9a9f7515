package sieve

// EtherTypes the sieve follows.
const (
	etherIPv4      = 0x0800
	etherIPv6      = 0x86dd
	etherVLAN      = 0x8100 // 802.1Q customer tag
	etherQinQ      = 0x88a8 // 802.1ad service tag
	etherQinQ9100  = 0x9100 // pre-standard QinQ
	maxVLANTags    = 8
	ethernetHeader = 14
)

// ethernet dissects an Ethernet II frame (LINKTYPE_ETHERNET):
//
//	0 destination MAC (6) | 6 source MAC (6) | 12 EtherType (2) | 14 payload
//
// The MAC addresses, the VLAN tags and any padding after the IP packet are
// not part of the Record or the signature. 802.3 frames (length instead of
// EtherType: LLC, STP, CDP ...) are not IP.
func ethernet(data []byte, rec *Record, l *layout) Reason {
	if len(data) < ethernetHeader {
		return Truncated
	}
	return etherPayload(data, be16(data[12:]), ethernetHeader, rec, l)
}

// etherPayload dissects what follows an EtherType et: the payload starts at
// off. 802.1Q / 802.1ad tags (4 bytes: TCI then the next EtherType) are
// skipped, up to maxVLANTags; the outermost tag's VLAN id goes to rec.VLAN.
func etherPayload(data []byte, et uint16, off int, rec *Record, l *layout) Reason {
	for tags := 0; ; tags++ {
		switch et {
		case etherIPv4:
			return ipv4(data, off, rec, l)
		case etherIPv6:
			return ipv6(data, off, rec, l)
		case etherVLAN, etherQinQ, etherQinQ9100:
			if tags == maxVLANTags {
				return Malformed
			}
			if off+4 > len(data) {
				return Truncated
			}
			if tags == 0 {
				rec.VLAN = be16(data[off:]) & 0x0fff
			}
			et = be16(data[off+2:])
			off += 4
		default:
			return NotIP
		}
	}
}
