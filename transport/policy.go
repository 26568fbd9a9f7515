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
}

// Policy decides when a PDU is sent again to one collector and when it is
// given up: the regulation of trafMon §1.5. A Sender makes one Policy per
// collector (long-retry mode, for one, is a per-collector state) and calls it
// from that collector's goroutine only, under its lock: it must not block.
//
// BasicPolicy is the minimal regulation; the full one (long-retry mode,
// break-border window, bandwidth cap) replaces it through
// SenderOptions.Policy without touching the sender.
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
