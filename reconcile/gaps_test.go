package reconcile

import "testing"

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
