package probe

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tmon-project/tmon/selection"

	"github.com/tmon-project/tmon/transport"
)

// Load shedding and backpressure (docs/transport.md, "Shedding").
//
// When the transport cannot carry the sightings — the PDUs waiting for
// their first send at the fastest collector pass SaturationFactor × Window
// — a live (or paced) probe cannot wait: the capture would overflow and
// lose packets at random, and the queue would grow without end. It sheds
// instead, by consistent hash (selection.Shed): one level deeper each time
// the backlog is high and still growing, half the packets fewer at each, one level back
// once it has stayed low for a while. Each change is an event
// (selection.EventShed) stamped with the capture time from which it holds,
// sent at once, so that the collector counts the other hops' sightings of
// the packets left out as dropped, never lost or missed. A full-speed replay has no such
// deadline: it waits for the backlog to drain instead (it is paced by the
// slowest stage), which also bounds its memory.

const (
	shedCheck      = 100 * time.Millisecond // how often the backlog is read
	shedDeeperWait = 500 * time.Millisecond // a level's effect shows before the next
	shedLowerAfter = 2 * time.Second        // backlog low this long: one level back
)

type shedder struct {
	backlog   func() int
	high, low int  // PDUs waiting: above high saturated; below low room again
	live      bool // live or paced: shed; full-speed replay: wait
	level     uint8
	last      int // backlog at the previous check
	checked   time.Time
	changed   time.Time
	lowSince  time.Time // zero while the backlog is not low
	log       *slog.Logger
	now       func() time.Time
	waitSleep time.Duration
}

func newShedder(backlog func() int, window int, live bool, log *slog.Logger) *shedder {
	return &shedder{backlog: backlog, high: transport.SaturationFactor * window, low: window, live: live, log: log, now: time.Now, waitSleep: time.Millisecond}
}

// check is called by the analyser loop after each batch; every packet
// captured before done has been analysed.
func (d *shedder) check(ctx context.Context, out *output, done int64) error {
	now := d.now()
	if now.Sub(d.checked) < shedCheck {
		return nil
	}
	d.checked = now
	b := d.backlog()
	if !d.live {
		for b > d.high {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d.waitSleep):
			}
			b = d.backlog()
		}
		return nil
	}
	if b >= d.low {
		d.lowSince = time.Time{}
	} else if d.lowSince.IsZero() {
		d.lowSince = now
	}
	growing := b >= d.last
	d.last = b
	switch {
	case b > d.high && growing && d.level < selection.MaxShedLevel && now.Sub(d.changed) >= shedDeeperWait:
		// Still growing: the level in force does not bring the sightings
		// under what the link carries. (Shrinking, it does: the backlog
		// drains at the difference; no need to shed more.)
		d.set(out, d.level+1, done, now, b)
	case d.level > 0 && !d.lowSince.IsZero() && now.Sub(d.lowSince) >= shedLowerAfter && now.Sub(d.changed) >= shedLowerAfter:
		d.set(out, d.level-1, done, now, b)
		d.lowSince = now
	}
	return nil
}

// end stops shedding at the end of the data.
func (d *shedder) end(out *output, done int64) {
	if d.level > 0 {
		d.set(out, 0, done, d.now(), d.backlog())
	}
}

func (d *shedder) set(out *output, level uint8, from int64, now time.Time, backlog int) {
	deeper := level > d.level
	d.level, d.changed = level, now
	out.shedLevel = level
	out.shedNow.Store(uint32(level))
	out.event(from, selection.EventShed, selection.ShedNotice(level, from))
	out.sendEvents()
	switch {
	case deeper:
		d.log.Warn("probe: transport saturated: shedding by consistent hash", "level", level, "keep", fmt.Sprintf("1/%d", 1<<level), "backlog_pdus", backlog)
	case level > 0:
		d.log.Info("probe: shedding less", "level", level, "keep", fmt.Sprintf("1/%d", 1<<level), "backlog_pdus", backlog)
	default:
		d.log.Info("probe: shedding ended: every packet sighted again", "shed_total", out.shed.Load())
	}
}

// shedSummary is the stop event's account of the sightings shed.
func shedSummary(n uint64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" shed=%d", n)
}
