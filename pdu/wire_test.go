package pdu

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/flow"
)

// goldenHeader is the header of every golden fixture: probe 7, session
// 0x01020304, seq 5, floor 3, probe time 1.7e18 ns.
var goldenHeader = Header{Probe: 7, Session: 0x01020304, Seq: 5, Floor: 3, ProbeTime: 1_700_000_000_000_000_000}

// unhex decodes a fixture written with spaces and line breaks between the
// fields of docs/pdu.md.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var goldenFlowDef = FlowDef{ID: 9, Iface: 1, Key: flow.Key{
	Class:  2,
	Fields: flow.Set(0).With(flow.Src).With(flow.Dst).With(flow.Proto).With(flow.DstPort),
	Src:    netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("2001:db8::1"), Proto: 17, DstPort: 53,
}}

// goldenCounters: flow 9 in the minute starting 1 699 999 980 s: three
// packets of 1500, 64 and 40 bytes (sum 1604, sum of squares 2 255 696),
// one a fragment, and one ICMP error.
var goldenCounters = Counters{Flow: 9, Start: 1_699_999_980_000_000_000, Packets: 3, Bytes: 1604, Fragments: 1,
	ICMPErrors: 1, SizeSumSq: 2255696, SizeMin: 40, SizeMax: 1500}

// The fixtures are the examples of docs/pdu.md; a change here is a wire
// format change and needs a new version.
var golden = []struct {
	name  string
	build func(b *Builder) []byte
	hex   string
}{
	{
		name: "sightings",
		build: func(b *Builder) []byte {
			b.AddSighting(9, 3, true, Sighting{Sig: 0xdeadbeef, TS: 1_700_000_000_000_001_000, Size: 1500})
			b.AddSighting(9, 3, true, Sighting{Sig: 0x01020304, TS: 1_700_000_000_000_003_000, Size: 64})
			b.AddSighting(300, 0, false, Sighting{Sig: 0xcafebabe, TS: 1_700_000_000_000_002_999})
			b.AddSighting(9, 3, true, Sighting{Sig: 0x0a0b0c0d, TS: 1_700_000_000_000_010_000, Size: 40})
			return b.Finish(goldenHeader)
		},
		hex: `746d 01 04 00 00 0007 01020304 00000005 00000003 17979cfe362a0000 0026
		      17979cfe362a03e8
		      8b 09   deadbeef 00 dc0b
		              01020304 09 40
		      80 ac02 cafebabe 03
		      00      0a0b0c0d 21 28
		      9e38f9a9`,
	},
	{
		name: "flowdef",
		build: func(b *Builder) []byte {
			b.AddFlowDef(goldenFlowDef)
			return b.Finish(goldenHeader)
		},
		hex: `746d 01 03 00 00 0007 01020304 00000005 00000003 17979cfe362a0000 001d
		      09 01 02 9c20 09 0a000001 20010db8000000000000000000000001 11 0035
		      eb64fc7d`,
	},
	{
		name: "events",
		build: func(b *Builder) []byte {
			b.AddEvent(Event{TS: 1_700_000_000_000_000_000, Kind: "probe.start", Detail: "v1"})
			return b.Finish(goldenHeader)
		},
		hex: `746d 01 05 00 00 0007 01020304 00000005 00000003 17979cfe362a0000 0017
		      17979cfe362a0000 0b 70726f62652e7374617274 02 7631
		      ffd7ebd2`,
	},
	{
		name: "heartbeat",
		build: func(b *Builder) []byte {
			return b.Finish(Header{Type: TypeHeartbeat, Probe: 7, Session: 0x01020304, Seq: 4, Floor: 5, ProbeTime: goldenHeader.ProbeTime})
		},
		hex: `746d 01 02 00 00 0007 01020304 00000004 00000005 17979cfe362a0000 0000
		      417a357b`,
	},
	{
		name: "bye",
		build: func(*Builder) []byte {
			return AppendControl(nil, Header{Type: TypeBye, Probe: 7, Session: 0x01020304, Seq: 6, Floor: 6, ProbeTime: goldenHeader.ProbeTime})
		},
		hex: `746d 01 06 00 00 0007 01020304 00000006 00000006 17979cfe362a0000 0000
		      4f0f9dba`,
	},
	{
		name: "ack",
		build: func(*Builder) []byte {
			return AppendAck(nil, 7, 0x01020304, 5, 1_700_000_000_500_000_000)
		},
		hex: `746d 01 01 00 00 0007 01020304 00000005 00000000 17979cfe53f76500 0008
		      01020304 00000005
		      b99d0475`,
	},
	{
		name: "counters",
		build: func(b *Builder) []byte {
			b.AddCounters(goldenCounters)
			return b.Finish(goldenHeader)
		},
		hex: `746d 01 08 00 00 0007 01020304 00000005 00000003 17979cfe362a0000 0015
		      09 17979cf98e123800 03 c40c 01 01 d0d68901 28 dc0b
		      362d60e8`,
	},
	{
		name: "rtt",
		build: func(b *Builder) []byte {
			b.AddRTT(&goldenRTT)
			return b.Finish(goldenHeader)
		},
		hex: `746d 01 09 00 00 0007 01020304 00000005 00000003 17979cfe362a0000 0026
		      09 17979cf98e123800 02 02 01 80a4e803 00 80c0caf384a302 80897a 809bee02
		      02 f40e 01 b610 01
		      2a08dfbf`,
	},
	{
		name: "tcpconn",
		build: func(b *Builder) []byte {
			b.AddTCPConn(&goldenTCPConn)
			return b.Finish(goldenHeader)
		},
		hex: `746d 01 0a 00 00 0007 01020304 00000005 00000003 17979cfe362a0000 0039
		      09 17979cf98e123800 03 17979cfe362a04d2 80a7ce35 02 03 04 8d8edceb 92e4 04 c7e9d9f9 dd5a
		      04 00 00 00 00 04 d602 01 02 03 07 53684164664661
		      5bbf9bff`,
	},
	{
		name: "ftp",
		build: func(b *Builder) []byte {
			b.AddFTPTransfer(&goldenFTP)
			return b.Finish(goldenHeader)
		},
		hex: `746d 01 0b 00 00 0007 01020304 00000005 00000003 17979cfe362a0000 0054
		      09 17979cf98e123800 17979cfe362a03e8 80f98935 03 e201 4d
		      04 8d8edceb c353 04 c7e9d9f9 0015
		      b0e8b335 00 04 8d8edceb e7f2 04 c7e9d9f9 dd5b
		      04 52455452 09 616e6f6e796d6f7573 0a 726f626f74732e747874
		      21dc3929`,
	},
}

func TestGolden(t *testing.T) {
	b := NewBuilder(256)
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			b.Reset()
			got := g.build(b)
			want := unhex(t, g.hex)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("encoding changed:\n got %x\nwant %x", got, want)
			}
			f, err := Parse(want)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(&f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestGoldenDecode(t *testing.T) {
	var rec recorder
	h, err := Decode(unhex(t, golden[0].hex), &rec)
	if err != nil {
		t.Fatal(err)
	}
	want := goldenHeader
	want.Type = TypeSightings
	if h != want {
		t.Errorf("header = %+v, want %+v", h, want)
	}
	wantS := []Sighting{
		{Flow: 9, Sig: 0xdeadbeef, TS: 1_700_000_000_000_001_000, Size: 1500},
		{Flow: 9, Sig: 0x01020304, TS: 1_700_000_000_000_003_000, Size: 64},
		{Flow: 300, Sig: 0xcafebabe, TS: 1_700_000_000_000_002_999},
		{Flow: 9, Sig: 0x0a0b0c0d, TS: 1_700_000_000_000_010_000, Size: 40},
	}
	if !reflect.DeepEqual(rec.sightings, wantS) {
		t.Errorf("sightings = %+v\nwant %+v", rec.sightings, wantS)
	}

	rec = recorder{}
	if _, err := Decode(unhex(t, golden[1].hex), &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.defs) != 1 || rec.defs[0] != goldenFlowDef {
		t.Errorf("flowdefs = %+v", rec.defs)
	}

	rec = recorder{}
	if _, err := Decode(unhex(t, golden[2].hex), &rec); err != nil {
		t.Fatal(err)
	}
	if want := []Event{{TS: 1_700_000_000_000_000_000, Kind: "probe.start", Detail: "v1"}}; !reflect.DeepEqual(rec.events, want) {
		t.Errorf("events = %+v", rec.events)
	}

	f, err := Parse(unhex(t, golden[5].hex))
	if err != nil {
		t.Fatal(err)
	}
	if s, q, err := f.Ack(); err != nil || s != 0x01020304 || q != 5 {
		t.Errorf("Ack() = %#x, %d, %v", s, q, err)
	}
}

type recorder struct {
	defs      []FlowDef
	sightings []Sighting
	events    []Event
}

func (r *recorder) FlowDef(d *FlowDef) error   { r.defs = append(r.defs, *d); return nil }
func (r *recorder) Sighting(s *Sighting) error { r.sightings = append(r.sightings, *s); return nil }
func (r *recorder) Event(e *Event) error       { r.events = append(r.events, *e); return nil }

func TestParseErrors(t *testing.T) {
	valid := unhex(t, golden[0].hex)
	mod := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), valid...)
		return f(b)
	}
	resealed := func(f func(b []byte)) []byte {
		return mod(func(b []byte) []byte { f(b); seal(b); return b })
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"shorter than overhead", valid[:Overhead-1], ErrShort},
		{"truncated", valid[:len(valid)-1], ErrShort},
		{"trailing byte", append(append([]byte(nil), valid...), 0), ErrLength},
		{"magic", mod(func(b []byte) []byte { b[0] = 'x'; return b }), ErrMagic},
		{"version", mod(func(b []byte) []byte { b[2] = 2; return b }), ErrVersion},
		{"body length too large", mod(func(b []byte) []byte { b[offBodyLen] = 0xff; return b }), ErrShort},
		{"body length too small", mod(func(b []byte) []byte { b[offBodyLen+1]--; return b }), ErrLength},
		{"bit flip in body", mod(func(b []byte) []byte { b[HeaderSize+3] ^= 0x10; return b }), ErrCRC},
		{"bit flip in header", mod(func(b []byte) []byte { b[offSeq+3] ^= 1; return b }), ErrCRC},
		{"bit flip in CRC", mod(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrCRC},
		{"unknown type", resealed(func(b []byte) { b[3] = 200 }), ErrType},
		{"type zero", resealed(func(b []byte) { b[3] = 0 }), ErrType},
		{"reserved flags", resealed(func(b []byte) { b[offFlags] = 0x10 }), ErrMalformed},
		{"auth flag without trailer", resealed(func(b []byte) { b[offFlags] = 1 }), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err != tt.want {
				t.Fatalf("Parse() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAuthTrailerSeam(t *testing.T) {
	// A version-1 decoder locates an auth trailer and leaves its check to
	// the transport: the seam for HMAC.
	valid := unhex(t, golden[3].hex)
	b := append([]byte(nil), valid[:len(valid)-TrailerSize]...)
	b[offFlags] = 1
	b[offAuthLen] = 3
	b = append(b, 0xaa, 0xbb, 0xcc, 0, 0, 0, 0)
	seal(b)
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.AuthAlg != 1 || string(f.Auth) != "\xaa\xbb\xcc" || len(f.Signed) != HeaderSize || len(f.Body) != 0 {
		t.Fatalf("frame = %+v", f)
	}
	if err := Restamp(b, 1, 2, 3, 4); err == nil {
		t.Fatal("Restamp of an authenticated PDU succeeded")
	}
}

func TestRestamp(t *testing.T) {
	b := unhex(t, golden[0].hex)
	if err := Restamp(b, 9, 10, 11, 8); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{Type: TypeSightings, Probe: 9, Session: 10, Seq: 11, Floor: 8, ProbeTime: goldenHeader.ProbeTime}
	if f.Header != want {
		t.Fatalf("header = %+v, want %+v", f.Header, want)
	}
	if err := Restamp(b[:10], 1, 1, 1, 1); !errors.Is(err, ErrShort) {
		t.Fatalf("Restamp(short) = %v", err)
	}
}

func TestAckMismatch(t *testing.T) {
	b := AppendAck(nil, 7, 1, 2, 0)
	b[HeaderSize+7] = 3 // body copy says seq 3, header 2
	seal(b)
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Ack(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Ack() error = %v, want ErrMalformed", err)
	}
	if err := Validate(&f); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Validate() error = %v, want ErrMalformed", err)
	}
}

func TestBuilderMixPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("adding an event to a sightings PDU did not panic")
		}
	}()
	b := NewBuilder(MinPDUSize)
	b.AddSighting(1, 0, false, Sighting{})
	b.AddEvent(Event{})
}

func TestEmptyPDUs(t *testing.T) {
	b := NewBuilder(MinPDUSize)
	for _, typ := range []Type{TypeSightings, TypeFlowDef, TypeEvents, TypeHeartbeat, TypeBye} {
		b.Reset()
		p := b.Finish(Header{Type: typ})
		f, err := Parse(p)
		if err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		if f.Header.Type != typ {
			t.Fatalf("%v: type %v", typ, f.Header.Type)
		}
		if err := Validate(&f); err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
	}
}

// A bye is empty, or carries one flags byte: ByeContinues says a new
// session of the probe follows (a roll). Unknown flags and longer bodies
// are malformed, a plain bye is the golden one above byte for byte.
func TestByeContinues(t *testing.T) {
	h := Header{Type: TypeBye, Probe: 7, Session: 0x01020304, Seq: 6, Floor: 6, ProbeTime: goldenHeader.ProbeTime}
	if !bytes.Equal(AppendBye(nil, h, false), AppendControl(nil, h)) {
		t.Error("a plain bye differs from the control frame")
	}
	for _, tc := range []struct {
		body      []byte
		ok, conts bool
	}{
		{nil, true, false},
		{[]byte{ByeContinues}, true, true},
		{[]byte{0x02}, false, false},
		{[]byte{0x81}, false, false},
		{[]byte{ByeContinues, 0}, false, false},
	} {
		b := appendFrame(nil, h, tc.body)
		f, err := Parse(b)
		if err != nil {
			t.Fatalf("body %x: %v", tc.body, err)
		}
		err = Validate(&f)
		if (err == nil) != tc.ok || tc.ok && f.Continues() != tc.conts {
			t.Errorf("body %x: Validate %v, Continues %v; want ok %v, continues %v", tc.body, err, f.Continues(), tc.ok, tc.conts)
		}
		if !tc.ok && !errors.Is(err, ErrMalformed) {
			t.Errorf("body %x: %v, want ErrMalformed", tc.body, err)
		}
	}
	b := AppendBye(nil, h, true)
	f, err := Parse(b)
	if err != nil || Validate(&f) != nil || !f.Continues() || f.Header.Seq != 6 {
		t.Errorf("AppendBye(continues): %+v %v", f.Header, err)
	}
}
