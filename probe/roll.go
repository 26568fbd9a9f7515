package probe

import (
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/tmon-project/tmon/conf"
)

// Rolling the session before the collectors run out of flow ids
// (docs/transport.md, "Rolling the session"). A probe announces every
// flow instance under a new id and never reuses one (a record in flight
// keeps its meaning); a collector holds every id of a session until the
// session ends, and refuses ids past <limits maxFlows> over all sessions —
// it does not ack the PDU, and the probe would wait for that ack for ever.
// So once a session has announced its share of maxFlows, the probe ends
// the epoch at the next interval boundary (data time) exactly as a switch
// to a new version does — no packet lost or analysed twice — and goes on
// with the same version as a new session, whose ids start again at 0; the
// collectors release the old session's ids once it has said goodbye and
// everything before the goodbye has arrived.

// cutPlan arms the inputs' cuts at the earlier of a switch's validFrom
// (armSwitch) and a roll's instant (roller), and tells at the epoch's end
// which of the two ended it.
type cutPlan struct {
	mu       sync.Mutex
	cuts     []*cutSource
	switchAt int64 // MaxInt64: none armed
	rollAt   int64
}

func newCutPlan(cuts []*cutSource) *cutPlan {
	return &cutPlan{cuts: cuts, switchAt: math.MaxInt64, rollAt: math.MaxInt64}
}

// reset starts an epoch: nothing armed.
func (p *cutPlan) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.switchAt, p.rollAt = math.MaxInt64, math.MaxInt64
	for _, c := range p.cuts {
		c.reset()
	}
}

// armSwitch (re)arms the switch's instant.
func (p *cutPlan) armSwitch(at int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.switchAt = at
	p.apply()
}

// armRoll arms the roll's instant.
func (p *cutPlan) armRoll(at int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rollAt = at
	p.apply()
}

func (p *cutPlan) apply() {
	at := min(p.switchAt, p.rollAt)
	for _, c := range p.cuts {
		c.arm(at)
	}
}

// ended says whether the epoch ended at a cut, whether that cut was a
// roll's (a switch armed at the same instant wins: its new session is a
// roll too), and the instant.
func (p *cutPlan) ended() (cut, roll bool, at int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !anyCut(p.cuts) {
		return false, false, 0
	}
	if p.rollAt < p.switchAt {
		return true, true, p.rollAt
	}
	return true, false, p.switchAt
}

// roller arms a roll once the session's ids reach its share.
type roller struct {
	plan  *cutPlan
	after uint32 // ids a session announces before it rolls
	iv    int64  // interval (ns): the roll is at the next boundary
	log   *slog.Logger
	armed bool
}

func newRoller(cfg *conf.Config, plan *cutPlan, log *slog.Logger) *roller {
	return &roller{plan: plan, after: uint32(cfg.SessionFlowShare()), iv: int64(cfg.Interval), log: log}
}

// check runs in the analyser loop after each batch with the ids announced
// so far. The cut is at the interval boundary after the inputs' clocks —
// the sieves read ahead of the analyser, and a cut behind what they read
// would come only at their next packet. What they read meanwhile (at most
// a ring's worth, at full-speed replay) is still this session's: the share
// is half the table for that.
func (r *roller) check(ids uint32) {
	if r == nil || r.armed || ids < r.after {
		return
	}
	var clock int64
	for _, c := range r.plan.cuts {
		clock = max(clock, c.src.Clock())
	}
	if clock <= 0 || clock == math.MaxInt64 {
		return
	}
	r.armed = true
	at := (clock/r.iv + 1) * r.iv
	r.plan.armRoll(at)
	r.log.Info("probe: flow ids: this session has announced its share of the collectors' flow table; a new session starts at the next interval boundary",
		"ids", ids, "share", r.after, "at", time.Unix(0, at).UTC().Format(time.RFC3339Nano))
}

// rollNote is the probe.roll event's detail.
func rollNote(cfg *conf.Config, ids uint64, at int64) string {
	return fmt.Sprintf("session ended at the first packet stamped at or after %s after announcing %d flow ids, its share (%d) of the collectors' <limits maxFlows=%d> over %d probes: same version %q, new session",
		time.Unix(0, at).UTC().Format(time.RFC3339Nano), ids, cfg.SessionFlowShare(), cfg.Limits.Resolved().MaxFlows, len(cfg.Probes), cfg.Version)
}
