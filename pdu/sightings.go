package pdu

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Sightings body (docs/pdu.md, "Sightings"): a base time, then every
// sighting in capture order in one delta chain. A selector byte opens a
// section of consecutive sightings of one flow; the time varint of each
// sighting carries an end-of-section bit, so a flow change costs one byte
// (a flow already declared in the PDU) instead of a full section header, and
// sections need no count.
const (
	maxLocalFlows = 128  // selectors 0x00–0x7f name a flow declared earlier in the PDU
	selDeclare    = 0x80 // 0x80 | span<<4 | size<<3 | exp, then the flow id as uvarint
	selSpan       = 0x10 // sightings of reassembled datagrams: the span from the first fragment follows
	selSize       = 0x08
	selExp        = 0x07
	// MaxResolutionExp is the largest resolution exponent: 10^6 ns = 1 ms.
	MaxResolutionExp = 6
	// deltas must keep zigzag(d)<<1|end within 64 bits
	maxDelta = 1<<62 - 1
)

var pow10 = [MaxResolutionExp + 1]int64{1, 10, 100, 1000, 10000, 100000, 1000000}

// ResolutionExp returns the exponent e with 10^e ns == d, for a class
// resolution (conf.OneWay.Resolution) of 1ns, 10ns, … 1ms; ok is false for
// any other duration.
func ResolutionExp(d time.Duration) (exp uint8, ok bool) {
	for e, u := range pow10 {
		if int64(d) == u {
			return uint8(e), true
		}
	}
	return 0, false
}

// floorDiv divides rounding towards minus infinity, so that quantised times
// before 1970 stay on the grid.
func floorDiv(a, u int64) int64 {
	q := a / u
	if a%u != 0 && a < 0 {
		q--
	}
	return q
}

// quantQ returns ts quantised to unit, as a count of units: rounded down,
// and clamped so that the quantised time (count × unit) fits an int64.
func quantQ(ts, unit int64) int64 {
	return max(floorDiv(ts, unit), math.MinInt64/unit)
}

func zigzag(d int64) uint64   { return uint64(d<<1) ^ uint64(d>>63) }
func unzigzag(z uint64) int64 { return int64(z>>1) ^ -int64(z&1) }

// AddSighting appends a sighting of flow flowID (s.Flow is not read), whose
// class has resolution 10^resolutionExp ns and carries sizes when hasSize.
// s.TS is quantised down to the resolution (the decoder returns the
// quantised time). It returns false, leaving the
// PDU unchanged, when the sighting does not fit — in a full PDU, or when its
// time is more than 2^62 resolution units away from the previous sighting's
// (an empty PDU always takes it). It panics when resolutionExp exceeds
// MaxResolutionExp. It does not allocate.
func (b *Builder) AddSighting(flowID uint32, resolutionExp uint8, hasSize bool, s Sighting) bool {
	if resolutionExp > MaxResolutionExp {
		panic(fmt.Sprintf("pdu: AddSighting: resolution exponent %d > %d", resolutionExp, MaxResolutionExp))
	}
	end := b.end
	prevT := b.prevT
	if b.typ == 0 {
		// The base time: the running time before the first sighting.
		prevT = s.TS
		end += 8
	} else if b.typ != TypeSightings {
		b.begin(TypeSightings) // panics
	}
	unit := pow10[resolutionExp]
	q, pq := quantQ(s.TS, unit), floorDiv(prevT, unit)
	d := q - pq
	if (pq < 0) != (q < 0) && (d < 0) != (q < 0) { // overflow
		return false
	}
	if d > maxDelta || d < -maxDelta {
		return false
	}
	v := zigzag(d) << 1
	fl := resolutionExp
	if hasSize {
		fl |= selSize
	}
	if s.Span != 0 {
		fl |= selSpan
	}

	// Does the sighting open a section, and with which selector?
	idx, sel := b.cur, 0
	if b.cur < 0 || b.curID != flowID || b.curFl != fl {
		idx = b.lookup(flowID, fl)
		if idx >= 0 {
			sel = 1
		} else {
			sel = 1 + uvarintLen(uint64(flowID))
		}
	}
	need := sel + 4 + uvarintLen(v)
	if hasSize {
		need += uvarintLen(uint64(s.Size))
	}
	if s.Span != 0 {
		need += uvarintLen(uint64(s.Span))
	}
	if end+need > b.limit {
		return false
	}

	// It fits: commit.
	if b.typ == 0 {
		b.typ = TypeSightings
		binary.BigEndian.PutUint64(b.buf[b.end:], uint64(s.TS))
		b.end += 8
		b.prevT = s.TS
	}
	buf := b.buf
	if sel > 0 {
		if b.lastV >= 0 {
			buf[b.lastV] |= 1 // close the previous section
		}
		if idx >= 0 {
			buf[b.end] = byte(idx)
			b.end++
		} else {
			buf[b.end] = selDeclare | fl
			b.end++
			b.end += binary.PutUvarint(buf[b.end:], uint64(flowID))
			idx = b.declare(flowID, fl)
		}
		b.cur, b.curID, b.curFl = idx, flowID, fl
	}
	binary.BigEndian.PutUint32(buf[b.end:], s.Sig)
	b.end += 4
	b.lastV = b.end
	b.end += binary.PutUvarint(buf[b.end:], v)
	if hasSize {
		b.end += binary.PutUvarint(buf[b.end:], uint64(s.Size))
	}
	if s.Span != 0 {
		b.end += binary.PutUvarint(buf[b.end:], uint64(s.Span))
	}
	b.prevT = q * unit
	b.n++
	return true
}

func slotOf(id uint32, fl uint8) uint8 {
	h := (id ^ uint32(fl)<<24) * 0x9e3779b1
	return uint8(h >> 24)
}

// lookup returns the local index of (id, fl) in the PDU, or -1.
func (b *Builder) lookup(id uint32, fl uint8) int {
	if s := b.slot[slotOf(id, fl)]; s > 0 {
		if i := int(s - 1); b.locID[i] == id && b.locFl[i] == fl {
			return i
		}
	}
	for i := b.nloc - 1; i >= 0; i-- {
		if b.locID[i] == id && b.locFl[i] == fl {
			return i
		}
	}
	return -1
}

// declare records (id, fl) as declared in the PDU and returns its local
// index, or -1 when the table is full (the flow is then declared again at
// each of its sections).
func (b *Builder) declare(id uint32, fl uint8) int {
	if b.nloc == maxLocalFlows {
		return -1
	}
	i := b.nloc
	b.locID[i], b.locFl[i] = id, fl
	b.nloc++
	b.slot[slotOf(id, fl)] = uint8(i + 1)
	return i
}

// SightingReader decodes the body of a sightings PDU without allocating.
// Use it as a value: var r SightingReader; r.Reset(f.Body); for r.Next(&s) {…};
// then check r.Err().
type SightingReader struct {
	body  []byte
	off   int
	t     int64 // running time
	open  bool  // inside a section: the next sighting follows without selector
	id    uint32
	fl    uint8
	nloc  int
	locID [maxLocalFlows]uint32
	locFl [maxLocalFlows]uint8
	err   error
}

// Reset starts decoding body.
func (r *SightingReader) Reset(body []byte) {
	*r = SightingReader{body: body}
	if len(body) < 8 {
		r.fail("base time", 0)
		return
	}
	r.t = int64(binary.BigEndian.Uint64(body))
	r.off = 8
}

func (r *SightingReader) fail(what string, off int) {
	r.err = fmt.Errorf("pdu: decode sightings: %s at body offset %d: %w", what, off, ErrMalformed)
}

// Err returns the error that stopped Next, nil at a clean end.
func (r *SightingReader) Err() error { return r.err }

// Resolution returns the resolution exponent of the last sighting's flow.
func (r *SightingReader) Resolution() uint8 { return r.fl & selExp }

// HasSize reports whether the last sighting's flow carries sizes.
func (r *SightingReader) HasSize() bool { return r.fl&selSize != 0 }

// Next decodes the next sighting into s and reports whether there was one.
func (r *SightingReader) Next(s *Sighting) bool {
	if r.err != nil {
		return false
	}
	b := r.body
	if !r.open {
		if r.off == len(b) {
			return false
		}
		sel := b[r.off]
		switch {
		case sel < selDeclare:
			if int(sel) >= r.nloc {
				r.fail("selector of an undeclared flow", r.off)
				return false
			}
			r.id, r.fl = r.locID[sel], r.locFl[sel]
			r.off++
		case sel&^(selSpan|selSize|selExp) == selDeclare && sel&selExp <= MaxResolutionExp:
			id, n := binary.Uvarint(b[r.off+1:])
			if n <= 0 || id > math.MaxUint32 {
				r.fail("flow id", r.off+1)
				return false
			}
			r.id, r.fl = uint32(id), sel&^selDeclare
			if r.nloc < maxLocalFlows {
				r.locID[r.nloc], r.locFl[r.nloc] = r.id, r.fl
				r.nloc++
			}
			r.off += 1 + n
		default:
			r.fail("reserved selector", r.off)
			return false
		}
	}
	if len(b)-r.off < 4 {
		r.fail("truncated sighting", r.off)
		return false
	}
	sig := binary.BigEndian.Uint32(b[r.off:])
	v, n := binary.Uvarint(b[r.off+4:])
	if n <= 0 {
		r.fail("time delta", r.off+4)
		return false
	}
	off := r.off + 4 + n
	d := unzigzag(v >> 1)
	unit := pow10[r.fl&selExp]
	q := floorDiv(r.t, unit)
	nq := q + d
	if (d > 0 && nq < q) || (d < 0 && nq > q) || nq > math.MaxInt64/unit || nq < math.MinInt64/unit {
		r.fail("time overflow", r.off+4)
		return false
	}
	var size uint64
	if r.fl&selSize != 0 {
		size, n = binary.Uvarint(b[off:])
		if n <= 0 || size > math.MaxUint32 {
			r.fail("size", off)
			return false
		}
		off += n
	}
	var span uint64
	if r.fl&selSpan != 0 {
		span, n = binary.Uvarint(b[off:])
		if n <= 0 || span > math.MaxUint32 {
			r.fail("span", off)
			return false
		}
		off += n
	}
	r.open = v&1 == 0
	if r.open && off == len(b) {
		r.fail("unterminated section", off)
		return false
	}
	r.off = off
	r.t = nq * unit
	*s = Sighting{Flow: r.id, Sig: sig, TS: r.t, Size: uint32(size), Span: uint32(span)}
	return true
}
