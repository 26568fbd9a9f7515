package reconcile

// Watermarks: deciding old records and closing intervals in time order.
// Split from reconcile.go.

import (
	"fmt"
	"math"
	"time"
)

// Advance declares that every sighting before watermark (ns, data time) has
// been delivered: records whose earliest time is older than watermark minus
// their class's Timeout are classified lost or missed, and slots whose end
// is more than the largest Timeout before the watermark are closed and
// written to the Sink in time order. A watermark not above the previous one
// changes nothing. The error is the Sink's; the slot that failed and the
// later ones stay open and are offered again at the next call.
func (r *Reconciler) Advance(watermark int64) error {
	if watermark <= r.wm {
		return nil
	}
	for i := range r.classes {
		r.expireClass(&r.classes[i], watermark)
	}
	return r.advanceTo(watermark)
}

// AdvanceProbes is Advance with a watermark per probe: wm[p] is the time
// before which probe p (index into Config.Probes) has delivered every
// sighting. A class waits only for the probes observing its hops: its
// records are decided once the least of their watermarks has passed; the
// slots close once every class has passed them. A probe that is not waited
// for (it said goodbye, or was given up) should be given a watermark past
// every sighting seen.
func (r *Reconciler) AdvanceProbes(wm []int64) error {
	global := int64(math.MaxInt64)
	for i := range r.classes {
		c := &r.classes[i]
		if c.index < 0 {
			continue
		}
		cw := int64(math.MaxInt64)
		for h := range c.nhops {
			for _, p := range c.probes[h] {
				if p >= 0 && p < len(wm) {
					cw = min(cw, wm[p])
				}
			}
		}
		if cw == math.MaxInt64 {
			continue // no probe observes it: nothing to wait for
		}
		r.expireClass(c, cw)
		global = min(global, cw)
	}
	if global == math.MaxInt64 || global <= r.wm {
		return nil
	}
	return r.advanceTo(global)
}

// expireClass decides the records of class c whose deadline is before w.
func (r *Reconciler) expireClass(c *class, w int64) {
	for c.heap.len() > 0 && c.heap.topDeadline() < w {
		r.expire(c.heap.top())
	}
}

// advanceTo moves the watermark of every class to watermark (above the
// current one) and closes the slots no record can reach any more.
func (r *Reconciler) advanceTo(watermark int64) error {
	r.wm = watermark
	r.pruneGaps()
	r.sweepRecent()
	if r.clk.bound != nil && (watermark-r.clk.at >= tolRefresh || watermark-r.clk.at < 0) {
		r.refreshTol()
	}
	// Nothing can land in a slot any more once every record that could
	// reach into it has expired: slot end + max timeout < watermark.
	// Slot n ends at (n+1)·interval; it closes when that is at most
	// watermark − maxTimeout − 1.
	var limit int64 = math.MinInt64
	if watermark > math.MinInt64+r.maxTimeout+2*r.interval {
		limit = floorDiv(watermark-r.maxTimeout-1, r.interval) - 1
	}
	return r.closeThrough(limit)
}

// Flush ends the data: it classifies every live record as lost or missed
// and closes every slot. Later sightings are counted late.
func (r *Reconciler) Flush() error {
	for i := range r.classes {
		r.expireClass(&r.classes[i], math.MaxInt64)
	}
	r.wm = math.MaxInt64
	return r.closeThrough(math.MaxInt64)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (r *Reconciler) slotOf(t int64) int64 { return floorDiv(t, r.interval) }

// closeThrough writes and recycles every open slot numbered ≤ last.
func (r *Reconciler) closeThrough(last int64) error {
	for len(r.slots.open) > 0 && r.slots.open[0].n <= last {
		sl := r.slots.open[0]
		r.finish(sl)
		if err := r.sink.WriteInterval(&sl.iv); err != nil {
			return fmt.Errorf("reconcile: close interval %s: %w", time.Unix(0, sl.iv.Start).UTC().Format(time.RFC3339), err)
		}
		r.c.Intervals++
		if r.last == sl {
			r.last = nil
		}
		sl.release(&r.chunks)
		r.slots.pop()
		r.closed = sl.n + 1
	}
	if last != math.MaxInt64 && last+1 > r.closed {
		r.closed = last + 1
	}
	return nil
}
