// Package transport carries PDUs from a probe to its collectors over UDP:
// on the probe, after the pdu builders, a Sender sends every PDU to every
// collector in regulated time slots and retries it until acked; on the
// collector, before decoding and reconciliation, a Receiver checks, acks and
// deduplicates PDUs and tracks per probe session how far the data is
// complete (the watermark). trafMon §1.5, §3.14 and §4.1.
package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
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

	mu      sync.Mutex // serialises Send: seq order is enqueue order at every collector
	nextSeq uint32
	closed  bool
	// bye: the Bye's seq has been taken. The collector refuses anything
	// later of the session as a replay, so a notice raised after it (a
	// long-retry while the Bye's ack is lost) is logged, not sent: sent,
	// it would never be acked and Close would wait for it in vain.
	bye bool
	// continues: the Bye says that a new session follows (Continue).
	continues bool
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
	if s.bye {
		for _, g := range ghosts {
			g.done, g.ghost = true, false
		}
	}
	p.mu.Unlock()
	if s.bye {
		for _, e := range evs {
			p.log.Warn("transport: link event after the bye, not sent", "kind", e.Kind, "detail", e.Detail)
		}
		return
	}
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

// Backlog returns how many PDUs wait for their first send at the
// collector that has fewest waiting, collectors in long-retry mode left
// out (they are down, not slow; their queues are bounded by the final
// timeout): how far the fastest link lags behind the probe. 0 when every
// collector is in long-retry mode. Safe at any time; the probe sheds load
// (live) or waits (full-speed replay) on it.
func (s *Sender) Backlog() int {
	n := -1
	for _, p := range s.peers {
		p.mu.Lock()
		if !p.long && (n < 0 || p.queue.len() < n) {
			n = p.queue.len()
		}
		p.mu.Unlock()
	}
	return max(n, 0)
}

// Window is the sender's ack window (conf.Transport.Window, default
// filled): with SaturationFactor it sets where the backlog means
// saturation.
func (s *Sender) Window() int { return s.cfg.Window }

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
