package transport

import (
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
)

// Pending is what a Policy sees of a PDU that one collector has not acked.
type Pending struct {
	Seq       uint32
	Type      pdu.Type
	ProbeTime int64     // the PDU's data time (ns)
	Submitted time.Time // when Sender.Send took it
	Sends     int       // transmissions to this collector so far, the first included
	// Keep is set by a policy to retry the PDU until acked, whatever
	// happens later (TrafMonPolicy: the break-border window).
	Keep bool
}

// Policy decides when a PDU is sent again to one collector and when it is
// given up: the regulation of trafMon §1.5. A Sender makes one Policy per
// collector (long-retry mode, for one, is a per-collector state) and calls it
// from that collector's goroutine only, under its lock: it must not block.
//
// TrafMonPolicy, the default, is the full regulation (long-retry mode,
// break-border window); BasicPolicy the minimal one. The bandwidth cap and
// the minimum gap are the sender's: they hold whatever the policy.
type Policy interface {
	// Timeout returns how long to wait for an ack after the latest send of
	// p (p.Sends counts it).
	Timeout(p *Pending, now time.Time) time.Duration
	// GiveUp is called when p's ack timeout expired and reports whether p
	// is dropped instead of being sent again.
	GiveUp(p *Pending, now time.Time) bool
	// Acked tells the policy that the collector acked p.
	Acked(p *Pending, now time.Time)
}

// BasicPolicy retries with growing timeouts — InitialTimeout, then each
// timeout is the previous one × TimeoutMultiplier + TimeoutIncrement — for
// MaxRetries retries; after that it keeps retrying at the last (maximum)
// timeout until the PDU is FinalTimeout old, then gives it up. Flow
// definitions are never given up: sightings of an unknown flow are useless
// to a collector.
type BasicPolicy struct {
	timeouts []time.Duration // timeouts[i]: after send i+1; the last is the maximum
	final    time.Duration
}

// maxTimeoutSteps bounds the timeout table against absurd MaxRetries.
const maxTimeoutSteps = 64

// NewBasicPolicy returns the policy for cfg (defaults filled, see
// NewSender). It is stateless and may be shared by collectors.
func NewBasicPolicy(cfg conf.Transport) *BasicPolicy {
	n := min(max(cfg.MaxRetries, 0), maxTimeoutSteps) + 1
	p := &BasicPolicy{timeouts: make([]time.Duration, n), final: cfg.FinalTimeout}
	t := cfg.InitialTimeout
	for i := range p.timeouts {
		p.timeouts[i] = t
		t = time.Duration(float64(t)*cfg.TimeoutMultiplier) + cfg.TimeoutIncrement
	}
	return p
}

// Timeout implements Policy.
func (b *BasicPolicy) Timeout(p *Pending, _ time.Time) time.Duration {
	i := min(max(p.Sends-1, 0), len(b.timeouts)-1)
	return b.timeouts[i]
}

// GiveUp implements Policy.
func (b *BasicPolicy) GiveUp(p *Pending, now time.Time) bool {
	if p.Type == pdu.TypeFlowDef || p.Sends < len(b.timeouts) {
		return false // retried forever, or retries left
	}
	return now.Sub(p.Submitted) >= b.final
}

// Acked implements Policy.
func (b *BasicPolicy) Acked(*Pending, time.Time) {}

// MaxTimeout returns the timeout used once the retries are exhausted.
func (b *BasicPolicy) MaxTimeout() time.Duration { return b.timeouts[len(b.timeouts)-1] }

// TrafMonPolicy is trafMon's full regulation (§1.5, §3.14), one instance
// per collector:
//
//   - Normal mode: as BasicPolicy, a PDU is retried with the growing
//     timeouts for MaxRetries retries.
//   - The first PDU whose last timeout expires without ack (exhausted)
//     turns long-retry mode on. That PDU, the pilot, is then retried at
//     InitialTimeout: it finds out when the collector is back. Every other
//     PDU, new ones included, is retried at the maximum timeout (the slow
//     pace).
//   - A sightings PDU is given up once it has had all its retries and is
//     FinalTimeout old — unless it belongs to the break-border window: the
//     PDUs submitted within BreakBorder before long-retry mode began, the
//     observations of the traffic just before the break, which are kept
//     and retried at the slow pace until delivered.
//   - Flow definitions, events and the bye (key records) are never given
//     up.
//   - The first ack ends long-retry mode: normal timeouts again.
type TrafMonPolicy struct {
	basic   *BasicPolicy
	initial time.Duration
	border  time.Duration

	long       bool
	pilot      uint32    // the exhausted PDU retried from the initial timeout
	pilotSends int       // sends of the pilot since it was elected
	longSince  time.Time // when long-retry mode began
	lastAck    time.Time
}

// NewTrafMonPolicy returns the policy of one collector for cfg (defaults
// filled, see NewSender).
func NewTrafMonPolicy(cfg conf.Transport) *TrafMonPolicy {
	return &TrafMonPolicy{basic: NewBasicPolicy(cfg), initial: cfg.InitialTimeout, border: cfg.BreakBorder}
}

// Timeout implements Policy. In long-retry mode the PDUs other than the
// pilot back off: from the maximum timeout, their timeout doubles at each
// send, up to the final timeout (at least the maximum timeout), so that a
// collector that is down — a redundant one, say — costs little traffic
// while the pilot still finds out within the initial timeout when it is
// back (the sender then retries them all at once, peer.modeChange).
func (t *TrafMonPolicy) Timeout(p *Pending, now time.Time) time.Duration {
	switch {
	case !t.long:
		return t.basic.Timeout(p, now)
	case p.Seq == t.pilot:
		// The pilot backs off too, but only up to the maximum timeout:
		// it is what finds out that the collector is back.
		d := t.initial << min(t.pilotSends, 20)
		t.pilotSends++
		return min(d, max(t.initial, t.basic.MaxTimeout()))
	}
	d := t.basic.MaxTimeout()
	limit := max(d, t.basic.final)
	for k := p.Sends - 1; k > 0 && d < limit; k-- {
		d *= 2
	}
	return min(d, limit)
}

// GiveUp implements Policy.
func (t *TrafMonPolicy) GiveUp(p *Pending, now time.Time) bool {
	if p.Sends < len(t.basic.timeouts) {
		return false
	}
	switch {
	case !t.long && now.Sub(t.lastAck) < t.basic.MaxTimeout():
		// The collector acked something since this PDU's last send: the
		// link works, only this PDU's ack is late or lost. No long-retry
		// mode; it goes on at the maximum timeout.
	case !t.long:
		t.long, t.pilot, t.longSince, t.pilotSends = true, p.Seq, now, 0
	case t.pilot == 0:
		t.pilot, t.pilotSends = p.Seq, 0
	}
	if p.Keep || p.Type != pdu.TypeSightings {
		return false
	}
	if t.inBorder(p) {
		p.Keep = true // also once long-retry mode is over
		return false
	}
	if now.Sub(p.Submitted) < t.basic.final {
		return false
	}
	if p.Seq == t.pilot {
		// The next expiry elects a new pilot among those left.
		t.pilot = 0
	}
	return true
}

// inBorder reports whether p was submitted within the break-border window
// before the latest long-retry mode began.
func (t *TrafMonPolicy) inBorder(p *Pending) bool {
	return !t.longSince.IsZero() && !p.Submitted.After(t.longSince) && t.longSince.Sub(p.Submitted) <= t.border
}

// Acked implements Policy: any ack ends long-retry mode.
func (t *TrafMonPolicy) Acked(_ *Pending, now time.Time) {
	t.long, t.pilot, t.lastAck = false, 0, now
}

// LongRetry reports whether long-retry mode is on, and since when.
func (t *TrafMonPolicy) LongRetry() (bool, time.Time) { return t.long, t.longSince }
