package probe

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/selection"
)

// pduLog keeps the PDUs an output sends.
type pduLog struct{ pdus [][]byte }

func (l *pduLog) Send(b []byte) (uint32, error) {
	l.pdus = append(l.pdus, append([]byte(nil), b...))
	return uint32(len(l.pdus)), nil
}

// notices returns the shedding notices in the events PDUs sent so far.
func (l *pduLog) notices(t *testing.T) []string {
	var out []string
	for _, b := range l.pdus {
		f, err := pdu.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if f.Header.Type != pdu.TypeEvents {
			continue
		}
		var r pdu.EventReader
		var e pdu.Event
		r.Reset(f.Body)
		for r.Next(&e) {
			if e.Kind == selection.EventShed {
				out = append(out, e.Detail)
			}
		}
	}
	return out
}

// A live probe sheds one level deeper each time the backlog is above
// SaturationFactor × Window and not shrinking (at most every 500 ms, down
// to 1 in 64), sends
// each change at once with the capture time it holds from, leaves out the
// sightings of exactly the packets selection.Shed names, and comes back one
// level at a time once the backlog has stayed below the window for 2 s.
func TestShedderLive(t *testing.T) {
	var backlog atomic.Int64
	now := time.Unix(1000, 0)
	log := &pduLog{}
	out := newOutput(1400)
	out.sender = log
	d := newShedder(func() int { return int(backlog.Load()) }, 64, true, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.now = func() time.Time { return now }
	step := func(dt time.Duration, done int64) {
		now = now.Add(dt)
		if err := d.check(context.Background(), out, done); err != nil {
			t.Fatal(err)
		}
	}
	backlog.Store(257) // above 4 × 64
	step(time.Second, 1)
	if d.level != 1 {
		t.Fatalf("level %d after a saturated check, want 1", d.level)
	}
	step(200*time.Millisecond, 2) // too soon for the next level
	if d.level != 1 {
		t.Fatalf("level %d 200 ms later, want still 1", d.level)
	}
	backlog.Store(400)
	step(600*time.Millisecond, 3)
	backlog.Store(300) // high but shrinking: the level in force is enough
	step(600*time.Millisecond, 4)
	if d.level != 2 {
		t.Fatalf("level %d after a growing then a shrinking backlog, want 2", d.level)
	}
	for i := range 20 {
		step(500*time.Millisecond, int64(5+i))
	}
	if d.level != selection.MaxShedLevel {
		t.Fatalf("level %d after 10 s saturated, want %d", d.level, selection.MaxShedLevel)
	}
	// Sightings: exactly those Shed keeps at this level go into PDUs.
	kept := 0
	for sig := range uint32(4096) {
		out.Sighting(pdu.Sighting{Flow: 0, Sig: sig, TS: 100}, 0, false)
		if !selection.Shed(sig, d.level) {
			kept++
		}
	}
	if got := out.shed.Load(); int(got) != 4096-kept || kept == 0 {
		t.Fatalf("shed %d, want %d (kept %d)", got, 4096-kept, kept)
	}
	// Backlog between the window and saturation: stay.
	backlog.Store(100)
	step(5*time.Second, 50)
	if d.level != selection.MaxShedLevel {
		t.Fatalf("level %d with a backlog between window and saturation, want unchanged", d.level)
	}
	// Low: one level back every 2 s.
	backlog.Store(10)
	step(100*time.Millisecond, 60)
	for d.level > 0 {
		before := d.level
		step(time.Second, 70)
		step(time.Second, 80)
		if d.level != before-1 {
			t.Fatalf("level %d two seconds after %d with a low backlog, want %d", d.level, before, before-1)
		}
	}
	n := log.notices(t)
	want := []string{selection.ShedNotice(1, 1)}
	if len(n) != 2*selection.MaxShedLevel || n[0] != want[0] || n[len(n)-1] != selection.ShedNotice(0, 80) {
		t.Fatalf("notices %q: want %d, the first %q, the last %q", n, 2*selection.MaxShedLevel, want[0], selection.ShedNotice(0, 80))
	}
	for _, x := range n {
		if _, _, err := selection.ParseShedNotice(x); err != nil {
			t.Error(err)
		}
	}
}

// A full-speed replay never sheds: it waits until the backlog is back
// under saturation.
func TestShedderReplayWaits(t *testing.T) {
	var backlog atomic.Int64
	backlog.Store(1000)
	out := newOutput(1400)
	out.sender = &pduLog{}
	d := newShedder(func() int { return int(backlog.Load()) }, 64, false, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan error, 1)
	go func() { done <- d.check(context.Background(), out, 1) }()
	select {
	case err := <-done:
		t.Fatalf("check returned (%v) while the backlog is 1000", err)
	case <-time.After(50 * time.Millisecond):
	}
	backlog.Store(200)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d.level != 0 || out.shed.Load() != 0 {
		t.Fatalf("a replay shed: level %d, %d sightings", d.level, out.shed.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	backlog.Store(1000)
	d.checked = time.Time{}
	go func() { done <- d.check(ctx, out, 2) }()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("check with a cancelled context: %v", err)
	}
}
