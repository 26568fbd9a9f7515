// Package transport carries PDUs from a probe to its collectors over UDP:
// on the probe, after the pdu builders, a Sender sends every PDU to every
// collector in regulated time slots and retries it until acked; on the
// collector, before decoding and reconciliation, a Receiver checks, acks and
// deduplicates PDUs and tracks per probe session how far the data is
// complete (the watermark). trafMon §1.5, §3.14 and §4.1.
package transport

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
)

// Errors of Sender.Send.
var (
	ErrClosed       = errors.New("transport: sender closed")
	ErrSeqExhausted = errors.New("transport: session out of sequence numbers; start a new session")
	ErrNotData      = errors.New("transport: not a data PDU (flow definitions, sightings or events)")
)

// withDefaults returns the transport configuration to use: the zero value
// stands for conf.DefaultTransport() (a <transport> element left out); any
// other value must be complete and valid by conf's rules — there is one
// source of defaults and ranges, conf.
func withDefaults(c conf.Transport) (conf.Transport, error) {
	if c == (conf.Transport{}) {
		return conf.DefaultTransport(), nil
	}
	if err := c.Check(); err != nil {
		return c, err
	}
	return c, nil
}

// SenderOptions are the optional parts of a Sender; the zero value is
// valid.
type SenderOptions struct {
	Logger *slog.Logger // default slog.Default()
	// Policy makes the retransmission policy of one collector; default
	// NewBasicPolicy(cfg).
	Policy func(cfg conf.Transport, collector netip.AddrPort) Policy
	// DataClock returns the probe's data clock (ns) for heartbeats and the
	// bye: every sighting captured before it has been submitted. Default:
	// the largest ProbeTime submitted so far.
	DataClock func() int64
	// OnSend, when set, is called after every datagram sent (first sends,
	// retries, heartbeats, bye) from the collector's goroutine. For tests
	// and tracing; it must not block.
	OnSend func(SendEvent)
	// Key, when set, signs every datagram (pdu.AuthHMACSHA256) and makes
	// the sender take only acks signed with it. PDUs given to Send must
	// then leave AuthOverhead bytes of room under MaxPDUSize (BuildSize).
	Key []byte
}

// AuthOverhead returns the bytes the auth trailer adds to a PDU sent with
// key (nil: none).
func AuthOverhead(key []byte) int {
	if key == nil {
		return 0
	}
	return pdu.AuthSize
}

// BuildSize returns the size the PDU builders of a probe sending with cfg
// and key may fill: the max PDU size less the auth trailer.
func BuildSize(cfg conf.Transport, key []byte) int {
	size := cfg.MaxPDUSize
	if size == 0 {
		size = conf.DefaultTransport().MaxPDUSize
	}
	return size - AuthOverhead(key)
}

// Kinds of the events a Sender reports to a collector about its own link
// (an events PDU sent to that collector only, never given up).
const (
	EventLongRetry = "transport.long_retry" // long-retry mode entered: the collector stopped acking
	EventNormal    = "transport.normal"     // the first ack after long-retry mode: normal mode again
	EventGivenUp   = "transport.given_up"   // PDUs given up; see GivenUpDetail
	// EventSaturated: PDUs queue up for this collector faster than it
	// acks them (more than SaturationFactor × Window unsent); the detail
	// says how many. EventUnsaturated: the queue is back under Window.
	EventSaturated   = "transport.saturated"
	EventUnsaturated = "transport.unsaturated"
)

// SaturationFactor × Window unsent PDUs make a collector's link saturated.
const SaturationFactor = 4

// SendEvent describes one datagram sent.
type SendEvent struct {
	Collector int // index in the collectors passed to NewSender
	Header    pdu.Header
	Retry     bool // not the first send of this PDU to this collector
	At        time.Time
	Size      int // bytes of the datagram
}

// CollectorStats are the counters of one collector.
type CollectorStats struct {
	Collector  netip.AddrPort
	Sent       uint64 // first sends
	Retried    uint64 // retransmissions
	Acked      uint64 // PDUs acked
	GivenUp    uint64 // PDUs dropped without ack
	LongRetry  uint64 // times long-retry mode was entered
	Bytes      uint64 // bytes of every datagram sent (UDP payload)
	Heartbeats uint64
	SendErrors uint64 // writes that failed (other than "connection refused")
	BadAcks    uint64 // datagrams from the collector that were not a valid ack of this session
	Saturated  uint64 // times the link became saturated (EventSaturated)
	Pending    int    // PDUs not yet acked nor given up
	Queued     int    // of them, not sent yet (the window is full)
}

// Stats are the counters of a Sender.
type Stats struct {
	Submitted  uint64 // PDUs taken by Send
	Collectors []CollectorStats
}

// Sender sends PDUs to every collector and retries them until acked
// (trafMon §1.5, §3.14). Each collector has its own state, goroutine and
// connected UDP socket, so that a dead collector does not slow the others.
// To one collector, datagrams leave in time slots at least MinGap apart —
// first sends, retries and heartbeats alike, one per slot, never a burst;
// retries that are due go before new PDUs.
//
// Send is safe for concurrent use. Buffers are recycled: in steady state a
// Send does not allocate.
type Sender struct {
	cfg     conf.Transport
	probe   uint16
	session uint32
	log     *slog.Logger
	clock   func() int64
	onSend  func(SendEvent)
	key     []byte

	mu        sync.Mutex // serialises Send: seq order is enqueue order at every collector
	nextSeq   uint32
	closed    bool
	submitted atomic.Uint64
	lastTime  atomic.Int64 // largest ProbeTime submitted

	pool  packetPool
	peers []*peer
	stop  chan struct{}
	wg    sync.WaitGroup
}

// packet is one submitted PDU, shared by the collectors until each has
// acked or given it up.
type packet struct {
	buf  []byte
	refs atomic.Int32
}

type packetPool struct {
	mu   sync.Mutex
	free []*packet
	size int
}

func (p *packetPool) get() *packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		pk := p.free[n-1]
		p.free = p.free[:n-1]
		return pk
	}
	return &packet{buf: make([]byte, 0, p.size)}
}

func (p *packetPool) release(pk *packet) {
	if pk.refs.Add(-1) != 0 {
		return
	}
	p.mu.Lock()
	p.free = append(p.free, pk)
	p.mu.Unlock()
}

// NewSender dials every collector and starts sending. probeID and session
// go into every PDU (Send restamps them). Zero fields of cfg take the
// defaults above.
func NewSender(cfg conf.Transport, collectors []netip.AddrPort, probeID uint16, session uint32, opt SenderOptions) (*Sender, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	if len(collectors) == 0 {
		return nil, errors.New("transport: no collector")
	}
	s := &Sender{
		cfg: cfg, probe: probeID, session: session,
		log: opt.Logger, clock: opt.DataClock, onSend: opt.OnSend, key: opt.Key,
		nextSeq: 1,
		pool:    packetPool{size: cfg.MaxPDUSize},
		stop:    make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("probe", probeID, "session", session)
	if s.clock == nil {
		s.clock = s.lastTime.Load
	}
	newPolicy := opt.Policy
	if newPolicy == nil {
		newPolicy = func(c conf.Transport, _ netip.AddrPort) Policy { return NewTrafMonPolicy(c) }
	}
	for i, addr := range collectors {
		conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			for _, p := range s.peers {
				p.conn.Close()
			}
			return nil, fmt.Errorf("transport: dial collector %v: %w", addr, err)
		}
		s.peers = append(s.peers, newPeer(s, i, addr, conn, newPolicy(cfg, addr)))
	}
	for _, p := range s.peers {
		s.wg.Add(2)
		go p.run()
		go p.readAcks()
	}
	return s, nil
}

// Send takes a finished PDU (pdu.Builder.Finish): it copies it, gives it the
// next seq and sends it to every collector. b may be reused as soon as Send
// returns. It returns the seq.
func (s *Sender) Send(b []byte) (uint32, error) {
	f, err := pdu.Parse(b)
	if err != nil {
		return 0, fmt.Errorf("transport: send: %w", err)
	}
	switch {
	case !f.Header.Type.Data():
		return 0, ErrNotData
	case len(b)+AuthOverhead(s.key) > s.cfg.MaxPDUSize:
		return 0, fmt.Errorf("transport: send: %d-byte PDU above max size %d less the %d-byte auth trailer", len(b), s.cfg.MaxPDUSize, AuthOverhead(s.key))
	case len(f.Auth) != 0:
		return 0, fmt.Errorf("transport: send: PDU already authenticated: %w", pdu.ErrMalformed)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.submit(b, f.Header)
}

// submit enqueues b at every collector; s.mu is held.
func (s *Sender) submit(b []byte, h pdu.Header) (uint32, error) {
	if s.nextSeq == math.MaxUint32 {
		return 0, ErrSeqExhausted
	}
	seq := s.nextSeq
	s.nextSeq++
	pk := s.pool.get()
	pk.buf = append(pk.buf[:0], b...)
	pk.refs.Store(int32(len(s.peers)))
	if h.ProbeTime > s.lastTime.Load() {
		s.lastTime.Store(h.ProbeTime)
	}
	s.submitted.Add(1)
	now := time.Now()
	for _, p := range s.peers {
		p.enqueue(pk, seq, h, now, nil)
	}
	return seq, nil
}

// submitNotice sends the events p has collected about its own link (long
// retry, given-up PDUs) in an events PDU to p's collector only. The seq is
// taken from the shared sequence: the other collectors never see it, and
// their floors pass over it.
func (s *Sender) submitNotice(p *peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.mu.Lock()
	evs := p.notices
	ghosts := p.ghosts
	p.notices, p.ghosts = nil, nil
	p.mu.Unlock()
	if len(evs) == 0 || s.nextSeq == math.MaxUint32 {
		return
	}
	b := pdu.NewBuilder(BuildSize(s.cfg, s.key))
	flush := func() {
		if b.Len() == 0 {
			return
		}
		h := pdu.Header{Type: pdu.TypeEvents, ProbeTime: s.clock()}
		buf := b.Finish(h)
		seq := s.nextSeq
		s.nextSeq++
		pk := s.pool.get()
		pk.buf = append(pk.buf[:0], buf...)
		pk.refs.Store(1)
		p.enqueue(pk, seq, h, time.Now(), ghosts)
		ghosts = nil
		b.Reset()
	}
	for _, e := range evs {
		if !b.AddEvent(e) {
			flush()
			b.AddEvent(e)
		}
	}
	flush()
}

// Stats returns the counters. It may be called at any time.
func (s *Sender) Stats() Stats {
	st := Stats{Submitted: s.submitted.Load()}
	for _, p := range s.peers {
		p.mu.Lock()
		c := p.stats
		c.Pending = len(p.pending) + p.queue.len()
		c.Queued = p.queue.len()
		p.mu.Unlock()
		st.Collectors = append(st.Collectors, c)
	}
	return st
}

// Close stops taking PDUs, waits until every collector has acked or given
// up everything (or ctx ends), then sends a Bye to every collector and
// waits for its acks (or ctx), stops and returns the final counters.
//
// When ctx ends first, collectors are redundant: if at least one acked
// everything, the others only missed what it holds, so Close says in the
// log which collector missed which seqs, gives the complete ones their Bye
// (acked, within ByeGrace), sends the others one Bye without waiting, and
// returns no error. When none acked everything, the Bye is still sent once
// to each, and the error is ctx's.
func (s *Sender) Close(ctx context.Context) (Stats, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.Stats(), ErrClosed
	}
	s.closed = true
	s.mu.Unlock()

	err := s.drain(ctx)
	if err != nil {
		if done := s.complete(); len(done) > 0 {
			return s.closeRedundant(done)
		}
	}
	s.mu.Lock()
	byeSeq := s.nextSeq // the Bye's seq, whether it goes through the queues or not
	s.mu.Unlock()
	if err == nil {
		h := pdu.Header{Type: pdu.TypeBye, ProbeTime: s.clock()}
		s.mu.Lock()
		_, err = s.submit(pdu.AppendControl(nil, h), h)
		s.mu.Unlock()
		if err == nil {
			err = s.drain(ctx)
		}
	}
	if err != nil {
		// Best effort: one Bye to every collector, in its next slot.
		for _, p := range s.peers {
			p.sendByeNow(byeSeq)
		}
	}
	close(s.stop)
	for _, p := range s.peers {
		p.conn.Close() // unblocks readAcks
	}
	s.wg.Wait()
	st := s.Stats()
	for _, c := range st.Collectors {
		s.log.Info("transport: sender closed", "collector", c.Collector, "sent", c.Sent, "retried", c.Retried,
			"acked", c.Acked, "given_up", c.GivenUp, "pending", c.Pending)
	}
	return st, err
}

// ByeGrace bounds the wait for the Bye's ack from the collectors that
// acked everything, once the drain ended with others still owing acks.
const ByeGrace = 5 * time.Second

// complete returns the collectors that have nothing outstanding.
func (s *Sender) complete() []*peer {
	var out []*peer
	for _, p := range s.peers {
		p.mu.Lock()
		if len(p.pending)+p.queue.len() == 0 {
			out = append(out, p)
		}
		p.mu.Unlock()
	}
	return out
}

// closeRedundant ends the session when the collectors done acked
// everything and the others did not (see Close).
func (s *Sender) closeRedundant(done []*peer) (Stats, error) {
	for _, p := range s.peers {
		if slices.Contains(done, p) {
			continue
		}
		p.mu.Lock()
		first, last := uint32(0), uint32(0)
		for _, e := range p.pending {
			if first == 0 || e.Seq < first {
				first = e.Seq
			}
			last = max(last, e.Seq)
		}
		n := len(p.pending) + p.queue.len()
		p.mu.Unlock()
		names := make([]string, len(done))
		for i, d := range done {
			names[i] = d.addr.String()
		}
		p.log.Warn("transport: redundant collector missed PDUs; the others hold every one", "missed", n,
			"seqs", fmt.Sprintf("%d-%d", first, last), "complete", names)
	}
	s.mu.Lock()
	byeSeq := s.nextSeq
	h := pdu.Header{Type: pdu.TypeBye, ProbeTime: s.clock()}
	b := pdu.AppendControl(nil, h)
	var err error
	if s.nextSeq == math.MaxUint32 {
		err = ErrSeqExhausted
	} else {
		// To the complete collectors only; the others get it once below.
		s.nextSeq++
		pk := s.pool.get()
		pk.buf = append(pk.buf[:0], b...)
		pk.refs.Store(int32(len(done)))
		for _, p := range done {
			p.enqueue(pk, byeSeq, h, time.Now(), nil)
		}
	}
	s.mu.Unlock()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), ByeGrace)
		err = s.drainPeers(ctx, done)
		cancel()
	}
	for _, p := range s.peers {
		if err != nil || !slices.Contains(done, p) {
			p.sendByeNow(byeSeq)
		}
	}
	close(s.stop)
	for _, p := range s.peers {
		p.conn.Close()
	}
	s.wg.Wait()
	st := s.Stats()
	for _, c := range st.Collectors {
		s.log.Info("transport: sender closed", "collector", c.Collector, "sent", c.Sent, "retried", c.Retried,
			"acked", c.Acked, "given_up", c.GivenUp, "pending", c.Pending)
	}
	if err != nil {
		return st, fmt.Errorf("transport: bye to the complete collectors: %w", err)
	}
	return st, nil
}

// drain waits until no collector has anything outstanding.
func (s *Sender) drain(ctx context.Context) error { return s.drainPeers(ctx, s.peers) }

// drainPeers waits until none of peers has anything outstanding.
func (s *Sender) drainPeers(ctx context.Context, peers []*peer) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		idle := true
		for _, p := range peers {
			p.mu.Lock()
			if len(p.pending)+p.queue.len() > 0 {
				idle = false
			}
			p.mu.Unlock()
		}
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

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
	b := pdu.AppendControl(nil, h)
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

// fifo is a queue of entries that reuses its array.
type fifo struct {
	buf  []*entry
	head int
}

func (q *fifo) len() int      { return len(q.buf) - q.head }
func (q *fifo) peek() *entry  { return q.buf[q.head] }
func (q *fifo) push(e *entry) { q.buf = append(q.buf, e) }

func (q *fifo) pop() *entry {
	e := q.buf[q.head]
	q.buf[q.head] = nil
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	} else if q.head >= 1024 && q.head*2 >= len(q.buf) {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	return e
}

// entryHeap orders pending entries by ack timeout expiry.
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.hidx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.hidx = -1
	*h = old[:len(old)-1]
	return e
}
func (h entryHeap) len() int    { return len(h) }
func (h entryHeap) top() *entry { return h[0] }

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

// spanOf describes a PDU being given up: for sightings, the capture times
// of its earliest and latest sightings (a rare path: the body is decoded).
func spanOf(e *entry) givenUp {
	g := givenUp{seq: e.Seq, typ: e.Type}
	if e.Type != pdu.TypeSightings {
		return g
	}
	f, err := pdu.Parse(e.pk.buf)
	if err != nil {
		return g
	}
	var r pdu.SightingReader
	var sg pdu.Sighting
	r.Reset(f.Body)
	for r.Next(&sg) {
		if g.sightings == 0 || sg.TS < g.from {
			g.from = sg.TS
		}
		if g.sightings == 0 || sg.TS > g.to {
			g.to = sg.TS
		}
		g.sightings++
	}
	return g
}

// GivenUp is what a transport.given_up event says: the probe gave up the
// PDUs Seqs (first..last, every seq between them that it had sent to this
// collector and not had acked), holding Sightings sightings captured
// between From and To (ns, inclusive). Other PDU types given up are
// counted in Others.
type GivenUp struct {
	First, Last uint32
	Sightings   int
	Others      int
	From, To    int64
}

// GivenUpDetail renders g as the detail of a transport.given_up event.
func GivenUpDetail(g GivenUp) string {
	return fmt.Sprintf("seqs=%d-%d sightings=%d others=%d from=%d to=%d", g.First, g.Last, g.Sightings, g.Others, g.From, g.To)
}

// ParseGivenUp reads the detail of a transport.given_up event.
func ParseGivenUp(detail string) (GivenUp, error) {
	var g GivenUp
	_, err := fmt.Sscanf(detail, "seqs=%d-%d sightings=%d others=%d from=%d to=%d", &g.First, &g.Last, &g.Sightings, &g.Others, &g.From, &g.To)
	if err != nil {
		return g, fmt.Errorf("transport: given-up notice %q: %w", detail, err)
	}
	return g, nil
}

// givenUpEvents merges PDUs given up at one time into one event per run of
// consecutive seqs.
func givenUpEvents(gs []givenUp, now time.Time) []pdu.Event {
	slices.SortFunc(gs, func(a, b givenUp) int { return cmp.Compare(a.seq, b.seq) })
	var out []pdu.Event
	for i := 0; i < len(gs); {
		g := GivenUp{First: gs[i].seq}
		j := i
		for ; j < len(gs) && (j == i || gs[j].seq == gs[j-1].seq+1); j++ {
			x := gs[j]
			g.Last = x.seq
			if x.typ != pdu.TypeSightings {
				g.Others++
				continue
			}
			if x.sightings > 0 {
				if g.Sightings == 0 || x.from < g.From {
					g.From = x.from
				}
				if g.Sightings == 0 || x.to > g.To {
					g.To = x.to
				}
				g.Sightings += x.sightings
			}
		}
		out = append(out, pdu.Event{TS: now.UnixNano(), Kind: EventGivenUp, Detail: GivenUpDetail(g)})
		i = j
	}
	return out
}
