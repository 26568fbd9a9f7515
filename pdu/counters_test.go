package pdu

import (
	"errors"
	"reflect"
	"testing"
)

func TestCountersRoundTrip(t *testing.T) {
	b := NewBuilder(MinPDUSize)
	in := []Counters{goldenCounters, {Flow: 1<<32 - 1, Start: -60e9, ICMPErrors: 7}, {Flow: 0, Start: 0, Packets: 1, Bytes: 65535, SizeSumSq: 65535 * 65535, SizeMin: 65535, SizeMax: 65535}}
	var added []Counters
	for _, c := range in {
		if !b.AddCounters(c) {
			break
		}
		added = append(added, c)
	}
	f, err := Parse(b.Finish(goldenHeader))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(&f); err != nil {
		t.Fatal(err)
	}
	var r CountersReader
	var c Counters
	r.Reset(f.Body)
	var got []Counters
	for r.Next(&c) {
		got = append(got, c)
	}
	if r.Err() != nil || len(got) != len(added) || len(added) < 2 {
		t.Fatalf("decoded %d of %d records, err %v", len(got), len(added), r.Err())
	}
	for i := range got {
		if got[i] != added[i] {
			t.Errorf("record %d: %+v became %+v", i, added[i], got[i])
		}
	}
	// A full PDU refuses the record and stays unchanged.
	for b.AddCounters(goldenCounters) {
	}
	n := b.Len()
	if b.AddCounters(goldenCounters) || b.Len() != n {
		t.Errorf("a full PDU took a record")
	}
}

// Records that cannot be true are malformed: more fragments than packets
// can be made of (255 each),
// sizes without packets, min above max, a truncated record.
func TestCountersMalformed(t *testing.T) {
	for name, c := range map[string]Counters{
		"fragments": {Flow: 1, Packets: 1, Fragments: 256, Bytes: 40, SizeSumSq: 1600, SizeMin: 40, SizeMax: 40},
		"sizes":     {Flow: 1, Bytes: 40},
		"minmax":    {Flow: 1, Packets: 2, Bytes: 80, SizeSumSq: 3200, SizeMin: 50, SizeMax: 30},
	} {
		var w recBuf
		w.uvarint(uint64(c.Flow))
		w.fixed64(c.Start)
		for _, v := range []uint64{c.Packets, c.Bytes, c.Fragments, c.ICMPErrors, c.SizeSumSq, uint64(c.SizeMin), uint64(c.SizeMax)} {
			w.uvarint(v)
		}
		var r CountersReader
		var x Counters
		r.Reset(w.b[:w.n])
		if r.Next(&x) || !errors.Is(r.Err(), ErrMalformed) {
			t.Errorf("%s: accepted (err %v)", name, r.Err())
		}
		r.Reset(w.b[:w.n-1])
		if r.Next(&x) || !errors.Is(r.Err(), ErrMalformed) {
			t.Errorf("%s truncated: accepted (err %v)", name, r.Err())
		}
	}
}

func TestAddCountersAllocs(t *testing.T) {
	b := NewBuilder(1400)
	if n := testing.AllocsPerRun(1000, func() {
		if !b.AddCounters(goldenCounters) {
			b.Reset()
		}
	}); n != 0 {
		t.Errorf("AddCounters: %.1f allocs", n)
	}
}

// Sightings of reassembled datagrams carry their span (docs/pdu.md, the L
// bit of a declaration): a flow's sightings with and without a span are
// two declarations of one flow, and each decodes as it was added.
func TestSightingSpan(t *testing.T) {
	b := NewBuilder(512)
	in := []Sighting{
		{Flow: 9, Sig: 1, TS: 1_000_000, Size: 1500},
		{Flow: 9, Sig: 2, TS: 1_000_050, Size: 3028, Span: 24_000},
		{Flow: 9, Sig: 3, TS: 1_000_100, Size: 40},
		{Flow: 9, Sig: 4, TS: 1_000_200, Size: 2000, Span: 1<<32 - 1},
	}
	for _, s := range in {
		if !b.AddSighting(s.Flow, 0, true, s) {
			t.Fatal("does not fit")
		}
	}
	f, err := Parse(b.Finish(goldenHeader))
	if err != nil {
		t.Fatal(err)
	}
	var r SightingReader
	var s Sighting
	r.Reset(f.Body)
	for i := range in {
		if !r.Next(&s) || s != in[i] {
			t.Fatalf("sighting %d: %+v, want %+v (err %v)", i, s, in[i], r.Err())
		}
	}
	if r.Next(&s) || r.Err() != nil {
		t.Errorf("trailing sighting or error %v", r.Err())
	}
}

// goldenRTT: flow 9, DNS, in the minute starting 1 699 999 980 s: two
// responses after 1 ms and 3 ms (sum 4 000 000 ns, sum of squares 10¹³),
// one query unanswered; hist.Key(10⁶) = 954, hist.Key(3·10⁶) = 1051.
var goldenRTT = RTT{Flow: 9, Start: 1_699_999_980_000_000_000, Kind: RTTDNS, Count: 2, Unanswered: 1, Sum: 4_000_000,
	SumSqLo: 10_000_000_000_000, Min: 1_000_000, Max: 3_000_000, Hist: []Bucket{{Key: 954, Count: 1}, {Key: 1051, Count: 1}}}

func TestRTTRoundTrip(t *testing.T) {
	b := NewBuilder(512)
	big := RTT{Flow: 3, Start: 60e9, Kind: RTTTCPSyn, Count: MaxRTTBuckets, Sum: 1, Max: 1, SumSqHi: 5, SumSqLo: 7}
	for i := range MaxRTTBuckets {
		big.Hist = append(big.Hist, Bucket{Key: int32(i*100 - 3000), Count: 1})
	}
	in := []RTT{goldenRTT, {Flow: 4, Start: 0, Kind: RTTEcho, Unanswered: 9}, big,
		{Flow: 5, Start: 60e9, Kind: RTTTCPTS, Count: 1, Sum: 3000, SumSqLo: 9e6, Min: 3000, Max: 3000, Hist: []Bucket{{Key: 700, Count: 1}}}}
	for i := range in {
		if !b.AddRTT(&in[i]) {
			t.Fatalf("record %d does not fit", i)
		}
	}
	f, err := Parse(b.Finish(goldenHeader))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(&f); err != nil {
		t.Fatal(err)
	}
	var r RTTReader
	var x RTT
	r.Reset(f.Body)
	for i := range in {
		if !r.Next(&x) || len(x.Hist) != len(in[i].Hist) || len(x.Hist) > 0 && !reflect.DeepEqual(x.Hist, in[i].Hist) {
			t.Fatalf("record %d: %+v, want %+v (err %v)", i, x, in[i], r.Err())
		}
		x2, w := x, in[i]
		x2.Hist, w.Hist = nil, nil
		if !reflect.DeepEqual(x2, w) {
			t.Fatalf("record %d: %+v, want %+v", i, x2, w)
		}
	}
	big.Hist = append(big.Hist, Bucket{Key: 1, Count: 1})
	if b.AddRTT(&big) {
		t.Error("a record of more than MaxRTTBuckets buckets was taken")
	}
}

// A kind past the last one defined (RTTTCPTS) is refused by the decoder.
func TestRTTUnknownKind(t *testing.T) {
	b := NewBuilder(512)
	x := RTT{Flow: 1, Start: 60e9, Kind: RTTTCPTS + 1, Unanswered: 1}
	if !b.AddRTT(&x) {
		t.Fatal("record does not fit")
	}
	f, err := Parse(b.Finish(goldenHeader))
	if err == nil {
		err = Validate(&f)
	}
	if err == nil {
		var r RTTReader
		var y RTT
		r.Reset(f.Body)
		for r.Next(&y) {
		}
		err = r.Err()
	}
	if err == nil {
		t.Errorf("kind %d accepted", RTTTCPTS+1)
	}
}
