package sieve

// maxExtHeaders bounds the IPv6 extension header walk: a longer chain is
// malformed (no real packet has one; a hostile one must not cost more).
const maxExtHeaders = 8

// ipv6 dissects an IPv6 header at off (RFC 8200) and its extension headers:
//
//	0 version|traffic class|flow label (4) | 4 payload length | 6 next header | 7 hop limit
//	8 source (16) | 24 destination (16) | 40 extension headers ... | upper layer
//
// Length is 40 + payload length, which bounds everything after it. Jumbograms
// (payload length 0 with a jumbo option) are malformed: their hop-by-hop
// header lies beyond the declared length. Proto is the upper-layer protocol
// after the extension headers: hop-by-hop, routing, destination options,
// fragment and AH are walked; ESP and "no next header" end the walk with
// FlagNoL4. For a non-first fragment Proto is the fragment header's next
// header.
func ipv6(data []byte, off int, rec *Record, l *layout) Reason {
	if off+40 > len(data) {
		return Truncated
	}
	h := data[off:]
	if h[0]>>4 != 6 {
		return Malformed
	}
	tc := h[0]<<4 | h[1]>>4
	total := 40 + int(be16(h[4:]))
	rec.IPVersion = 6
	rec.DSCP = tc >> 2
	rec.ECN = tc & 3
	rec.FlowLabel = be32(h) & 0xfffff
	rec.Length = uint32(total)
	rec.TTL = h[7]
	copy(rec.Src[:], h[8:24])
	copy(rec.Dst[:], h[24:40])

	limit := off + total
	l.ip, l.ipHdr, l.end = off, 40, limit
	if limit > len(data) {
		l.end = len(data)
		rec.Flags |= FlagTruncated
	}

	w := walk6(data, off+40, limit, h[6])
	rec.Proto = w.proto
	if w.frag {
		rec.Flags |= FlagFragment
		if w.mf {
			rec.Flags |= FlagMoreFrags
		}
		rec.FragOff = w.fragOff
		l.fragPay, l.fragNH, l.fragProto, l.fragID = w.fragAt+8, w.nhAt, w.fragNext, w.fragID
	}
	switch w.status {
	case walkOK:
		if w.frag && w.l4+minL4(w.proto) > limit {
			return noL4(w.proto, rec, l)
		}
		if w.frag && w.mf {
			// The transport header may go on in the next fragment.
			if r := transport(data, w.l4, limit, w.proto, rec, l); r != Malformed {
				return r
			}
			return noL4(w.proto, rec, l)
		}
		return transport(data, w.l4, limit, w.proto, rec, l)
	case walkNoL4:
		return noL4(w.proto, rec, l)
	case walkEnd:
		rec.Flags |= FlagNoL4
		l.absent |= l4Fields
		return Wanted
	case walkTruncated:
		return Truncated
	}
	return Malformed
}

// walk6 results.
const (
	walkOK        = iota // l4 is the upper-layer header
	walkNoL4             // non-first fragment: the upper layer is in another packet
	walkEnd              // ESP or no next header: nothing the sieve can read follows
	walkShort            // the chain runs past the IP length
	walkTruncated        // the chain runs past the captured bytes
	walkTooLong          // more than maxExtHeaders
)

type walk struct {
	status  int
	proto   uint8 // upper-layer protocol
	l4      int   // offset of the upper-layer header (walkOK)
	frag    bool  // a fragment header was seen
	mf      bool
	fragOff uint16
	fragID  uint32
	// For reassembly: offsets of the fragment header and of the
	// next-header byte that names it, and the next header it names.
	fragAt, nhAt int
	fragNext     uint8
}

// walk6 follows the extension header chain that starts with next header nh
// at off, within limit and the captured data.
//
//	hop-by-hop, routing, destination options: 0 next | 1 length in 8-byte units, not counting the first
//	fragment:                                 0 next | 2 offset<<3 | M | 4 identification (8 bytes in all)
//	AH:                                       0 next | 1 length in 4-byte units, minus 2
func walk6(data []byte, off, limit int, nh uint8) walk {
	var w walk
	nhAt := off - 34 // the base header's next-header byte (off is right after it)
	for i := 0; ; i++ {
		var n int
		switch nh {
		case protoHopByHop, protoRouting, protoDstOpts, protoFragment, protoAH:
		case protoESP, protoNoNext:
			w.status, w.proto = walkEnd, nh
			return w
		default:
			w.status, w.proto, w.l4 = walkOK, nh, off
			return w
		}
		w.proto = nh
		if i == maxExtHeaders {
			w.status = walkTooLong
			return w
		}
		if off+8 > limit { // every extension header is at least 8 bytes
			w.status = walkShort
			return w
		}
		if off+8 > len(data) {
			w.status = walkTruncated
			return w
		}
		h := data[off:]
		switch nh {
		case protoFragment:
			fo := be16(h[2:])
			w.frag, w.mf, w.fragOff, w.fragID = true, fo&1 != 0, fo>>3, be32(h[4:])
			w.fragAt, w.nhAt, w.fragNext = off, nhAt, h[0]
			if w.fragOff != 0 {
				w.status, w.proto = walkNoL4, h[0]
				return w
			}
			n = 8
		case protoAH:
			n = (int(h[1]) + 2) * 4
		default:
			n = (int(h[1]) + 1) * 8
		}
		nh = h[0]
		nhAt = off
		off += n
	}
}
