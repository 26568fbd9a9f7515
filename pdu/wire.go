package pdu

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Wire constants of format version 1 (docs/pdu.md).
const (
	Version     = 1
	HeaderSize  = 30                       // fixed header, before the body
	TrailerSize = 4                        // CRC32C, after the body and the auth trailer
	Overhead    = HeaderSize + TrailerSize // bytes of a PDU with an empty body
	MinPDUSize  = 128                      // smallest max PDU size a Builder accepts
	MaxPDUSize  = 65507                    // largest UDP payload over IPv4; the body length fits 16 bits
)

// Header offsets and flag bits (docs/pdu.md, "Header").
const (
	magic0     = 't' // "tm": cheap rejection of stray datagrams
	magic1     = 'm'
	offFlags   = 4
	offAuthLen = 5
	offProbe   = 6
	offSession = 8
	offSeq     = 12
	offFloor   = 16
	offTime    = 20
	offBodyLen = 28
	flagsAuth  = 0x0f // low nibble: auth algorithm of the trailer (0: none)
	flagsRsvd  = 0xf0 // must be zero in version 1
)

// The errors Parse returns, unwrapped so that a receiver can count them by
// reason without allocating. Body readers wrap ErrMalformed with the
// position and the cause.
var (
	ErrShort     = errors.New("pdu: truncated")
	ErrMagic     = errors.New("pdu: bad magic")
	ErrVersion   = errors.New("pdu: unsupported version")
	ErrLength    = errors.New("pdu: length fields disagree with datagram size")
	ErrCRC       = errors.New("pdu: CRC mismatch")
	ErrType      = errors.New("pdu: unknown type")
	ErrMalformed = errors.New("pdu: malformed")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// String names t for logs.
func (t Type) String() string {
	switch t {
	case TypeAck:
		return "ack"
	case TypeHeartbeat:
		return "heartbeat"
	case TypeFlowDef:
		return "flowdef"
	case TypeSightings:
		return "sightings"
	case TypeEvents:
		return "events"
	case TypeBye:
		return "bye"
	case TypeClock:
		return "clock"
	case TypeCounters:
		return "counters"
	case TypeRTT:
		return "rtt"
	case TypeTCPConn:
		return "tcpconn"
	case TypeFTP:
		return "ftp"
	}
	return "type(" + itoa(int(t)) + ")"
}

func itoa(v int) string {
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

func (t Type) known() bool { return t >= TypeAck && t <= TypeFTP }

// Frame is a PDU whose header, lengths and CRC have been checked. Its
// slices point into the datagram passed to Parse and are valid as long as
// that buffer is.
type Frame struct {
	Header Header
	// AuthAlg is the authentication algorithm of the trailer (0: none);
	// Auth the trailer itself. Version 1 defines no algorithm: the seam for
	// HMAC with replay protection, which signs Signed.
	AuthAlg uint8
	Auth    []byte
	Body    []byte
	Signed  []byte // header and body: what an auth trailer covers
}

// Parse checks the datagram b in this order — size, magic, version, length
// fields, CRC — before it looks at anything else, then the type and flags.
// It does not look into the body (see Validate and the readers) and does
// not allocate.
func Parse(b []byte) (Frame, error) {
	var f Frame
	if len(b) < Overhead {
		return f, ErrShort
	}
	if b[0] != magic0 || b[1] != magic1 {
		return f, ErrMagic
	}
	if b[2] != Version {
		return f, ErrVersion
	}
	bodyLen := int(binary.BigEndian.Uint16(b[offBodyLen:]))
	authLen := int(b[offAuthLen])
	want := HeaderSize + bodyLen + authLen + TrailerSize
	if len(b) < want {
		return f, ErrShort
	}
	if len(b) > want {
		return f, ErrLength
	}
	end := len(b) - TrailerSize
	if crc32.Checksum(b[:end], castagnoli) != binary.BigEndian.Uint32(b[end:]) {
		return f, ErrCRC
	}
	f.Header = Header{
		Type:      Type(b[3]),
		Probe:     binary.BigEndian.Uint16(b[offProbe:]),
		Session:   binary.BigEndian.Uint32(b[offSession:]),
		Seq:       binary.BigEndian.Uint32(b[offSeq:]),
		Floor:     binary.BigEndian.Uint32(b[offFloor:]),
		ProbeTime: int64(binary.BigEndian.Uint64(b[offTime:])),
	}
	if !f.Header.Type.known() {
		return f, ErrType
	}
	flags := b[offFlags]
	if flags&flagsRsvd != 0 || (flags&flagsAuth == 0) != (authLen == 0) {
		return f, ErrMalformed
	}
	f.AuthAlg = flags & flagsAuth
	f.Body = b[HeaderSize : HeaderSize+bodyLen]
	f.Auth = b[HeaderSize+bodyLen : end]
	f.Signed = b[:HeaderSize+bodyLen]
	return f, nil
}

// putHeader writes h into b[:HeaderSize] for a body of bodyLen bytes and no
// auth trailer.
func putHeader(b []byte, h Header, bodyLen int) {
	b[0], b[1], b[2], b[3] = magic0, magic1, Version, byte(h.Type)
	b[offFlags], b[offAuthLen] = 0, 0
	binary.BigEndian.PutUint16(b[offProbe:], h.Probe)
	binary.BigEndian.PutUint32(b[offSession:], h.Session)
	binary.BigEndian.PutUint32(b[offSeq:], h.Seq)
	binary.BigEndian.PutUint32(b[offFloor:], h.Floor)
	binary.BigEndian.PutUint64(b[offTime:], uint64(h.ProbeTime))
	binary.BigEndian.PutUint16(b[offBodyLen:], uint16(bodyLen))
}

// seal writes the CRC over everything before the last TrailerSize bytes.
func seal(b []byte) {
	end := len(b) - TrailerSize
	binary.BigEndian.PutUint32(b[end:], crc32.Checksum(b[:end], castagnoli))
}

// Restamp rewrites the ids of the encoded PDU b in place and recomputes its
// CRC: the transport gives a PDU its probe, session, seq and per-collector
// floor when it sends it, so that builders need not know them. b must be a
// PDU without auth trailer (the transport seals after restamping). It does
// not allocate.
func Restamp(b []byte, probe uint16, session, seq, floor uint32) error {
	if len(b) < Overhead {
		return ErrShort
	}
	if b[0] != magic0 || b[1] != magic1 {
		return ErrMagic
	}
	if b[offAuthLen] != 0 {
		return ErrMalformed
	}
	binary.BigEndian.PutUint16(b[offProbe:], probe)
	binary.BigEndian.PutUint32(b[offSession:], session)
	binary.BigEndian.PutUint32(b[offSeq:], seq)
	binary.BigEndian.PutUint32(b[offFloor:], floor)
	seal(b)
	return nil
}

// AppendControl appends a heartbeat or bye PDU (empty body) with header h to
// dst. It does not allocate when dst has room.
func AppendControl(dst []byte, h Header) []byte {
	return appendFrame(dst, h, nil)
}

// ByeContinues is the bye's flag that a new session of the probe follows
// at once (docs/pdu.md): the probe rolled to a new session to renew its
// flow ids, and the collectors go on waiting for its data.
const ByeContinues = 0x01

// AppendBye appends a bye: an empty body, or the one flags byte when the
// probe continues in a new session.
func AppendBye(dst []byte, h Header, continues bool) []byte {
	h.Type = TypeBye
	if continues {
		return appendFrame(dst, h, []byte{ByeContinues})
	}
	return appendFrame(dst, h, nil)
}

// Continues reports a bye's ByeContinues flag.
func (f *Frame) Continues() bool {
	return f.Header.Type == TypeBye && len(f.Body) == 1 && f.Body[0]&ByeContinues != 0
}

// AppendAck appends to dst the ack of the PDU (session, seq) of probe, sent
// by a collector at its time now (ns). The acked ids appear twice, in the
// header and in the body, so that a corrupted ack that passes the CRC is
// still not taken for another PDU's.
func AppendAck(dst []byte, probe uint16, session, seq uint32, now int64) []byte {
	var body [8]byte
	binary.BigEndian.PutUint32(body[0:], session)
	binary.BigEndian.PutUint32(body[4:], seq)
	return appendFrame(dst, Header{Type: TypeAck, Probe: probe, Session: session, Seq: seq, ProbeTime: now}, body[:])
}

func appendFrame(dst []byte, h Header, body []byte) []byte {
	n := len(dst)
	total := Overhead + len(body)
	dst = append(dst, make([]byte, total)...)
	b := dst[n:]
	putHeader(b, h, len(body))
	copy(b[HeaderSize:], body)
	seal(b)
	return dst
}

// Ack returns the ids an ack frame acknowledges, after checking that both
// copies agree.
func (f *Frame) Ack() (session, seq uint32, err error) {
	if f.Header.Type != TypeAck {
		return 0, 0, ErrType
	}
	if len(f.Body) != 8 {
		return 0, 0, ErrMalformed
	}
	session = binary.BigEndian.Uint32(f.Body[0:])
	seq = binary.BigEndian.Uint32(f.Body[4:])
	if session != f.Header.Session || seq != f.Header.Seq {
		return 0, 0, ErrMalformed
	}
	return session, seq, nil
}
