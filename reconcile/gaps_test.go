package reconcile

import (
	"math"
	"testing"

	"github.com/tmon-project/tmon/selection"
)

// A record that lacks only the hops of a given-up span is dropped, not lost
// or missed; one outside the span, or lacking another hop too, is not.
func TestGapDropped(t *testing.T) {
	r, sink := newPath3(t)
	if err := r.AddFlow(1, 1); err != nil {
		t.Fatal(err)
	}
	// Probe at Y gave up its sightings of t0+100ms..t0+200ms.
	r.AddGap(Gap{Class: 1, Hops: 1 << 1, From: t0 + 100*ms, To: t0 + 200*ms})
	r.Add(Sighting{Flow: 1, Hop: 0, Sig: 1, TS: t0 + 150*ms}) // in the gap: dropped
	r.Add(Sighting{Flow: 1, Hop: 0, Sig: 2, TS: t0 + 600*ms}) // outside: lost
	r.Add(Sighting{Flow: 1, Hop: 1, Sig: 3, TS: t0 + 160*ms}) // lacks X, not in the gap: missed
	if err := r.Advance(t0 + 3000*ms); err != nil {
		t.Fatal(err)
	}
	st := sink.stat(t, t0, 1, 0)
	if st.Dropped != 1 || st.Lost != 1 || st.Missed != 1 {
		t.Fatalf("dropped/lost/missed = %d/%d/%d, want 1/1/1", st.Dropped, st.Lost, st.Missed)
	}
	if c := r.Counters(); c.Dropped != 1 || c.Lost != 1 || c.Missed != 1 {
		t.Fatalf("counters %+v", c)
	}
	if len(r.gaps.list) != 0 {
		t.Fatalf("gap kept after the watermark passed it: %+v", r.gaps.list)
	}
}

// A shedding gap covers only the packets the shedding probe left out
// (selection.Shed at its level): of packets seen at X alone while the probe
// at Y shed at level 1, those whose hash Y shed are dropped, the others
// lost. SetShed replaces the probe's spans (its notices arrive in any
// order); an open span covers until it is closed.
func TestShedGap(t *testing.T) {
	r, sink := newPath3(t)
	if err := r.AddFlow(1, 1); err != nil {
		t.Fatal(err)
	}
	r.SetShed(7, []Gap{{Class: 1, Hops: 1 << 1, From: t0, To: math.MaxInt64, Shed: 1}})
	r.SetShed(7, []Gap{{Class: 1, Hops: 1 << 1, From: t0, To: t0 + 500*ms, Shed: 1}}) // closed
	var shed, kept, after int
	for i := range uint32(200) {
		ts := t0 + int64(i)*ms
		if i >= 100 {
			ts = t0 + 1200*ms + int64(i)*ms // past the span and its maximum transit
		}
		r.Add(Sighting{Flow: 1, Hop: 0, Sig: i, TS: ts})
		switch {
		case i >= 100:
			after++
		case selection.Shed(i, 1):
			shed++
		default:
			kept++
		}
	}
	if err := r.Advance(t0 + 5000*ms); err != nil {
		t.Fatal(err)
	}
	c := r.Counters()
	if int(c.Dropped) != shed || int(c.Lost) != kept+after || shed == 0 || kept == 0 {
		t.Fatalf("dropped %d lost %d; want %d shed dropped, %d lost (%d kept in the span, %d after it)", c.Dropped, c.Lost, shed, kept+after, kept, after)
	}
	var dropped uint64
	for _, iv := range sink.ivs {
		for _, st := range iv.Stats {
			dropped += st.Dropped
		}
	}
	if int(dropped) != shed {
		t.Fatalf("intervals hold %d dropped, want %d", dropped, shed)
	}
}
