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

// A switch of configuration versions at T: the old version's reconciler
// (Ending gap) and the new one's (Prior gap) each see half of a packet in
// transit across T. The packet counts once, dropped, in the old version's
// interval (its hop_from time); the new version accounts for its sighting
// without counting the packet again. A packet lost on either side of T,
// and one missed, are lost and missed as usual.
func TestSwitchGaps(t *testing.T) {
	T := t0 + 1000*ms
	oldR, oldSink := newPath3(t)
	newR, newSink := newPath3(t)
	oldR.AddGap(Gap{Class: 1, Hops: 3, From: T, To: T, Ending: true})
	newR.AddGap(Gap{Class: 1, Hops: 3, From: T, To: T, Prior: true})
	// Flow 2 is class xy (X → Y).
	oldR.Add(Sighting{Flow: 2, Hop: 0, Sig: 1, TS: T - 5*ms}) // across: Y after T
	newR.Add(Sighting{Flow: 2, Hop: 1, Sig: 1, TS: T + 15*ms})
	oldR.Add(Sighting{Flow: 2, Hop: 1, Sig: 2, TS: T - 2*ms}) // missed: its X would be before T, in the old version
	newR.Add(Sighting{Flow: 2, Hop: 0, Sig: 3, TS: T + 5*ms}) // lost: its Y would be after T, in the new version
	for _, r := range []*Reconciler{oldR, newR} {
		if err := r.Advance(T + 3000*ms); err != nil {
			t.Fatal(err)
		}
	}
	before, after := oldSink.stat(t, T-1000*ms, 2, 0), newSink.stat(t, T, 2, 0)
	if before.Dropped != 1 || before.Missed != 1 || before.Lost != 0 {
		t.Errorf("old version: dropped/missed/lost %d/%d/%d, want 1/1/0", before.Dropped, before.Missed, before.Lost)
	}
	if after.Dropped != 0 || after.Lost != 1 || after.Missed != 0 {
		t.Errorf("new version: dropped/lost/missed %d/%d/%d, want 0/1/0", after.Dropped, after.Lost, after.Missed)
	}
	var acc Accounting
	for _, s := range []*collectSink{oldSink, newSink} {
		for _, iv := range s.ivs {
			if !iv.Accounting.Balanced() {
				t.Errorf("interval %d does not balance: %+v", iv.Start, iv.Accounting)
			}
			acc.Sightings += iv.Accounting.Sightings
			acc.Dropped += iv.Accounting.Dropped
		}
	}
	if acc.Sightings != 4 || acc.Dropped != 2 {
		t.Errorf("accounting over both versions: %+v, want 4 sightings, 2 of them dropped", acc)
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
