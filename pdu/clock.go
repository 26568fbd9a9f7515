package pdu

import (
	"encoding/binary"
	"fmt"
)

// Clock record (docs/pdu.md, "Clock"): the probe's clock measured against
// NTP, sent at every measurement so that the collector can bound the error
// of one-way delays between two probes.

// Clock is one measurement of the probe's clock.
type Clock struct {
	TS int64 // when it was measured, probe clock, ns since epoch
	// Offset is the server's time minus the probe's (ns): add it to a
	// probe time to get the server's.
	Offset int64
	// RootDistance bounds the server's own error plus half the round trip
	// (ns); 0 when Assumed.
	RootDistance int64
	Stratum      uint8 // of the server; 0 when not synchronised or Assumed
	// Synced: a server answered with a valid, synchronised time.
	Synced bool
	// Assumed: no measurement, the configuration declares the clock good
	// (probes sharing one kernel clock).
	Assumed bool
	Server  string // the server the figures come from; at most 255 bytes
}

const (
	clockFixed   = 8 + 8 + 8 + 1 + 1 + 1
	clockSynced  = 1 << 0
	clockAssumed = 1 << 1
	clockFlags   = clockSynced | clockAssumed
)

// AddClock appends a clock record; a server name longer than 255 bytes is
// cut. It returns false, leaving the PDU unchanged, when the record does
// not fit. It does not allocate.
func (b *Builder) AddClock(c Clock) bool {
	srv := c.Server
	if len(srv) > 255 {
		srv = srv[:255]
	}
	need := clockFixed + len(srv)
	if b.end+need > b.limit {
		return false
	}
	b.begin(TypeClock)
	buf, o := b.buf, b.end
	binary.BigEndian.PutUint64(buf[o:], uint64(c.TS))
	binary.BigEndian.PutUint64(buf[o+8:], uint64(c.Offset))
	binary.BigEndian.PutUint64(buf[o+16:], uint64(c.RootDistance))
	buf[o+24] = c.Stratum
	var f byte
	if c.Synced {
		f |= clockSynced
	}
	if c.Assumed {
		f |= clockAssumed
	}
	buf[o+25] = f
	buf[o+26] = byte(len(srv))
	o += clockFixed
	o += copy(buf[o:], srv)
	b.end = o
	b.n++
	return true
}

// ClockReader decodes the body of a clock PDU, like EventReader. Next
// allocates the server string.
type ClockReader struct {
	body []byte
	off  int
	err  error
}

// Reset starts decoding body.
func (r *ClockReader) Reset(body []byte) { *r = ClockReader{body: body} }

// Err returns the error that stopped Next, nil at a clean end.
func (r *ClockReader) Err() error { return r.err }

// Next decodes the next record into c and reports whether there was one.
func (r *ClockReader) Next(c *Clock) bool {
	if r.err != nil || r.off == len(r.body) {
		return false
	}
	b, o := r.body, r.off
	if len(b)-o < clockFixed {
		r.fail("truncated clock record", o)
		return false
	}
	f := b[o+25]
	if f&^clockFlags != 0 {
		r.fail("reserved flag bits", o+25)
		return false
	}
	sl := int(b[o+26])
	if len(b)-o-clockFixed < sl {
		r.fail("truncated server name", o+clockFixed)
		return false
	}
	*c = Clock{
		TS:           int64(binary.BigEndian.Uint64(b[o:])),
		Offset:       int64(binary.BigEndian.Uint64(b[o+8:])),
		RootDistance: int64(binary.BigEndian.Uint64(b[o+16:])),
		Stratum:      b[o+24],
		Synced:       f&clockSynced != 0,
		Assumed:      f&clockAssumed != 0,
		Server:       string(b[o+clockFixed : o+clockFixed+sl]),
	}
	r.off = o + clockFixed + sl
	return true
}

func (r *ClockReader) fail(what string, off int) {
	r.err = fmt.Errorf("pdu: decode clock: %s at body offset %d: %w", what, off, ErrMalformed)
}
