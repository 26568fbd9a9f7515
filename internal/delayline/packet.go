package delayline

import (
	"encoding/binary"
	"hash/fnv"
)

// Magic values that start the payload of the test traffic (package
// internal/netlab's sender): the 4 bytes, then the sequence number
// (uint64, big-endian) and the sender's clock (int64 ns, big-endian).
const (
	MagicUDP = "OWD1"
	MagicTCP = "OWT1"
)

// Info is what the delay line and the tests read from an IPv4 packet.
type Info struct {
	Proto uint8  // IP protocol (17 UDP, 6 TCP); 0 if not IPv4
	IPID  uint16 // IPv4 identification
	Sport uint16 // transport ports (0 for fragments and other protocols)
	Dport uint16
	// Seq is the test payload's sequence number for UDP (-1 without the
	// magic), the TCP sequence number for TCP.
	Seq int64
	// Key identifies the packet across hops: an FNV-1a hash of the IPv4
	// packet with the fields a hop or an offloading sender changes zeroed
	// (TTL, header checksum, UDP/TCP checksum). Two packets with equal
	// bytes otherwise have equal keys; the tests treat those as ambiguous.
	Key uint64
}

// Parse reads an IPv4 packet (starting at the IP header). It does not
// modify ip. ok is false for anything but a complete IPv4 header.
func Parse(ip []byte) (in Info, ok bool) {
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return Info{}, false
	}
	ihl := int(ip[0]&0x0f) * 4
	if ihl < 20 || len(ip) < ihl {
		return Info{}, false
	}
	in.Proto = ip[9]
	in.IPID = binary.BigEndian.Uint16(ip[4:6])
	in.Seq = -1
	frag := binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0
	l4 := ip[ihl:]
	csum := -1 // offset of the transport checksum in l4
	if !frag {
		switch {
		case in.Proto == 17 && len(l4) >= 8:
			in.Sport = binary.BigEndian.Uint16(l4[0:2])
			in.Dport = binary.BigEndian.Uint16(l4[2:4])
			csum = 6
			if p := l4[8:]; len(p) >= 12 && string(p[:4]) == MagicUDP {
				in.Seq = int64(binary.BigEndian.Uint64(p[4:12]))
			}
		case in.Proto == 6 && len(l4) >= 20:
			in.Sport = binary.BigEndian.Uint16(l4[0:2])
			in.Dport = binary.BigEndian.Uint16(l4[2:4])
			in.Seq = int64(binary.BigEndian.Uint32(l4[4:8]))
			csum = 16
		}
	}
	h := fnv.New64a()
	var hdr [60]byte
	copy(hdr[:], ip[:ihl])
	hdr[8] = 0              // TTL
	hdr[10], hdr[11] = 0, 0 // header checksum
	h.Write(hdr[:ihl])
	if csum >= 0 {
		var c [20]byte
		n := copy(c[:], l4)
		c[csum], c[csum+1] = 0, 0
		h.Write(c[:n])
		if len(l4) > 20 {
			h.Write(l4[20:])
		}
	} else {
		h.Write(l4)
	}
	in.Key = h.Sum64()
	return in, true
}
