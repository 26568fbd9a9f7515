package collector

import (
	"fmt"
	"sync"
	"time"

	"github.com/tmon-project/tmon/clock"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/reconcile"
	"github.com/tmon-project/tmon/spool"
)

// clocks keeps each probe's latest clock record (clock PDUs) for the error
// bound of owd_stats. It has its own lock: the spool reads it while it
// writes an interval, which happens under the collector's lock.
type clocks struct {
	mu sync.Mutex
	m  map[int]pdu.Clock // probe index → latest record
}

// set keeps c when it is newer than the record held for probe.
func (k *clocks) set(probe int, c pdu.Clock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = make(map[int]pdu.Clock)
	}
	if old, ok := k.m[probe]; !ok || c.TS >= old.TS {
		k.m[probe] = c
	}
}

// state is the spool's view of a probe's clock.
func (k *clocks) state(probe int) spool.ClockState {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.m[probe]
	if !ok {
		return spool.ClockState{}
	}
	return spool.ClockState{Known: true, Synced: c.Synced, Bound: clock.Bound(c)}
}

// bound is the reconciler's view of a probe's clock (reconcile.ClockBound):
// its error bound, known when a record has arrived and the clock was
// synchronised.
func (k *clocks) bound(probe int) (int64, bool) {
	st := k.state(probe)
	return st.Bound, st.Known && st.Synced
}

// clockPDU takes the clock records of a probe.
func (c *Collector) clockPDU(s *session, body []byte) error {
	var r pdu.ClockReader
	var k pdu.Clock
	r.Reset(body)
	for r.Next(&k) {
		// In the reconciler's turn: it and the spool read the clocks
		// when they close an interval, which must see the records
		// handled before, not after.
		pi, k := s.probe, k
		c.recDo(func(*reconcile.Reconciler) { c.clk.set(pi, k) })
		c.log.Debug("probe clock", "probe", s.name, "synced", k.Synced, "assumed", k.Assumed,
			"offset", time.Duration(k.Offset), "root_distance", time.Duration(k.RootDistance), "stratum", k.Stratum, "server", k.Server)
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("collector: probe %s: %w", s.name, err)
	}
	return nil
}

// latest returns the probe's latest clock record.
func (k *clocks) latest(probe int) (pdu.Clock, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.m[probe]
	return c, ok
}
