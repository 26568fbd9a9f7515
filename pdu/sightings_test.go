package pdu

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// flowClass is what the builder is told per flow.
type flowClass struct {
	exp     uint8
	hasSize bool
}

// quantised is the slow, obvious reference for the time a decoder returns.
func quantised(ts int64, exp uint8) int64 {
	u := pow10[exp]
	q := ts / u
	if ts%u != 0 && ts < 0 {
		q--
	}
	if q < math.MinInt64/u {
		q = math.MinInt64 / u
	}
	return q * u
}

type want struct {
	s  Sighting
	fc flowClass
}

// decodeAll decodes a finished sightings PDU.
func decodeAll(t testing.TB, p []byte) []want {
	t.Helper()
	f, err := Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(&f); err != nil {
		t.Fatal(err)
	}
	var r SightingReader
	var s Sighting
	var out []want
	r.Reset(f.Body)
	for r.Next(&s) {
		out = append(out, want{s, flowClass{r.Resolution(), r.HasSize()}})
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	return out
}

// TestSightingsRoundTrip is a property test: random flows with every
// resolution, random times (dense, huge gaps, backwards, near the int64
// limits), random PDU sizes; whatever is encoded decodes to the quantised
// input, and a sighting refused by a full PDU is taken by an empty one.
func TestSightingsRoundTrip(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed*7))
			nflows := 1 + rng.IntN(300) // more than the 128 local slots at times
			classes := make([]flowClass, nflows)
			for i := range classes {
				classes[i] = flowClass{uint8(rng.IntN(MaxResolutionExp + 1)), rng.IntN(2) == 0}
			}
			b := NewBuilder(MinPDUSize + rng.IntN(3000))
			ts := rng.Int64()
			var pending []want
			check := func() {
				if b.Len() != len(pending) {
					t.Fatalf("Len() = %d, want %d", b.Len(), len(pending))
				}
				p := b.Finish(Header{Type: TypeSightings})
				if len(p) != b.Size() || len(p) > len(b.buf) {
					t.Fatalf("Finish() returned %d bytes, Size() %d, max %d", len(p), b.Size(), len(b.buf))
				}
				got := decodeAll(t, p)
				if len(got) != len(pending) {
					t.Fatalf("decoded %d sightings, encoded %d", len(got), len(pending))
				}
				for i := range got {
					if got[i] != pending[i] {
						t.Fatalf("sighting %d: got %+v, want %+v", i, got[i], pending[i])
					}
				}
				pending = pending[:0]
				b.Reset()
			}
			for range 5000 {
				switch r := rng.IntN(100); {
				case r < 70:
					ts += rng.Int64N(20_000)
				case r < 85:
					ts -= rng.Int64N(5_000)
				case r < 95:
					ts += rng.Int64N(1 << 50)
				case r < 98:
					ts = rng.Int64() - rng.Int64() // anywhere
				case r < 99:
					ts = math.MaxInt64 - rng.Int64N(1000)
				default:
					ts = math.MinInt64 + rng.Int64N(1000)
				}
				id := rng.IntN(nflows)
				if rng.IntN(4) > 0 && len(pending) > 0 {
					id = int(pending[len(pending)-1].s.Flow) // trains of one flow
				}
				fc := classes[id]
				s := Sighting{Flow: uint32(id), Sig: rng.Uint32(), TS: ts}
				if fc.hasSize {
					s.Size = rng.Uint32N(70000)
					if rng.IntN(50) == 0 {
						s.Size = math.MaxUint32
					}
				}
				w := want{s, fc}
				w.s.TS = quantised(ts, fc.exp)
				if !b.AddSighting(uint32(id), fc.exp, fc.hasSize, s) {
					if b.Len() == 0 {
						t.Fatalf("empty PDU refused %+v", s)
					}
					check()
					if !b.AddSighting(uint32(id), fc.exp, fc.hasSize, s) {
						t.Fatalf("empty PDU refused %+v", s)
					}
				}
				pending = append(pending, w)
			}
			check()
		})
	}
}

// A refused sighting leaves the PDU exactly as it was.
func TestAddSightingFullUnchanged(t *testing.T) {
	b := NewBuilder(MinPDUSize)
	var before []byte
	for i := 0; ; i++ {
		before = append(before[:0], b.Finish(Header{Type: TypeSightings})...)
		if !b.AddSighting(uint32(i%3), 0, true, Sighting{Sig: uint32(i), TS: int64(i) * 1000, Size: 1500}) {
			break
		}
	}
	if got := b.Finish(Header{Type: TypeSightings}); string(got) != string(before) {
		t.Fatalf("refused sighting changed the PDU:\n%x\n%x", got, before)
	}
	if b.Size() > MinPDUSize {
		t.Fatalf("Size() = %d > max %d", b.Size(), MinPDUSize)
	}
}

func TestSightingReaderMalformed(t *testing.T) {
	base := []byte{0, 0, 0, 0, 0, 0, 0, 0}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	sig := []byte{1, 2, 3, 4}
	tests := []struct {
		name string
		body []byte
	}{
		{"no base", []byte{1, 2, 3}},
		{"undeclared local flow", cat(base, []byte{0x00}, sig, []byte{1})},
		{"reserved selector", cat(base, []byte{0x90, 1}, sig, []byte{1})},
		{"resolution 7", cat(base, []byte{0x87, 1}, sig, []byte{1})},
		{"flow id varint overflow", cat(base, []byte{0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, sig, []byte{1})},
		{"flow id above 32 bits", cat(base, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x10}, sig, []byte{1})},
		{"truncated signature", cat(base, []byte{0x80, 1, 1, 2})},
		{"missing delta", cat(base, []byte{0x80, 1}, sig)},
		{"delta varint overflow", cat(base, []byte{0x80, 1}, sig, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})},
		{"unterminated section", cat(base, []byte{0x80, 1}, sig, []byte{0})},
		{"missing size", cat(base, []byte{0x88, 1}, sig, []byte{1})},
		{"size above 32 bits", cat(base, []byte{0x88, 1}, sig, []byte{1, 0x80, 0x80, 0x80, 0x80, 0x10})},
		{"time overflow up", cat([]byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0}, []byte{0x80, 1}, sig, []byte{0x42})},
		{"time overflow down", cat([]byte{0x80, 0, 0, 0, 0, 0, 0, 0x10}, []byte{0x80, 1}, sig, []byte{0x43})},
		{"time overflow at ms", cat([]byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0, 0, 0}, []byte{0x86, 1}, sig, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r SightingReader
			var s Sighting
			r.Reset(tt.body)
			for r.Next(&s) {
			}
			if !errors.Is(r.Err(), ErrMalformed) {
				t.Fatalf("Err() = %v, want ErrMalformed", r.Err())
			}
		})
	}
}

func TestSightingsNoAlloc(t *testing.T) {
	b := NewBuilder(1400)
	var p []byte
	allocs := testing.AllocsPerRun(100, func() {
		b.Reset()
		for i := range 200 {
			if !b.AddSighting(uint32(i%7), uint8(i%4), i%2 == 0, Sighting{Sig: uint32(i), TS: int64(i) * 5001, Size: 99}) {
				break
			}
		}
		p = b.Finish(Header{Type: TypeSightings, ProbeTime: 1})
	})
	if allocs != 0 {
		t.Errorf("builder: %v allocs per PDU, want 0", allocs)
	}
	f, err := Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	allocs = testing.AllocsPerRun(100, func() {
		f, _ := Parse(p)
		_ = Validate(&f)
		var r SightingReader
		var s Sighting
		n = 0
		r.Reset(f.Body)
		for r.Next(&s) {
			n++
		}
	})
	if allocs != 0 {
		t.Errorf("decoder: %v allocs per PDU, want 0", allocs)
	}
	if n == 0 || n != b.Len() {
		t.Fatalf("decoded %d of %d sightings (%d bytes)", n, b.Len(), len(f.Body))
	}
}

func TestResolutionExp(t *testing.T) {
	for _, tt := range []struct {
		d   time.Duration
		exp uint8
		ok  bool
	}{
		{time.Nanosecond, 0, true}, {time.Microsecond, 3, true}, {100 * time.Microsecond, 5, true},
		{time.Millisecond, 6, true}, {0, 0, false}, {2 * time.Microsecond, 0, false}, {10 * time.Millisecond, 0, false},
	} {
		if exp, ok := ResolutionExp(tt.d); exp != tt.exp || ok != tt.ok {
			t.Errorf("ResolutionExp(%v) = %d, %v; want %d, %v", tt.d, exp, ok, tt.exp, tt.ok)
		}
	}
}
