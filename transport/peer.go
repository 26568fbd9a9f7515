package transport

// The sender's side of one collector: its queue, timers, window, acks and
// long-retry mode (docs/transport.md). Split from sender.go by concern.

import (
	"container/heap"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/tmon-project/tmon/pdu"
)

// entry is one PDU outstanding at one collector.
type entry struct {
	Pending
	pk   *packet
	due  time.Time // ack timeout expiry, while in the heap
	hidx int       // index in peer.heap, -1 when not there
	done bool      // acked or given up; waits in peer.order to be recycled
	// ghost: given up, but its notice not yet acked by the collector: it
	// holds the floor down, so that the collector learns which sightings
	// were given up before its watermark passes them.
	ghost  bool
	covers []*entry // of a notice: the ghosts it announces
	fast   bool     // retried early once already, later PDUs being acked (fast retransmit)
}

// peer is the sending state for one collector.
type peer struct {
	s      *Sender
	idx    int
	addr   netip.AddrPort
	conn   *net.UDPConn
	policy Policy
	wake   chan struct{}
	log    *slog.Logger

	mu       sync.Mutex
	queue    fifo              // not yet sent, in seq order
	order    fifo              // every outstanding entry (and done ones not yet recycled), in seq order
	pending  map[uint32]*entry // sent, awaiting ack
	timers   entryHeap         // pending, by due
	free     []*entry
	assigned uint32 // highest seq enqueued
	lastSend time.Time
	nextFree time.Time // bandwidth cap: the next send may not leave before
	notify   bool      // a PDU was given up: send a heartbeat with the new floor
	long     bool      // long-retry mode as last reported
	sat      bool      // saturated as last reported
	notices  []pdu.Event
	gaveUp   []givenUp
	ghosts   []*entry // given up, not yet covered by a notice
	stats    CollectorStats

	scratch []byte      // datagram being sent; run's goroutine only
	signer  *pdu.Signer // run's goroutine only; nil without key
}

// givenUp is one PDU given up, for the notice to the collector.
type givenUp struct {
	seq       uint32
	typ       pdu.Type
	sightings int
	from, to  int64 // capture times of its first and last sightings
}

func newPeer(s *Sender, idx int, addr netip.AddrPort, conn *net.UDPConn, pol Policy) *peer {
	p := &peer{
		s: s, idx: idx, addr: addr, conn: conn, policy: pol,
		wake:    make(chan struct{}, 1),
		log:     s.log.With("collector", addr),
		pending: make(map[uint32]*entry),
		stats:   CollectorStats{Collector: addr},
		scratch: make([]byte, 0, s.cfg.MaxPDUSize+pdu.AuthSize),
	}
	if s.key != nil {
		p.signer = pdu.NewSigner(s.key)
	}
	return p
}

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *peer) enqueue(pk *packet, seq uint32, h pdu.Header, now time.Time, covers []*entry) {
	p.mu.Lock()
	p.reclaim()
	var e *entry
	if n := len(p.free); n > 0 {
		e = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		e = new(entry)
	}
	*e = entry{Pending: Pending{Seq: seq, Type: h.Type, ProbeTime: h.ProbeTime, Submitted: now}, pk: pk, hidx: -1, covers: covers}
	p.queue.push(e)
	p.order.push(e)
	p.assigned = seq
	p.mu.Unlock()
	p.signal()
}

// reclaim recycles the settled entries at the front of p.order; p.mu is
// held.
func (p *peer) reclaim() {
	for p.order.len() > 0 && p.order.peek().done {
		e := p.order.pop()
		e.pk = nil
		p.free = append(p.free, e)
	}
}

// floor returns the lowest seq not yet acked nor given up; p.mu is held.
func (p *peer) floor() uint32 {
	p.reclaim()
	if p.order.len() > 0 {
		return p.order.peek().Seq
	}
	return p.assigned + 1
}

// windowBase returns the lowest seq awaiting its ack or its first send,
// given-up PDUs not counted; p.mu is held.
func (p *peer) windowBase() uint32 {
	p.reclaim()
	for i := p.order.head; i < len(p.order.buf); i++ {
		if e := p.order.buf[i]; !e.done && !e.ghost {
			return e.Seq
		}
	}
	return p.assigned + 1
}

// settle ends e's life at this collector; p.mu is held.
func (p *peer) settle(e *entry) {
	if e.hidx >= 0 {
		heap.Remove(&p.timers, e.hidx)
	}
	delete(p.pending, e.Seq)
	e.done = true
	p.s.pool.release(e.pk)
}

// run is the collector's send loop: one datagram per slot.
func (p *peer) run() {
	defer p.s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := p.step()
		if wait == 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-p.s.stop:
			return
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// step sends at most one datagram and returns how long to wait before the
// next step could send (0: step again now).
func (p *peer) step() time.Duration {
	cfg := &p.s.cfg
	p.mu.Lock()
	now := time.Now()
	// Expired ack timeouts: give up, or retry in a coming slot.
	for p.timers.len() > 0 {
		e := p.timers.top()
		if e.due.After(now) || !p.policy.GiveUp(&e.Pending, now) {
			break
		}
		p.gaveUp = append(p.gaveUp, spanOf(e))
		p.settle(e)
		e.done, e.ghost = false, true
		p.ghosts = append(p.ghosts, e)
		p.stats.GivenUp++
		p.notify = true
		p.log.Warn("transport: PDU given up", "seq", e.Seq, "type", e.Type, "sends", e.Sends,
			"age", now.Sub(e.Submitted).Round(time.Millisecond))
	}
	p.modeChange(now)
	p.saturation(now)
	notice := len(p.gaveUp) > 0 || len(p.notices) > 0
	if len(p.gaveUp) > 0 {
		p.notices = append(p.notices, givenUpEvents(p.gaveUp, now)...)
		p.gaveUp = p.gaveUp[:0]
	}
	if notice {
		p.mu.Unlock()
		p.s.submitNotice(p)
		return 0
	}

	retry := p.timers.len() > 0 && !p.timers.top().due.After(now)
	heartbeat := p.notify || now.Sub(p.lastSend) >= cfg.Heartbeat
	// The ack window: a new PDU leaves only while fewer than Window are
	// awaiting their ack, so that the probe never outruns the collector
	// (an ack wakes the loop). In long-retry mode the collector acks
	// nothing: the policy's slow pace rules instead, and the PDUs get
	// their first send (and their chance to be given up) as before.
	// The window spans seqs, not a count, from the lowest PDU awaiting
	// its ack (given-up ones excepted: their notice, queued behind, must
	// get out), so that the seqs in flight stay within the collector's
	// duplicate window; a lost PDU holds the window until it is retried
	// (at once, see ack: fast retransmit).
	fresh := p.queue.len() > 0 && (p.long || p.queue.peek().Seq-p.windowBase() < uint32(cfg.Window))
	work := retry || fresh || heartbeat
	slot := p.lastSend.Add(cfg.MinGap)
	if p.nextFree.After(slot) {
		slot = p.nextFree
	}
	if !work || now.Before(slot) {
		wait := time.Hour
		if work {
			wait = slot.Sub(now)
		} else {
			if p.timers.len() > 0 {
				wait = p.timers.top().due.Sub(now)
			}
			wait = min(wait, p.lastSend.Add(cfg.Heartbeat).Sub(now))
		}
		p.mu.Unlock()
		return max(wait, time.Microsecond)
	}

	var h pdu.Header
	var e *entry
	switch {
	case retry:
		e = p.timers.top()
	case fresh:
		e = p.queue.pop()
	}
	floor := p.floor()
	if e != nil {
		e.Sends++
		e.due = now.Add(p.policy.Timeout(&e.Pending, now))
		if e.hidx >= 0 {
			heap.Fix(&p.timers, e.hidx)
			p.stats.Retried++
		} else {
			heap.Push(&p.timers, e)
			p.pending[e.Seq] = e
			p.stats.Sent++
		}
		p.scratch = append(p.scratch[:0], e.pk.buf...)
		// Restamp cannot fail: Send checked the PDU.
		_ = pdu.Restamp(p.scratch, p.s.probe, p.s.session, e.Seq, floor)
		h = pdu.Header{Type: e.Type, Probe: p.s.probe, Session: p.s.session, Seq: e.Seq, Floor: floor, ProbeTime: e.ProbeTime}
	} else {
		h = pdu.Header{Type: pdu.TypeHeartbeat, Probe: p.s.probe, Session: p.s.session, Seq: p.assigned, Floor: floor, ProbeTime: p.s.clock()}
		p.scratch = pdu.AppendControl(p.scratch[:0], h)
		p.notify = false
		p.stats.Heartbeats++
	}
	if p.signer != nil {
		p.scratch, _ = p.signer.Sign(p.scratch)
	}
	p.lastSend = now
	p.stats.Bytes += uint64(len(p.scratch))
	if bw := cfg.Bandwidth; bw > 0 {
		// A virtual finish time: over any span, the bytes sent stay within
		// the cap plus one PDU.
		p.nextFree = later(p.nextFree, now).Add(time.Duration(int64(len(p.scratch)) * int64(time.Second) / bw))
	}
	p.mu.Unlock()

	p.write(p.scratch)
	if p.s.onSend != nil {
		p.s.onSend(SendEvent{Collector: p.idx, Header: h, Retry: retry, At: now, Size: len(p.scratch)})
	}
	return 0
}

func (p *peer) write(b []byte) {
	if _, err := p.conn.Write(b); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
		// Refused: the collector is down (ICMP port unreachable); the
		// retries are the remedy, as for a lost datagram.
		p.mu.Lock()
		p.stats.SendErrors++
		p.mu.Unlock()
		p.log.Debug("transport: send failed", "err", err)
	}
}

// sendByeNow sends the Bye seq once in the next slot, without waiting for
// its ack.
func (p *peer) sendByeNow(seq uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if wait := time.Until(p.lastSend.Add(p.s.cfg.MinGap)); wait > 0 {
		time.Sleep(wait)
	}
	h := pdu.Header{Type: pdu.TypeBye, Probe: p.s.probe, Session: p.s.session, Seq: seq, Floor: p.floor(), ProbeTime: p.s.clock()}
	b := pdu.AppendBye(nil, h, p.s.continues)
	if p.s.key != nil {
		b, _ = pdu.NewSigner(p.s.key).Sign(b) // not p.signer: run's goroutine may still use it
	}
	p.lastSend = time.Now()
	if _, err := p.conn.Write(b); err != nil {
		p.log.Debug("transport: send bye failed", "err", err)
	}
	if p.s.onSend != nil {
		p.s.onSend(SendEvent{Collector: p.idx, Header: h, At: p.lastSend})
	}
}

// readAcks takes the collector's acks until the socket is closed.
func (p *peer) readAcks() {
	defer p.s.wg.Done()
	buf := make([]byte, pdu.MinPDUSize)
	var signer *pdu.Signer
	if p.s.key != nil {
		signer = pdu.NewSigner(p.s.key)
	}
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				p.log.Debug("transport: read ack", "err", err)
				time.Sleep(time.Millisecond) // no spinning on a persistent error
			}
			continue
		}
		f, err := pdu.Parse(buf[:n])
		var session, seq uint32
		if err == nil {
			session, seq, err = f.Ack()
		}
		if err != nil || f.Header.Probe != p.s.probe || session != p.s.session || (signer != nil && !signer.Verify(&f)) {
			p.mu.Lock()
			p.stats.BadAcks++
			p.mu.Unlock()
			continue
		}
		p.ack(seq)
	}
}

// fastRetransmitAfter is how many seqs past an unacked PDU must be acked
// before that PDU is retried without waiting for its timeout (it was
// most likely lost, as TCP's duplicate acks tell).
const fastRetransmitAfter = 3

func (p *peer) ack(seq uint32) {
	p.mu.Lock()
	e, ok := p.pending[seq]
	if ok {
		for _, g := range e.covers {
			g.done, g.ghost = true, false
		}
		e.covers = nil
		p.settle(e)
		p.stats.Acked++
		now := time.Now()
		p.policy.Acked(&e.Pending, now)
		p.modeChange(now)
		p.reclaim()
		if p.order.len() > 0 {
			if h := p.order.peek(); h.hidx >= 0 && !h.fast && seq > h.Seq+fastRetransmitAfter && h.due.After(now) {
				h.fast = true
				h.due = now
				heap.Fix(&p.timers, h.hidx)
			}
		}
	}
	p.mu.Unlock()
	if ok {
		p.signal()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// longRetrier is implemented by policies with a long-retry mode.
type longRetrier interface {
	LongRetry() (bool, time.Time)
}

// modeChange notes a change of the policy's long-retry mode as an event for
// the collector; p.mu is held.
func (p *peer) modeChange(now time.Time) {
	lr, ok := p.policy.(longRetrier)
	if !ok {
		return
	}
	long, since := lr.LongRetry()
	if long == p.long {
		return
	}
	p.long = long
	if long {
		p.stats.LongRetry++
		p.log.Warn("transport: collector not acking: long-retry mode")
		p.notices = append(p.notices, pdu.Event{TS: since.UnixNano(), Kind: EventLongRetry,
			Detail: fmt.Sprintf("collector=%s pending=%d", p.addr, len(p.pending)+p.queue.len())})
	} else {
		p.log.Info("transport: collector acks again: normal mode")
		// The PDUs backed off while the collector was not acking are due
		// now: they leave in the coming slots, in seq order (a nanosecond
		// apart: equal times would leave the heap's order to chance).
		k := 0
		for i := p.order.head; i < len(p.order.buf); i++ {
			if e := p.order.buf[i]; e.hidx >= 0 && e.due.After(now) {
				e.due = now.Add(time.Duration(k))
				k++
			}
		}
		heap.Init(&p.timers)
		p.notices = append(p.notices, pdu.Event{TS: now.UnixNano(), Kind: EventNormal,
			Detail: fmt.Sprintf("collector=%s", p.addr)})
	}
}

// saturation notes, as an event for the collector, that PDUs queue up for
// it faster than it acks them, or no longer do; p.mu is held.
func (p *peer) saturation(now time.Time) {
	q, w := p.queue.len(), p.s.cfg.Window
	switch {
	case !p.sat && !p.long && q > SaturationFactor*w:
		p.sat = true
		p.stats.Saturated++
		p.log.Warn("transport: saturated: PDUs queue up faster than the collector acks them", "queued", q, "window", w)
		p.notices = append(p.notices, pdu.Event{TS: now.UnixNano(), Kind: EventSaturated,
			Detail: fmt.Sprintf("collector=%s queued=%d window=%d", p.addr, q, w)})
	case p.sat && q < w:
		p.sat = false
		p.log.Info("transport: no longer saturated")
		p.notices = append(p.notices, pdu.Event{TS: now.UnixNano(), Kind: EventUnsaturated,
			Detail: fmt.Sprintf("collector=%s queued=%d window=%d", p.addr, q, w)})
	}
}
