package pdu

import (
	"encoding/binary"
	"fmt"
)

// Builder fills one PDU at a time in a fixed buffer of the configured
// maximum PDU size. The first Add call decides the PDU type; adding a record
// of another type before Reset is a programmer error and panics. Adds return
// false when the record does not fit: the caller then finishes the PDU,
// hands it to the transport, resets and adds again.
//
// A Builder is not safe for concurrent use. After NewBuilder it does not
// allocate.
type Builder struct {
	buf   []byte // len == max PDU size; header at [0:HeaderSize)
	limit int    // end of the room for the body (before the trailer)
	end   int    // write offset
	typ   Type   // 0 while empty
	n     int    // records added

	// Sightings state (docs/pdu.md, "Sightings").
	prevT int64 // decoded time of the previous sighting (the base time before the first)
	lastV int   // offset of the previous sighting's first time-varint byte
	cur   int   // local index of the open section's flow, -1 when none (or not indexed)
	curID uint32
	curFl uint8
	nloc  int
	locID [maxLocalFlows]uint32
	locFl [maxLocalFlows]uint8
	slot  [256]uint8 // hash of (flow id, flags) → local index + 1; a cache, checked
}

// NewBuilder returns a builder for PDUs of at most maxSize bytes (the UDP
// payload, conf.Transport.MaxPDUSize). It panics when maxSize is outside
// [MinPDUSize, MaxPDUSize]: configuration validation rejects such values.
func NewBuilder(maxSize int) *Builder {
	if maxSize < MinPDUSize || maxSize > MaxPDUSize {
		panic(fmt.Sprintf("pdu: NewBuilder: max size %d outside [%d, %d]", maxSize, MinPDUSize, MaxPDUSize))
	}
	b := &Builder{buf: make([]byte, maxSize), limit: maxSize - TrailerSize}
	b.Reset()
	return b
}

// Reset empties the builder; the slice returned by Finish becomes invalid.
func (b *Builder) Reset() {
	b.end = HeaderSize
	b.typ = 0
	b.n = 0
	b.lastV = -1
	b.cur = -1
	b.nloc = 0
	b.slot = [256]uint8{}
}

// Type returns the type of the PDU under construction, 0 while empty.
func (b *Builder) Type() Type { return b.typ }

// Len returns the number of records added since Reset.
func (b *Builder) Len() int { return b.n }

// Size returns the size in bytes the PDU would have if finished now.
func (b *Builder) Size() int {
	if b.typ == 0 {
		return Overhead
	}
	return b.end + TrailerSize
}

func (b *Builder) begin(t Type) {
	if b.typ == t {
		return
	}
	if b.typ != 0 {
		panic(fmt.Sprintf("pdu: Builder: adding a %v record to a %v PDU", t, b.typ))
	}
	b.typ = t
}

// Finish completes the PDU with header h (its Type may be zero; Floor, Seq,
// Session and Probe are usually left to the transport, see Restamp) and
// returns it: a slice of the builder's buffer, valid until the next Reset or
// Add. An empty builder gives an empty PDU of h.Type (heartbeat, bye, or a
// data PDU without records).
func (b *Builder) Finish(h Header) []byte {
	switch {
	case b.typ == 0 && h.Type == 0:
		panic("pdu: Builder.Finish: empty PDU without a type")
	case b.typ == 0:
		if h.Type == TypeSightings {
			binary.BigEndian.PutUint64(b.buf[HeaderSize:], 0) // base time of no sighting
			b.end = HeaderSize + 8
		}
	case h.Type != 0 && h.Type != b.typ:
		panic(fmt.Sprintf("pdu: Builder.Finish: %v header for a %v PDU", h.Type, b.typ))
	default:
		h.Type = b.typ
	}
	if b.typ == TypeSightings && b.lastV >= 0 {
		b.buf[b.lastV] |= 1 // the last sighting ends its section
	}
	out := b.buf[:b.end+TrailerSize]
	putHeader(out, h, b.end-HeaderSize)
	seal(out)
	return out
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
