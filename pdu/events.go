package pdu

import (
	"encoding/binary"
	"fmt"
)

// Event record (docs/pdu.md, "Events"): time, kind, detail.

const maxKind = 255 // kind length is one byte

// AddEvent appends an event. A kind longer than 255 bytes (or than half
// an empty PDU) is cut, and a
// detail too long for an empty PDU is cut to fit one, so that a caller that
// retries after Finish always succeeds. It returns false, leaving the PDU
// unchanged, when the record does not fit. It does not allocate.
func (b *Builder) AddEvent(e Event) bool {
	kind, detail := e.Kind, e.Detail
	if l := min(maxKind, (b.limit-HeaderSize-10)/2); len(kind) > l {
		kind = kind[:l]
	}
	fixed := 8 + 1 + len(kind)
	if room := b.limit - HeaderSize - fixed; len(detail)+uvarintLen(uint64(len(detail))) > room {
		// cut so that the record fills an empty PDU at most
		l := room - uvarintLen(uint64(room))
		detail = detail[:max(l, 0)]
	}
	need := fixed + uvarintLen(uint64(len(detail))) + len(detail)
	if b.end+need > b.limit {
		return false
	}
	b.begin(TypeEvents)
	buf, o := b.buf, b.end
	binary.BigEndian.PutUint64(buf[o:], uint64(e.TS))
	o += 8
	buf[o] = byte(len(kind))
	o++
	o += copy(buf[o:], kind)
	o += binary.PutUvarint(buf[o:], uint64(len(detail)))
	o += copy(buf[o:], detail)
	b.end = o
	b.n++
	return true
}

// EventReader decodes the body of an events PDU. Use it like
// SightingReader. Next allocates the two strings of each event (events are
// rare); NextRaw does not.
type EventReader struct {
	body []byte
	off  int
	err  error
}

// Reset starts decoding body.
func (r *EventReader) Reset(body []byte) { *r = EventReader{body: body} }

// Err returns the error that stopped Next, nil at a clean end.
func (r *EventReader) Err() error { return r.err }

// NextRaw decodes the next event; kind and detail point into the body.
func (r *EventReader) NextRaw() (ts int64, kind, detail []byte, ok bool) {
	if r.err != nil || r.off == len(r.body) {
		return 0, nil, nil, false
	}
	b, o := r.body, r.off
	if len(b)-o < 9 {
		r.fail("truncated event", o)
		return 0, nil, nil, false
	}
	ts = int64(binary.BigEndian.Uint64(b[o:]))
	kl := int(b[o+8])
	o += 9
	if len(b)-o < kl {
		r.fail("truncated kind", o)
		return 0, nil, nil, false
	}
	kind = b[o : o+kl]
	o += kl
	dl, n := binary.Uvarint(b[o:])
	if n <= 0 || dl > uint64(len(b)-o-n) {
		r.fail("detail length", o)
		return 0, nil, nil, false
	}
	o += n
	detail = b[o : o+int(dl)]
	r.off = o + int(dl)
	return ts, kind, detail, true
}

// Next decodes the next event into e and reports whether there was one.
func (r *EventReader) Next(e *Event) bool {
	ts, kind, detail, ok := r.NextRaw()
	if ok {
		*e = Event{TS: ts, Kind: string(kind), Detail: string(detail)}
	}
	return ok
}

func (r *EventReader) fail(what string, off int) {
	r.err = fmt.Errorf("pdu: decode events: %s at body offset %d: %w", what, off, ErrMalformed)
}
