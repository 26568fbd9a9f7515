package collector

import (
	"sync"

	"github.com/tmon-project/tmon/reconcile"
)

// Reconciliation runs on a goroutine of its own while the collector
// listens (docs/transport.md, "Receiving"): reconciling is most of a
// collector's work, and on the receiving goroutine it left the second core
// to the probes alone. The receiving goroutine checks, decodes and
// journals each PDU as before, under c.mu, and hands the reconciler its
// part — the sightings mapped to collector flow ids, the watermarks to
// advance to, flows, gaps, shedding spans, clock records — through a
// bounded queue, in exactly the order in which the calls were made under
// c.mu. The reconciler therefore goes through the same states as if it
// were called directly, and as a restart's replay of the journal (which
// calls it directly) makes it go: what it decides and writes is the same.
//
// The order that must hold (TestCollectorKillPoints): a PDU's journal
// record is written before its ack leaves (unchanged: the ack waits for
// the journal's sync, not for the reconciler), and the reconciler sees
// the PDUs in journal order. Whether an interval's files were committed
// before or after some PDU's record does not matter to a restart: the
// replay rebuilds the reconciler from every PDU and skips the intervals
// whose commit record it finds (by their start). Flows and events rows,
// whose commit records do depend on their position, are still written by
// the receiving goroutine. The reconciling goroutine takes no c.mu: an
// interval it closes is written through the spool's lock and committed
// under the journal's. What needs the reconciler's state (a compaction's
// snapshot, the end) first waits until the queue is empty (recBarrier);
// the counters are published after each item.
//
// Memory: at most recQueueLen items wait, each one PDU's sightings; a
// full queue stops the receiving goroutine, so the socket buffer and the
// probes' ack windows hold the rest.

// recQueueLen bounds the items waiting for the reconciler: 256 PDUs of
// ≈ 220 sightings of 32 bytes, 1.8 MB, tens of milliseconds of work.
const recQueueLen = 256

// recItem is one call to the reconciler: Add of each sighting, or
// AdvanceProbes, or another call (fn), or a barrier (done).
type recItem struct {
	sights []reconcile.Sighting
	wm     []int64
	fn     func(*reconcile.Reconciler)
	done   chan struct{}
}

// recQueue feeds the reconciling goroutine.
type recQueue struct {
	ch     chan recItem
	sights chan []reconcile.Sighting // buffers given back, for reuse
	wms    chan []int64
	ended  chan struct{}

	mu sync.Mutex
	k  reconcile.Counters // after the last item handled
}

// startReconciling moves the reconciler to its own goroutine. c.mu is
// held, or nothing else runs yet.
func (c *Collector) startReconciling() {
	q := &recQueue{
		ch:     make(chan recItem, recQueueLen),
		sights: make(chan []reconcile.Sighting, recQueueLen+2),
		wms:    make(chan []int64, recQueueLen+2),
		ended:  make(chan struct{}),
		k:      c.rec.Counters(),
	}
	c.rq = q
	go c.reconciling(q)
}

// stopReconciling waits until the reconciler has done everything queued,
// then calls it directly again (under c.mu). c.mu is held.
func (c *Collector) stopReconciling() {
	if c.rq == nil {
		return
	}
	close(c.rq.ch)
	<-c.rq.ended
	c.rq = nil
}

// reconciling is the reconciler's goroutine.
func (c *Collector) reconciling(q *recQueue) {
	defer close(q.ended)
	for it := range q.ch {
		switch {
		case it.sights != nil:
			for i := range it.sights {
				c.rec.Add(it.sights[i])
			}
			select {
			case q.sights <- it.sights[:0]:
			default:
			}
		case it.wm != nil:
			if err := c.rec.AdvanceProbes(it.wm); err != nil {
				// The ticker's spoolHealth raises the events of a failing
				// spool; the interval is written again at the next advance.
				c.log.Debug("collector: spool write failed", "err", err)
			}
			select {
			case q.wms <- it.wm[:0]:
			default:
			}
		case it.fn != nil:
			it.fn(c.rec)
		}
		if it.done != nil {
			close(it.done)
		}
		k := c.rec.Counters()
		q.mu.Lock()
		q.k = k
		q.mu.Unlock()
	}
}

// recBarrier waits until the reconciler has done everything queued: its
// state is then the one the calls made so far under c.mu give. c.mu is
// held (nothing new is queued meanwhile).
func (c *Collector) recBarrier() {
	if c.rq == nil {
		return
	}
	done := make(chan struct{})
	c.rq.ch <- recItem{done: done}
	<-done
}

// recDo calls fn on the reconciler in its turn. c.mu is held.
func (c *Collector) recDo(fn func(*reconcile.Reconciler)) {
	if c.rq == nil {
		fn(c.rec)
		return
	}
	c.rq.ch <- recItem{fn: fn}
}

// sightBuf returns an empty buffer for a PDU's sightings. c.mu is held.
func (c *Collector) sightBuf() []reconcile.Sighting {
	if c.rq == nil {
		return c.sbuf[:0]
	}
	select {
	case b := <-c.rq.sights:
		return b
	default:
		return make([]reconcile.Sighting, 0, 256)
	}
}

// recAdd hands the reconciler a PDU's sightings (a buffer of sightBuf,
// which it takes). c.mu is held.
func (c *Collector) recAdd(b []reconcile.Sighting) {
	if c.rq == nil {
		for i := range b {
			c.rec.Add(b[i])
		}
		c.sbuf = b[:0]
		return
	}
	if len(b) == 0 {
		c.dropSightBuf(b)
		return
	}
	c.rq.ch <- recItem{sights: b}
}

// dropSightBuf gives back a buffer of sightBuf unused. c.mu is held.
func (c *Collector) dropSightBuf(b []reconcile.Sighting) {
	if c.rq == nil {
		c.sbuf = b[:0]
		return
	}
	select {
	case c.rq.sights <- b[:0]:
	default:
	}
}

// recAdvance has the reconciler advance to the probes' watermarks wm.
// c.mu is held.
func (c *Collector) recAdvance(wm []int64) {
	if c.rq == nil {
		c.spoolHealth(c.rec.AdvanceProbes(wm))
		return
	}
	var b []int64
	select {
	case b = <-c.rq.wms:
	default:
	}
	c.rq.ch <- recItem{wm: append(b, wm...)}
}

// recCounters returns the reconciler's counters, as of the last item it
// handled. c.mu is held.
func (c *Collector) recCounters() reconcile.Counters {
	if c.rq == nil {
		return c.rec.Counters()
	}
	c.rq.mu.Lock()
	defer c.rq.mu.Unlock()
	return c.rq.k
}
