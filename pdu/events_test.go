package pdu

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestEventsRoundTrip(t *testing.T) {
	b := NewBuilder(MinPDUSize)
	in := []Event{
		{TS: 1, Kind: "a", Detail: ""},
		{TS: -5, Kind: "", Detail: "x"},
		{TS: 1 << 62, Kind: "capture.drops", Detail: "eth0: 12 drops"},
	}
	for _, e := range in {
		if !b.AddEvent(e) {
			t.Fatalf("AddEvent(%+v) refused", e)
		}
	}
	var rec recorder
	if _, err := Decode(b.Finish(Header{}), &rec); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rec.events, in) {
		t.Fatalf("got %+v\nwant %+v", rec.events, in)
	}
}

// Too long a kind or detail is cut so that an empty PDU always takes the
// event: a caller that retries after Finish never loops.
func TestEventCut(t *testing.T) {
	for _, size := range []int{MinPDUSize, 1400} {
		b := NewBuilder(size)
		e := Event{TS: 7, Kind: strings.Repeat("k", 300), Detail: strings.Repeat("d", 70000)}
		if !b.AddEvent(e) {
			t.Fatalf("size %d: empty PDU refused a long event", size)
		}
		if b.Size() > size {
			t.Fatalf("size %d: PDU grew to %d", size, b.Size())
		}
		if b.AddEvent(Event{Kind: "x"}) {
			t.Fatalf("size %d: full PDU took another event", size)
		}
		var rec recorder
		if _, err := Decode(b.Finish(Header{}), &rec); err != nil {
			t.Fatal(err)
		}
		got := rec.events[0]
		if !strings.HasPrefix(e.Kind, got.Kind) || !strings.HasPrefix(e.Detail, got.Detail) || len(got.Detail) == 0 {
			t.Fatalf("size %d: cut event %d/%d bytes", size, len(got.Kind), len(got.Detail))
		}
	}
}

func TestEventsMalformed(t *testing.T) {
	for name, body := range map[string][]byte{
		"truncated time":   {0, 0, 0},
		"truncated kind":   {0, 0, 0, 0, 0, 0, 0, 0, 5, 'a'},
		"no detail length": {0, 0, 0, 0, 0, 0, 0, 0, 0},
		"detail too long":  {0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 'a'},
		"detail overflow":  {0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		var r EventReader
		var e Event
		r.Reset(body)
		for r.Next(&e) {
		}
		if !errors.Is(r.Err(), ErrMalformed) {
			t.Errorf("%s: Err() = %v, want ErrMalformed", name, r.Err())
		}
	}
}
