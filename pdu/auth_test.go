package pdu

import (
	"bytes"
	"testing"
)

func TestSignVerify(t *testing.T) {
	key := bytes.Repeat([]byte{0x5a}, 32)
	s := NewSigner(key)
	h := Header{Type: TypeHeartbeat, Probe: 7, Session: 0x01020304, Seq: 4, Floor: 5, ProbeTime: 1700000000000000000}
	b, err := s.Sign(AppendControl(nil, h))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != Overhead+AuthSize {
		t.Fatalf("signed length %d", len(b))
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Verify(&f) {
		t.Fatal("own signature refused")
	}
	if NewSigner(bytes.Repeat([]byte{0x5b}, 32)).Verify(&f) {
		t.Fatal("signature verified with another key")
	}
	// Any change of a signed field, CRC fixed up by the forger, fails.
	for _, off := range []int{3, 6, 8, 12, 16, 20, HeaderSize - 1} {
		c := bytes.Clone(b)
		c[off] ^= 1
		seal(c)
		g, err := Parse(c)
		if err != nil {
			continue // e.g. an unknown type
		}
		if s.Verify(&g) {
			t.Errorf("byte %d changed: still verified", off)
		}
	}
	// An unsigned PDU is not authentic, and signing twice is refused.
	u, _ := Parse(AppendControl(nil, h))
	if s.Verify(&u) {
		t.Fatal("unsigned PDU verified")
	}
	if _, err := s.Sign(b); err == nil {
		t.Fatal("signed twice")
	}
}

func TestSignNoAlloc(t *testing.T) {
	s := NewSigner([]byte("0123456789abcdef"))
	base := AppendControl(make([]byte, 0, 128), Header{Type: TypeHeartbeat, Probe: 1, Session: 1, Floor: 1})
	buf := make([]byte, 0, 128)
	allocs := testing.AllocsPerRun(100, func() {
		b, _ := s.Sign(append(buf[:0], base...))
		f, _ := Parse(b)
		if !s.Verify(&f) {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}

func BenchmarkSignVerify(b *testing.B) {
	s := NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	body := make([]byte, 1300)
	base := appendFrame(nil, Header{Type: TypeSightings, Probe: 1, Session: 1, Seq: 1, Floor: 1}, body)
	buf := make([]byte, 0, 1400)
	b.ReportAllocs()
	b.SetBytes(int64(len(base)))
	for b.Loop() {
		p, _ := s.Sign(append(buf[:0], base...))
		f, _ := Parse(p)
		if !s.Verify(&f) {
			b.Fatal("refused")
		}
	}
}
