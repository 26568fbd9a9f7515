package pdu

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
)

// Authentication algorithms of the auth trailer (flags bits 0–3).
const (
	// AuthHMACSHA256 is HMAC-SHA256 with the probe's key over header and
	// body (Frame.Signed: the type, probe, session, seq, floor and time are
	// all covered), truncated to AuthSize bytes (RFC 2104 §5 allows
	// truncation to half the hash).
	AuthHMACSHA256 = 1
	// AuthSize is the length of an AuthHMACSHA256 trailer.
	AuthSize = 16
)

// Signer signs and verifies PDUs with one key (docs/pdu.md, "Auth
// trailer"). It keeps its HMAC state between calls, so a Signer is not safe
// for concurrent use: give each goroutine its own. Sign and Verify do not
// allocate.
type Signer struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// NewSigner returns a Signer for key.
func NewSigner(key []byte) *Signer {
	return &Signer{mac: hmac.New(sha256.New, key)}
}

// Sign appends the auth trailer to the unsigned PDU b (as built, restamped
// and sealed, without trailer) and reseals it. It returns the extended
// slice, which shares b's array when it has room for AuthSize more bytes.
func (s *Signer) Sign(b []byte) ([]byte, error) {
	if len(b) < Overhead {
		return b, ErrShort
	}
	if b[0] != magic0 || b[1] != magic1 || b[offAuthLen] != 0 || b[offFlags] != 0 {
		return b, ErrMalformed
	}
	end := len(b) - TrailerSize
	b[offFlags] = AuthHMACSHA256
	b[offAuthLen] = AuthSize
	s.compute(b[:end])
	b = append(b[:end], s.sum[:AuthSize]...)
	b = append(b, 0, 0, 0, 0)
	seal(b)
	return b, nil
}

// Verify reports whether f carries a valid AuthHMACSHA256 trailer for this
// key. The comparison takes constant time.
func (s *Signer) Verify(f *Frame) bool {
	if f.AuthAlg != AuthHMACSHA256 || len(f.Auth) != AuthSize {
		return false
	}
	s.compute(f.Signed)
	return hmac.Equal(s.sum[:AuthSize], f.Auth)
}

func (s *Signer) compute(signed []byte) {
	s.mac.Reset()
	s.mac.Write(signed)
	s.mac.Sum(s.sum[:0])
}
