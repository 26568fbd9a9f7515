package pdu

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Helpers for the records of the protocol analyses (counters, round trips,
// TCP connections, FTP transfers): each is a run of uvarints and fixed
// integers, encoded with put* into a scratch array so that a record that
// does not fit leaves the PDU unchanged, and decoded with a fieldReader
// that fails at the first byte out of place.

// maxRecord is the largest protocol-analysis record body (an FTP transfer
// with its longest strings is the largest).
const maxRecord = 1024

// fieldReader decodes one body of records; the first error sticks.
type fieldReader struct {
	body []byte
	off  int
	err  error
	what string // the PDU type, for errors
}

func (r *fieldReader) reset(body []byte, what string) {
	*r = fieldReader{body: body, what: what}
}

func (r *fieldReader) more() bool { return r.err == nil && r.off < len(r.body) }

func (r *fieldReader) fail(cause string) {
	if r.err == nil {
		r.err = fmt.Errorf("pdu: decode %s: %s at body offset %d: %w", r.what, cause, r.off, ErrMalformed)
	}
}

func (r *fieldReader) uvarint(name string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.body[r.off:])
	if n <= 0 {
		r.fail("bad " + name)
		return 0
	}
	r.off += n
	return v
}

// u32 reads a uvarint that must fit 32 bits.
func (r *fieldReader) u32(name string) uint32 {
	v := r.uvarint(name)
	if v > 1<<32-1 {
		r.fail(name + " out of range")
		return 0
	}
	return uint32(v)
}

// i64 reads a zigzag varint.
func (r *fieldReader) i64(name string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.body[r.off:])
	if n <= 0 {
		r.fail("bad " + name)
		return 0
	}
	r.off += n
	return v
}

func (r *fieldReader) byte1(name string) byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.body) {
		r.fail("truncated " + name)
		return 0
	}
	v := r.body[r.off]
	r.off++
	return v
}

func (r *fieldReader) fixed64(name string) int64 {
	if r.err != nil {
		return 0
	}
	if len(r.body)-r.off < 8 {
		r.fail("truncated " + name)
		return 0
	}
	v := int64(binary.BigEndian.Uint64(r.body[r.off:]))
	r.off += 8
	return v
}

// recBuf is a record being encoded before it is copied into a PDU.
type recBuf struct {
	b [maxRecord]byte
	n int
}

func (w *recBuf) uvarint(v uint64) { w.n += binary.PutUvarint(w.b[w.n:], v) }
func (w *recBuf) i64(v int64)      { w.n += binary.PutVarint(w.b[w.n:], v) }
func (w *recBuf) byte1(v byte)     { w.b[w.n] = v; w.n++ }

func (w *recBuf) fixed64(v int64) {
	binary.BigEndian.PutUint64(w.b[w.n:], uint64(v))
	w.n += 8
}

// addRecord copies an encoded record into the PDU of type t; false, the
// PDU unchanged, when it does not fit.
func (b *Builder) addRecord(t Type, w *recBuf) bool {
	if b.end+w.n > b.limit {
		return false
	}
	b.begin(t)
	b.end += copy(b.buf[b.end:], w.b[:w.n])
	b.n++
	return true
}

// addrPort encodes an address and port: 1 byte family (4 or 6), the
// address (4 or 16 bytes), the port (2 bytes, big-endian).
func (w *recBuf) addrPort(a netip.AddrPort) {
	ip := a.Addr()
	if ip.Is4() {
		w.byte1(4)
		b := ip.As4()
		w.n += copy(w.b[w.n:], b[:])
	} else {
		w.byte1(6)
		b := ip.As16()
		w.n += copy(w.b[w.n:], b[:])
	}
	binary.BigEndian.PutUint16(w.b[w.n:], a.Port())
	w.n += 2
}

// str encodes a string of at most 255 bytes: its length, its bytes.
func (w *recBuf) str(s []byte) {
	w.byte1(byte(len(s)))
	w.n += copy(w.b[w.n:], s)
}

func (r *fieldReader) addrPort(name string) netip.AddrPort {
	fam := r.byte1(name + " family")
	n := 4
	switch {
	case r.err != nil:
		return netip.AddrPort{}
	case fam == 6:
		n = 16
	case fam != 4:
		r.fail("bad " + name + " family")
		return netip.AddrPort{}
	}
	if len(r.body)-r.off < n+2 {
		r.fail("truncated " + name)
		return netip.AddrPort{}
	}
	var ip netip.Addr
	if n == 4 {
		ip = netip.AddrFrom4([4]byte(r.body[r.off:]))
	} else {
		ip = netip.AddrFrom16([16]byte(r.body[r.off:]))
	}
	r.off += n
	port := binary.BigEndian.Uint16(r.body[r.off:])
	r.off += 2
	return netip.AddrPortFrom(ip, port)
}

// str reads a string of at most max bytes; the slice points into the body.
func (r *fieldReader) str(name string, max int) []byte {
	n := int(r.byte1(name + " length"))
	switch {
	case r.err != nil:
		return nil
	case n > max:
		r.fail(name + " too long")
		return nil
	case len(r.body)-r.off < n:
		r.fail("truncated " + name)
		return nil
	}
	s := r.body[r.off : r.off+n]
	r.off += n
	return s
}
