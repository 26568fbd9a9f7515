package pdu

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/tmon-project/tmon/flow"
)

func randomKey(rng *rand.Rand) flow.Key {
	var k flow.Key
	k.Class = uint16(rng.Uint32())
	for _, f := range flow.Fields() {
		if rng.IntN(3) == 0 {
			k.Fields = k.Fields.With(f)
		}
	}
	addr := func() netip.Addr {
		switch rng.IntN(4) {
		case 0:
			return netip.Addr{} // granular but unknown
		case 1:
			var a [16]byte
			for i := range a {
				a[i] = byte(rng.Uint32())
			}
			return netip.AddrFrom16(a)
		}
		return netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), 1, 2})
	}
	for _, f := range keyFields {
		if !k.Fields.Has(f) {
			continue
		}
		switch f {
		case flow.Src:
			k.Src = addr()
		case flow.Dst:
			k.Dst = addr()
		default:
			setKeyValue(&k, f, rng.Uint32N(f.Max()+1))
		}
	}
	return k
}

func TestFlowDefRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	b := NewBuilder(MinPDUSize)
	var pending []FlowDef
	check := func() {
		p := b.Finish(Header{})
		var rec recorder
		if _, err := Decode(p, &rec); err != nil {
			t.Fatal(err)
		}
		if len(rec.defs) != len(pending) {
			t.Fatalf("decoded %d definitions, want %d", len(rec.defs), len(pending))
		}
		for i := range pending {
			if rec.defs[i] != pending[i] {
				t.Fatalf("definition %d:\n got %+v\nwant %+v", i, rec.defs[i], pending[i])
			}
		}
		pending = pending[:0]
		b.Reset()
	}
	for range 3000 {
		d := FlowDef{ID: rng.Uint32() >> rng.IntN(32), Iface: uint8(rng.Uint32()), Key: randomKey(rng)}
		if !b.AddFlowDef(d) {
			check()
			if !b.AddFlowDef(d) {
				t.Fatalf("empty PDU refused %+v", d)
			}
		}
		pending = append(pending, d)
	}
	check()
}

func TestFlowDefDropsZoneAndNonGranular(t *testing.T) {
	k := flow.Key{Fields: flow.Set(0).With(flow.Src).With(flow.TTL), Src: netip.MustParseAddr("fe80::1%eth0"), DstPort: 80}
	b := NewBuilder(MinPDUSize)
	b.AddFlowDef(FlowDef{ID: 1, Key: k})
	var rec recorder
	if _, err := Decode(b.Finish(Header{}), &rec); err != nil {
		t.Fatal(err)
	}
	want := flow.Key{Fields: k.Fields, Src: netip.MustParseAddr("fe80::1")}
	if rec.defs[0].Key != want {
		t.Fatalf("key = %v, want %v", rec.defs[0].Key, want)
	}
}

func TestFlowDefMalformed(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"truncated id", []byte{0x80}},
		{"no interface", []byte{1}},
		{"class above 16 bits", []byte{1, 0, 0x80, 0x80, 0x04}},
		{"unknown field bit", []byte{1, 0, 0, 0x01, 0}},
		{"field above known", []byte{1, 0, 0, 0x80, 0x80, 0x80, 0x01, 0}},
		{"no families", []byte{1, 0, 0, 0}},
		{"family without field", []byte{1, 0, 0, 0, 0x01}},
		{"family 3", []byte{1, 0, 0, 0x04, 0x03}},
		{"reserved family bits", []byte{1, 0, 0, 0, 0x10}},
		{"truncated address", []byte{1, 0, 0, 0x04, 0x01, 10, 0}},
		{"truncated port", []byte{1, 0, 0, 0x80, 0x20, 0x00, 0}},
		{"DSCP out of range", []byte{1, 0, 0, 0x20, 0, 64}},
		{"VLAN out of range", []byte{1, 0, 0, 0x80, 0x80, 0x02, 0, 0x10, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r FlowDefReader
			var d FlowDef
			r.Reset(tt.body)
			for r.Next(&d) {
			}
			if !errors.Is(r.Err(), ErrMalformed) {
				t.Fatalf("Err() = %v, want ErrMalformed", r.Err())
			}
		})
	}
}

func TestFlowDefNoAlloc(t *testing.T) {
	b := NewBuilder(1400)
	d := goldenFlowDef
	allocs := testing.AllocsPerRun(100, func() {
		b.Reset()
		for b.AddFlowDef(d) {
		}
		p := b.Finish(Header{})
		f, _ := Parse(p)
		var r FlowDefReader
		r.Reset(f.Body)
		for r.Next(&d) {
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocs per PDU, want 0", allocs)
	}
}
