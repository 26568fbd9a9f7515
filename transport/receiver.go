package transport

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
)

// Handler takes the PDUs a Receiver accepts. The collector implements it
// (decoding, reconciliation, spool); the Receiver owns nothing of the data.
type Handler interface {
	// HandlePDU is called once per new sequenced PDU (flow definitions,
	// sightings, events, bye) of a (probe, session, seq), in order of
	// arrival, from Run's goroutine. The frame has passed every check,
	// its body included. f and its slices are valid only during the call.
	// A non-nil error means the PDU was not taken: it is neither acked nor
	// marked received, and the probe sends it again.
	HandlePDU(from netip.AddrPort, f *pdu.Frame) error
}

// AckHolder may be implemented by a Handler that makes the PDUs it takes
// durable in groups (the collector's journal, synced every few ms): the
// Receiver then hands it the ack of every PDU it took, and of every
// duplicate, instead of sending it. The holder copies ack and sends it with
// SendAck once everything handled before is durable, or never (the probe
// sends the PDU again, and its duplicate is acked then).
type AckHolder interface {
	HoldAck(ack []byte, to netip.AddrPort)
}

// WatermarkHandler may be implemented by a Handler to learn, after
// HandlePDU, heartbeats and floors, that a session's watermark advanced.
type WatermarkHandler interface {
	HandleWatermark(probe uint16, session uint32, w Watermark)
}

// Watermark says how far the data of a probe session is complete.
type Watermark struct {
	// Seq: every seq up to it has been delivered, or was given up by the
	// probe (or acked to an earlier instance of this collector).
	Seq uint32
	// ProbeTime: the probe time of the last of those PDUs that was
	// delivered, or of a later heartbeat once nothing was outstanding:
	// every sighting captured before it has been delivered, unless its PDU
	// was given up. 0 while unknown.
	ProbeTime int64
}

// ReceiverStats are the counters of a Receiver.
type ReceiverStats struct {
	Delivered     uint64 // new PDUs taken by the handler
	Duplicates    uint64 // PDUs already delivered (acked again, not delivered)
	Heartbeats    uint64
	HandlerErrors uint64 // PDUs the handler refused
	Skipped       uint64 // seqs below a floor that never arrived
	Restarts      uint64 // new sessions of a known probe
	Evicted       uint64 // sessions forgotten to respect MaxSessions
	Invalid       [NumReasons]uint64
	// LastFrom is the source of the latest datagram refused for each
	// reason (for the collector's refusal events).
	LastFrom [NumReasons]netip.AddrPort
}

// SessionInfo describes one probe session known to a Receiver.
type SessionInfo struct {
	Probe     uint16
	Session   uint32
	Watermark Watermark
	LastHeard time.Time // collector time of the last valid datagram
	Closed    bool      // a Bye was delivered
	Delivered uint64
	Skipped   uint64
}

// ReceiverOptions are the optional parts of a Receiver; the zero value is
// valid.
type ReceiverOptions struct {
	Logger *slog.Logger // default slog.Default()
	// Window is the number of seqs above the watermark a session
	// remembers for duplicate detection (rounded up to a multiple of 64;
	// default 4096). A PDU further ahead is not acked: the probe retries
	// it once the window moved. Memory: 9 bytes per seq per session.
	Window int
	// MaxSessions bounds the sessions remembered; the one heard least
	// recently is forgotten first. Default 1024.
	MaxSessions int
	Now         func() time.Time // collector clock; default time.Now
	// Keys, when not nil, turns authentication on: every datagram must
	// carry a valid pdu.AuthHMACSHA256 trailer made with one of its
	// probe's keys (several while keys are rolled), and acks are signed
	// with the key that verified it. Probe ids without a key are unknown.
	// Sessions must then grow (SessionID: a probe's session is its start
	// time): a session older than the probe's latest one is a replay.
	Keys map[uint16][][]byte
	// Known, when set and Keys is nil, tells the probe ids to accept.
	Known func(probe uint16) bool
	// FloodLimit is the number of invalid datagrams per second after which
	// further datagrams from the same source address (any port) are
	// dropped unread for the rest of that second, so that a flood costs
	// little and valid probes keep their share; default 1000.
	FloodLimit int
	// FloodBudget bounds the invalid datagrams per second from every
	// source together: past it, for the rest of the second, only sources
	// (address and port) that sent a valid datagram within the last minute
	// are read, so that verifying forgeries from rotating addresses costs
	// a bounded share of the collector; default 10000.
	FloodBudget int
}

// Receiver is the collector end: it reads datagrams, checks them (size,
// magic, version, lengths, CRC, body), acks every valid sequenced PDU —
// duplicates too, since the first ack may have been lost — drops
// duplicates per (probe, session, seq) in bounded memory, delivers new PDUs
// to a Handler and tracks each session's watermark (trafMon §4.1).
//
// Run must be called once; Watermark, Sessions and Stats are safe to call
// concurrently with it.
type Receiver struct {
	conn    *net.UDPConn
	maxSize int
	window  int
	maxSess int
	log     *slog.Logger
	now     func() time.Time
	ack     []byte    // reused ack buffer; Run's goroutine only
	frame   pdu.Frame // the datagram being handled (a field: handing a local to the Handler would move it to the heap)
	signers map[uint16][]*pdu.Signer
	known   func(uint16) bool
	flood   floodGuard

	mu       sync.Mutex
	sessions map[sessionKey]*session
	latest   map[uint16]latestSession // per probe: to log restarts, refuse replays
	restored map[uint16]ProbeState    // latest sessions of a previous run, not heard since (RestoreState)
	stats    ReceiverStats
	trusted  bool // the datagram being handled passed every check (Run's goroutine)

	replayErr error // the handler's error during Replay
}

type sessionKey struct {
	probe   uint16
	session uint32
}

// latestSession is a probe's latest session and its start (sessionStart).
type latestSession struct {
	id    uint32
	start int64
}

// NewReceiver returns a receiver reading conn, which stays the caller's to
// close. cfg gives the maximum PDU size (zero fields: defaults).
func NewReceiver(conn *net.UDPConn, cfg conf.Transport, opt ReceiverOptions) (*Receiver, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	r := &Receiver{
		conn: conn, maxSize: cfg.MaxPDUSize, window: opt.Window, maxSess: opt.MaxSessions,
		log: opt.Logger, now: opt.Now,
		ack:      make([]byte, 0, pdu.Overhead+8),
		sessions: make(map[sessionKey]*session),
		latest:   make(map[uint16]latestSession),
		restored: make(map[uint16]ProbeState),
	}
	if r.window <= 0 {
		r.window = 4096
	}
	r.window = (r.window + 63) &^ 63
	if r.maxSess <= 0 {
		r.maxSess = 1024
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.known = opt.Known
	if opt.Keys != nil {
		r.signers = make(map[uint16][]*pdu.Signer, len(opt.Keys))
		for id, ks := range opt.Keys {
			for _, k := range ks {
				r.signers[id] = append(r.signers[id], pdu.NewSigner(k))
			}
		}
		r.known = nil
	}
	r.flood = floodGuard{limit: opt.FloodLimit, budget: opt.FloodBudget,
		counts: make(map[netip.Addr]int), good: make(map[netip.AddrPort]int64)}
	if r.flood.limit <= 0 {
		r.flood.limit = 1000
	}
	if r.flood.budget <= 0 {
		r.flood.budget = 10000
	}
	return r, nil
}

// Run receives until ctx ends (then it returns nil) or the socket fails.
func (r *Receiver) Run(ctx context.Context, h Handler) error {
	if err := r.conn.SetReadDeadline(time.Time{}); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { r.conn.SetReadDeadline(time.Now()) })
	defer stop()
	wh, _ := h.(WatermarkHandler)
	holder, _ := h.(AckHolder)
	// One byte more than any datagram the max PDU size allows, so that an
	// oversized one is seen as such, not truncated into a valid-looking one.
	buf := make([]byte, 1<<16)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			r.log.Debug("transport: receive", "err", err)
			continue
		}
		if r.flood.muted(from, r.now()) {
			r.invalid(ReasonFlood, from)
			continue
		}
		r.trusted = false
		ack := r.process(buf[:n], from, h, wh, false)
		if r.trusted {
			r.flood.trust(from)
		}
		if ack != nil {
			if holder != nil {
				holder.HoldAck(ack, from)
				continue
			}
			r.SendAck(ack, from)
		}
	}
}

// SendAck sends an ack (see AckHolder); it is safe for concurrent use.
func (r *Receiver) SendAck(ack []byte, to netip.AddrPort) {
	if _, err := r.conn.WriteToUDPAddrPort(ack, to); err != nil {
		r.log.Debug("transport: send ack", "to", to, "err", err)
	}
}

func (r *Receiver) invalid(reason Reason, from netip.AddrPort) []byte {
	r.mu.Lock()
	r.stats.Invalid[reason]++
	r.stats.LastFrom[reason] = from
	r.mu.Unlock()
	return nil
}

// refuse counts an invalid datagram from a source, for the flood guard.
func (r *Receiver) refuse(from netip.AddrPort, reason Reason) []byte {
	r.flood.count(from)
	return r.invalid(reason, from)
}

// Replay hands the receiver a datagram it accepted before (a collector's
// journal, after a restart): the session state and the handler learn it
// as if it arrived now, without the checks of the key and the flood guard
// and without ack. Duplicates are ignored; the handler's error is returned.
func (r *Receiver) Replay(b []byte, h Handler) error {
	wh, _ := h.(WatermarkHandler)
	r.replayErr = nil
	r.process(b, netip.AddrPort{}, h, wh, true)
	return r.replayErr
}

// process handles one datagram and returns the ack to send, if any.
// replay: a datagram of the journal (see Replay).
func (r *Receiver) process(b []byte, from netip.AddrPort, h Handler, wh WatermarkHandler, replay bool) []byte {
	if len(b) > r.maxSize {
		return r.refuse(from, ReasonSize)
	}
	var err error
	f := &r.frame
	if *f, err = pdu.Parse(b); err != nil {
		return r.refuse(from, reasonOf(err))
	}
	hd := &f.Header
	var signer *pdu.Signer
	if !replay {
		switch {
		case r.signers != nil:
			ss := r.signers[hd.Probe]
			if ss == nil {
				return r.refuse(from, ReasonUnknown)
			}
			for _, x := range ss {
				if x.Verify(f) {
					signer = x
					break
				}
			}
			if signer == nil {
				return r.refuse(from, ReasonAuth)
			}
		case r.known != nil && !r.known(hd.Probe):
			return r.refuse(from, ReasonUnknown)
		}
	}
	switch {
	case hd.Type == pdu.TypeAck:
		return r.refuse(from, ReasonDirection)
	case pdu.Validate(f) != nil:
		return r.refuse(from, ReasonMalformed)
	case hd.Floor == 0,
		hd.Type == pdu.TypeHeartbeat && uint64(hd.Floor) > uint64(hd.Seq)+1,
		hd.Type != pdu.TypeHeartbeat && (hd.Seq == 0 || hd.Floor > hd.Seq):
		return r.refuse(from, ReasonMalformed)
	}

	now := r.now()
	r.mu.Lock()
	if r.signers != nil && !replay {
		// Sessions grow with the probe's start time: an unknown session
		// older than the latest one is a replay of a finished session,
		// also after a restart (RestoreState).
		if l, ok := r.latest[hd.Probe]; ok && l.id != hd.Session && sessionStart(hd.Session, now) < l.start {
			if _, known := r.sessions[sessionKey{hd.Probe, hd.Session}]; !known {
				r.stats.Invalid[ReasonStale]++
				r.stats.LastFrom[ReasonStale] = from
				r.mu.Unlock()
				return nil
			}
		}
	}
	s := r.session(hd.Probe, hd.Session, hd.Floor, now)
	if !replay {
		r.trusted = true
	}
	s.lastHeard = now
	before := s.wm
	r.stats.Skipped += s.raiseFloor(hd.Floor)
	if hd.Type == pdu.TypeHeartbeat {
		r.stats.Heartbeats++
		if s.closed && !replay {
			// After its bye a session says nothing more: a replayed
			// heartbeat moves no watermark.
			r.mu.Unlock()
			return nil
		}
		if s.base > uint64(hd.Seq) && hd.ProbeTime > s.wm.ProbeTime {
			s.wm.ProbeTime = hd.ProbeTime // nothing outstanding: the probe's clock is the watermark
		}
		wm := s.wm
		r.mu.Unlock()
		r.notify(wh, hd, before, wm)
		return nil
	}
	st := s.state(hd.Seq)
	if st == seqNew && s.closed && (s.bye == 0 || hd.Seq > s.bye) && !replay {
		// Nothing new comes after a bye: a replay of the session. The
		// seqs before it are the probe's retries of PDUs the bye
		// overtook: they are data.
		r.stats.Invalid[ReasonStale]++
		r.stats.LastFrom[ReasonStale] = from
		r.mu.Unlock()
		return nil
	}
	switch st {
	case seqDone:
		r.stats.Duplicates++
		r.mu.Unlock()
		if replay {
			return nil
		}
		return r.ackFor(hd, signer)
	case seqAhead:
		r.stats.Invalid[ReasonWindow]++
		r.stats.LastFrom[ReasonWindow] = from
		wm := s.wm
		r.mu.Unlock()
		r.notify(wh, hd, before, wm)
		return nil
	}
	r.mu.Unlock()

	// New: deliver without the lock (Run is the only writer of sessions).
	if err := h.HandlePDU(from, f); err != nil {
		r.mu.Lock()
		r.stats.HandlerErrors++
		r.mu.Unlock()
		if replay {
			r.replayErr = err
			return nil
		}
		r.log.Warn("transport: handler refused PDU", "probe", hd.Probe, "session", hd.Session, "seq", hd.Seq, "err", err)
		return nil
	}
	r.mu.Lock()
	s.mark(hd.Seq, hd.ProbeTime)
	s.delivered++
	r.stats.Delivered++
	if hd.Type == pdu.TypeBye {
		s.closed, s.bye = true, hd.Seq
	}
	wm := s.wm
	r.mu.Unlock()
	if hd.Type == pdu.TypeBye {
		r.log.Info("transport: probe session ended", "probe", hd.Probe, "session", hd.Session, "from", from)
	}
	r.notify(wh, hd, before, wm)
	if replay {
		return nil
	}
	return r.ackFor(hd, signer)
}

func (r *Receiver) notify(wh WatermarkHandler, hd *pdu.Header, before, after Watermark) {
	if wh != nil && after != before {
		wh.HandleWatermark(hd.Probe, hd.Session, after)
	}
}

func (r *Receiver) ackFor(hd *pdu.Header, signer *pdu.Signer) []byte {
	r.ack = pdu.AppendAck(r.ack[:0], hd.Probe, hd.Session, hd.Seq, r.now().UnixNano())
	if signer != nil {
		r.ack, _ = signer.Sign(r.ack)
	}
	return r.ack
}

// Watermark returns the watermark of a probe session.
func (r *Receiver) Watermark(probe uint16, session uint32) (Watermark, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sessions[sessionKey{probe, session}]
	if !ok {
		return Watermark{}, false
	}
	return s.wm, true
}

// Sessions lists the probe sessions the receiver remembers.
func (r *Receiver) Sessions() []SessionInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]SessionInfo, 0, len(r.sessions))
	for _, s := range r.sessions {
		out = append(out, SessionInfo{Probe: s.probe, Session: s.id, Watermark: s.wm, LastHeard: s.lastHeard,
			Closed: s.closed, Delivered: s.delivered, Skipped: s.skipped})
	}
	return out
}

// Stats returns the counters.
func (r *Receiver) Stats() ReceiverStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}
