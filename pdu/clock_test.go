package pdu

import (
	"bytes"
	"errors"
	"testing"
)

// The clock fixture of docs/pdu.md.
var goldenClock = Clock{TS: 1_700_000_000_000_000_000, Offset: -1500, RootDistance: 250_000, Stratum: 2, Synced: true, Server: "ntp1"}

const goldenClockHex = `746d 01 07 00 00 0007 01020304 00000005 00000003 17979cfe362a0000 001f
	17979cfe362a0000 fffffffffffffa24 000000000003d090 02 01 04 6e747031
	17442548`

func TestClockGolden(t *testing.T) {
	b := NewBuilder(512)
	if !b.AddClock(goldenClock) {
		t.Fatal("AddClock refused a record in an empty PDU")
	}
	got := b.Finish(goldenHeader)
	if want := unhex(t, goldenClockHex); !bytes.Equal(got, want) {
		t.Fatalf("clock PDU\n got %x\nwant %x", got, want)
	}
}

func TestClockRoundTrip(t *testing.T) {
	in := []Clock{
		goldenClock,
		{TS: 5, Assumed: true, Synced: true},
		{TS: 6, Offset: 1 << 40, RootDistance: 1 << 50, Stratum: 16, Server: string(bytes.Repeat([]byte("x"), 300))},
		{},
	}
	b := NewBuilder(MaxPDUSize)
	for _, c := range in {
		if !b.AddClock(c) {
			t.Fatal("AddClock refused")
		}
	}
	f, err := Parse(b.Finish(Header{}))
	if err != nil {
		t.Fatal(err)
	}
	if f.Header.Type != TypeClock || f.Header.Type.String() != "clock" {
		t.Fatalf("type %v", f.Header.Type)
	}
	if err := Validate(&f); err != nil {
		t.Fatal(err)
	}
	var r ClockReader
	var c Clock
	r.Reset(f.Body)
	for i, want := range in {
		if len(want.Server) > 255 {
			want.Server = want.Server[:255]
		}
		if !r.Next(&c) {
			t.Fatalf("record %d missing: %v", i, r.Err())
		}
		if c != want {
			t.Fatalf("record %d: %+v, want %+v", i, c, want)
		}
	}
	if r.Next(&c) || r.Err() != nil {
		t.Fatalf("extra record or error: %v", r.Err())
	}
}

func TestClockFull(t *testing.T) {
	b := NewBuilder(MinPDUSize)
	n := 0
	for b.AddClock(goldenClock) {
		n++
	}
	if n == 0 || b.Len() != n {
		t.Fatalf("%d records, Len %d", n, b.Len())
	}
	if _, err := Parse(b.Finish(Header{})); err != nil {
		t.Fatal(err)
	}
}

func TestClockMalformed(t *testing.T) {
	b := NewBuilder(512)
	b.AddClock(goldenClock)
	f, _ := Parse(b.Finish(Header{}))
	body := append([]byte(nil), f.Body...)
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"truncated", body[:10]},
		{"server cut", body[:len(body)-1]},
		{"reserved flags", func() []byte { x := append([]byte(nil), body...); x[25] |= 0x80; return x }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r ClockReader
			var c Clock
			r.Reset(tc.body)
			for r.Next(&c) {
			}
			if !errors.Is(r.Err(), ErrMalformed) {
				t.Fatalf("err %v, want ErrMalformed", r.Err())
			}
			fr := Frame{Header: Header{Type: TypeClock}, Body: tc.body}
			if Validate(&fr) == nil {
				t.Fatal("Validate accepted it")
			}
		})
	}
}

func TestAddClockDoesNotAllocate(t *testing.T) {
	b := NewBuilder(MaxPDUSize)
	if n := testing.AllocsPerRun(100, func() {
		b.Reset()
		b.AddClock(goldenClock)
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
