package collector

import (
	"fmt"
	"time"

	"github.com/tmon-project/tmon/reconcile"
)

// recWatch remembers what the reconciler had counted at the last report,
// so that reportReconcile says what is new.
type recWatch struct {
	start int64 // interval of the last report
	last  reconcile.Counters
}

// reportReconcile writes, at most once per interval (and at the end),
// events for what the reconciler counted that an operator must know about:
// signature clashes (two packets of a flow with one signature: the
// collector told them apart by time), sightings that arrived after their
// interval was written (late), and records decided early because the
// reconciler's memory limit was reached (forced). Under c.mu.
func (c *Collector) reportReconcile(now time.Time, final bool) {
	start := now.UnixNano() - now.UnixNano()%int64(c.cfg.Interval)
	if !final && start == c.rw.start {
		return
	}
	c.rw.start = start
	k := c.recCounters()
	prev := c.rw.last
	c.rw.last = k
	for _, e := range []struct {
		kind     string
		n, total uint64
		what     string
	}{
		{"signature.clash", k.Clashes - prev.Clashes, k.Clashes, "packet records created beside another of the same flow and signature (told apart by time)"},
		{"reconcile.late", k.Late - prev.Late, k.Late, "sightings dropped: their interval was already written"},
		{"reconcile.forced", k.Forced - prev.Forced, k.Forced, "incomplete records decided early: the reconciler's record limit was reached"},
	} {
		if e.n == 0 {
			continue
		}
		detail := fmt.Sprintf("count=%d total=%d: %s", e.n, e.total, e.what)
		if e.kind != "signature.clash" {
			c.log.Warn("collector: "+detail, "kind", e.kind)
		}
		c.event(now, e.kind, detail)
	}
}

// thresholds evaluates the alarms on an interval just written (the
// reconciler's sink, under c.mu): each crossing or recovery becomes an event
// and a notification.
func (c *Collector) thresholds(iv *reconcile.Interval) {
	for _, n := range c.alarms.Interval(iv, time.Now()) {
		c.log.Warn("collector: "+n.Kind+": "+n.Detail(), "kind", n.Kind)
		c.event(n.Time, n.Kind, n.Detail())
		if !c.replaying {
			c.notifier.Notify(n)
		}
	}
}
