package rollout

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// The configuration exchange (docs/rollout.md): one request and one
// response over a TCP connection to a collector's address (the UDP port's
// number, TCP). Not a PDU: a configuration file is up to 4 MiB, more than
// a datagram, and is asked for rarely. Both messages are signed like PDUs,
// HMAC-SHA256 truncated to 16 bytes with a probe's key, and the response
// echoes the request's nonce, so neither can be forged nor a response
// replayed to another request.

// Operations of a request.
const (
	OpFetch  = 1 // the newest configuration published, if newer than the requester's
	OpPush   = 2 // publish a new configuration (tmon config push)
	OpStatus = 3 // what every component reported in its fetches
)

// Statuses of a response.
const (
	StatusOK          = 0
	StatusNotModified = 1 // fetch: nothing newer than what the requester has
	StatusRefused     = 2 // the body says why
)

// Wire constants (docs/rollout.md, "Messages").
const (
	wireVersion = 1
	headerSize  = 36
	authAlg     = 1  // HMAC-SHA256-128, as pdu.AuthHMACSHA256
	authSize    = 16 // truncated HMAC
	maxBody     = maxFile + 1024
	// maxSkew bounds the difference between a request's time and the
	// collector's clock: an old request recorded on the path is refused.
	maxSkew = 5 * time.Minute
)

var errWire = errors.New("rollout: malformed message")

// message is a request or a response.
type message struct {
	code  byte // op of a request, status of a response
	keyID uint16
	time  int64
	nonce [16]byte
	body  []byte
}

// encode writes m with magic, version and, when key is set, the auth
// trailer.
func (m *message) encode(key []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(m.body)+authSize)
	b[0], b[1], b[2], b[3] = 't', 'c', wireVersion, m.code
	if key != nil {
		b[4], b[5] = authAlg, authSize
	}
	binary.BigEndian.PutUint16(b[6:], m.keyID)
	binary.BigEndian.PutUint64(b[8:], uint64(m.time))
	copy(b[16:32], m.nonce[:])
	binary.BigEndian.PutUint32(b[32:], uint32(len(m.body)))
	b = append(b, m.body...)
	if key != nil {
		b = append(b, mac(key, b)...)
	}
	return b
}

func mac(key, b []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(b)
	return h.Sum(nil)[:authSize]
}

// readMessage reads one message from r. keys returns the keys that may
// have signed it (nil: none is expected); the message must verify with one
// of them, which is returned (nil when unsigned).
func readMessage(r io.Reader, keys func(id uint16) [][]byte) (*message, []byte, error) {
	h := make([]byte, headerSize)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, nil, fmt.Errorf("rollout: reading a message: %w", err)
	}
	if h[0] != 't' || h[1] != 'c' || h[2] != wireVersion {
		return nil, nil, fmt.Errorf("%w: magic or version", errWire)
	}
	alg, alen := h[4], int(h[5])
	if alg > authAlg || (alg == 0) != (alen == 0) || alg == authAlg && alen != authSize {
		return nil, nil, fmt.Errorf("%w: auth algorithm %d, length %d", errWire, alg, alen)
	}
	n := binary.BigEndian.Uint32(h[32:])
	if n > maxBody {
		return nil, nil, fmt.Errorf("%w: body of %d bytes", errWire, n)
	}
	b := make([]byte, headerSize+int(n)+alen)
	copy(b, h)
	if _, err := io.ReadFull(r, b[headerSize:]); err != nil {
		return nil, nil, fmt.Errorf("rollout: reading a message: %w", err)
	}
	m := &message{code: h[3], keyID: binary.BigEndian.Uint16(h[6:]), time: int64(binary.BigEndian.Uint64(h[8:])), body: b[headerSize : headerSize+int(n)]}
	copy(m.nonce[:], h[16:32])
	want := keys(m.keyID)
	if want == nil {
		return m, nil, nil
	}
	if alg == 0 {
		return nil, nil, errors.New("rollout: unsigned message: refused")
	}
	signed, trailer := b[:headerSize+int(n)], b[headerSize+int(n):]
	for _, k := range want {
		if hmac.Equal(mac(k, signed), trailer) {
			return m, k, nil
		}
	}
	return nil, nil, fmt.Errorf("rollout: message signed with key id %d does not verify: refused", m.keyID)
}

func newNonce() (n [16]byte) {
	if _, err := rand.Read(n[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// Report is what a component says about itself in a fetch, and what a
// collector answers to a status request for each component it heard.
type Report struct {
	Role, Name string // "probe" or "collector", its name
	Running    string // version in force
	Held       string // version held for later; empty when none
	HeldFrom   int64  // its validFrom (ns); 0 when immediate or none
	Published  int64  // publication stamp of the newest version the component has
	Seen       int64  // when the collector heard it (status answers only)
}

// fetch body: published int64, then the report's strings, each a 1-byte
// length and UTF-8, held validFrom int64.
func (r *Report) encode(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(r.Published))
	for _, s := range []string{r.Role, r.Name, r.Running, r.Held} {
		s = s[:min(len(s), 255)]
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.HeldFrom))
	return binary.BigEndian.AppendUint64(b, uint64(r.Seen))
}

func decodeReport(b []byte) (Report, []byte, error) {
	var r Report
	if len(b) < 8 {
		return r, nil, errWire
	}
	r.Published, b = int64(binary.BigEndian.Uint64(b)), b[8:]
	for _, s := range []*string{&r.Role, &r.Name, &r.Running, &r.Held} {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return r, nil, errWire
		}
		*s, b = string(b[1:1+int(b[0])]), b[1+int(b[0]):]
	}
	if len(b) < 16 {
		return r, nil, errWire
	}
	r.HeldFrom, r.Seen = int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:]))
	return r, b[16:], nil
}
