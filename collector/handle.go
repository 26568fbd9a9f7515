package collector

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tmon-project/tmon/selection"

	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/reconcile"
	"github.com/tmon-project/tmon/transport"
)

// handle takes one verified PDU and, once it is handled, writes it to the
// journal, both under c.mu: the ticker's "everything is spooled" mark must
// not fall between the two.
func (c *Collector) handle(f *pdu.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.j != nil && !c.replaying {
		// A PDU is taken only when it can be made durable.
		err := c.j.flushPending()
		c.journalHealth(err)
		if err != nil {
			return errNotDurable
		}
	}
	if err := c.handleLocked(f); err != nil {
		return err
	}
	c.journalPDU(f)
	return nil
}

func (c *Collector) handleLocked(f *pdu.Frame) error {
	if err := c.checkJournalLimit(f); err != nil {
		return err
	}
	s, err := c.sessionOf(f.Header.Probe, f.Header.Session)
	if err != nil {
		return err
	}
	s.lastHeard = time.Now()
	if s.released && !c.replaying {
		switch f.Header.Type {
		case pdu.TypeFlowDef, pdu.TypeSightings, pdu.TypeCounters, pdu.TypeRTT, pdu.TypeTCPConn, pdu.TypeFTP:
			// Its flow ids went back: nothing of it refers to them any
			// more (a replay of a compaction's PDUs still may).
			return errUnknownFlow
		}
	}
	switch f.Header.Type {
	case pdu.TypeFlowDef:
		var r pdu.FlowDefReader
		var d pdu.FlowDef
		r.Reset(f.Body)
		for r.Next(&d) {
			if err := c.flowDef(s, &d); err != nil {
				return fmt.Errorf("collector: probe %s: %w", s.name, err)
			}
		}
		if err := r.Err(); err != nil {
			return fmt.Errorf("collector: probe %s: %w", s.name, err)
		}
	case pdu.TypeSightings:
		// Every flow must be defined, so that a refused PDU has changed
		// nothing; the probe sends it again, by then after the
		// definition.
		var r pdu.SightingReader
		var p pdu.Sighting
		maxSeen := c.maxSeen
		b := c.sightBuf()
		r.Reset(f.Body)
		for r.Next(&p) {
			if int(p.Flow) >= len(s.flows) || !s.flows[p.Flow].defined {
				c.dropSightBuf(b)
				return errUnknownFlow
			}
			if fl := &s.flows[p.Flow]; fl.oneWay {
				b = append(b, reconcile.Sighting{Flow: fl.id, Hop: fl.hop, Sig: p.Sig, TS: p.TS, Size: p.Size, Span: p.Span})
			}
			maxSeen = max(maxSeen, p.TS)
		}
		if err := r.Err(); err != nil {
			c.dropSightBuf(b)
			return fmt.Errorf("collector: probe %s: %w", s.name, err)
		}
		c.recAdd(b)
		c.maxSeen = maxSeen
	case pdu.TypeEvents:
		var r pdu.EventReader
		var e pdu.Event
		r.Reset(f.Body)
		for r.Next(&e) {
			switch e.Kind {
			case transport.EventGivenUp:
				c.givenUp(s, e.Detail)
			case selection.EventShed:
				c.shedNotice(s, e.Detail)
			}
			if c.replaying && !c.replayEvents {
				continue // in the spool before the restart
			}
			if err := c.sp.WriteEvent(time.Unix(0, e.TS), "probe:"+s.name, e.Kind, e.Detail); err != nil {
				return err
			}
		}
	case pdu.TypeClock:
		if err := c.clockPDU(s, f.Body); err != nil {
			return err
		}
	case pdu.TypeCounters:
		if err := c.counters(s, f.Body); err != nil {
			return err
		}
	case pdu.TypeRTT:
		if err := c.rtts(s, f.Body); err != nil {
			return err
		}
	case pdu.TypeTCPConn:
		if err := c.tcpConns(s, f.Body); err != nil {
			return err
		}
	case pdu.TypeFTP:
		if err := c.ftpTransfers(s, f.Body); err != nil {
			return err
		}
	case pdu.TypeBye:
		// Ended once every PDU before the bye has arrived too (the
		// watermark reaches its seq, HandleWatermark): a bye overtaking
		// a retried PDU must not stop the wait for it.
		s.bye, s.continues = f.Header.Seq, f.Continues()
		if s.continues {
			c.event(time.Now(), "probe.bye", fmt.Sprintf("probe %s session %08x ended cleanly; a new session follows (flow ids renewed)", s.name, f.Header.Session))
		} else {
			c.event(time.Now(), "probe.bye", fmt.Sprintf("probe %s session %08x ended cleanly", s.name, f.Header.Session))
		}
	}
	if t := f.Header.ProbeTime; t > c.maxTime {
		c.maxTime = t
	}
	return nil
}

// HandleWatermark learns that a probe session's data is complete up to w.
func (c *Collector) HandleWatermark(probe uint16, session uint32, w transport.Watermark) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.sessionOf(probe, session)
	if err != nil {
		return
	}
	s.lastHeard = time.Now()
	if w.ProbeTime > s.wm {
		s.wm = w.ProbeTime
	}
	if s.bye != 0 && w.Seq >= s.bye && !s.closed {
		s.closed = true
		c.releaseFlows(s)
	}
	if w.ProbeTime > c.maxTime {
		c.maxTime = w.ProbeTime
	}
	c.advance(time.Now())
	c.spoolHealth(c.cutData(time.Now()))
}

func (c *Collector) sessionOf(probe uint16, id uint32) (*session, error) {
	k := sessKey{probe, id}
	if s := c.sessions[k]; s != nil {
		return s, nil
	}
	pi, ok := c.cfg.ProbeByID(probe)
	if !ok {
		return nil, fmt.Errorf("collector: probe id %d is not in the configuration", probe)
	}
	if err := c.sessionVersion(id); err != nil {
		return nil, err
	}
	c.evictSession()
	s := &session{probe: pi, name: c.cfg.Probes[pi].Name, lastHeard: time.Now(), id: id}
	c.sessions[k] = s
	kind, detail := "probe.session", fmt.Sprintf("probe %s session %08x started", s.name, id)
	switch old := c.latest[pi]; {
	case old != nil && old.continues:
		detail = fmt.Sprintf("probe %s session %08x continues session %08x (flow ids renewed)", s.name, id, old.id)
	case old != nil:
		kind = "probe.restart"
		detail = fmt.Sprintf("probe %s restarted: session %08x replaces an earlier one", s.name, id)
	}
	if old := c.latest[pi]; old != nil {
		// Replaced, its bye seen or not (a restart; a redundant
		// collector that missed it): the probe has left that session, no
		// retry of it will come, and its flow ids go back to the table.
		c.releaseFlows(old)
	}
	c.latest[pi] = s
	c.log.Info(detail)
	c.event(time.Now(), kind, detail)
	return s, nil
}

// advance hands the reconciler, per probe, the time before which it has
// delivered every sighting. Probes silent for longer than the silence
// limit, and probes that said goodbye, are not waited for.
func (c *Collector) advance(now time.Time) {
	if c.maxTime == 0 {
		return // nothing heard yet
	}
	// A probe that is not waited for counts as past everything seen.
	all := c.maxTime + c.maxTO + 1
	wm := c.wmBuf[:0]
	for pi := range c.cfg.Probes {
		w := all
		switch s := c.latest[pi]; {
		case !c.hasHop(pi):
		case s == nil:
			if now.Sub(c.started) < c.silent {
				w = math.MinInt64 // not heard from yet: wait for it
			}
		case s.ended():
		case now.Sub(s.lastHeard) > c.patient:
			// Silent for longer than the probe retries: what it could
			// not deliver it gave up (its notice will say so, too late
			// for the records decided now).
		default:
			w = s.wm
		}
		wm = append(wm, w)
	}
	c.wmBuf = wm
	// Each class waits for the probes of its own hops.
	c.recAdvance(wm)
}

func (c *Collector) hasHop(pi int) bool {
	for _, in := range c.cfg.Probes[pi].Interfaces {
		if in.Hop != "" {
			return true
		}
	}
	return false
}

// tick runs every second: it advances over silent probes and cuts the
// flows and events files at interval boundaries.
func (c *Collector) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.liveness(now)
	c.advance(now)
	c.ageFlows()
	err := c.cutData(now)
	c.reportReconcile(now, false)
	c.spoolHealth(errors.Join(err, c.sp.Cut(now)))
	c.journalTick()
}

// Close decides what can be decided and closes the spool. When every
// probe has ended, that is everything; otherwise records still waiting for
// a probe are not written (a loss count made up at shutdown would be
// wrong), and an event says how many.
func (c *Collector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopReconciling()
	c.advance(time.Now())
	done := true
	for pi := range c.cfg.Probes {
		if s := c.latest[pi]; c.hasHop(pi) && (s == nil || !s.ended()) {
			done = false
		}
	}
	var err error
	if done {
		err = c.rec.Flush()
	}
	resetJournal := c.j != nil && done && err == nil && c.rec.Counters().Live == 0
	c.reportReconcile(time.Now(), true)
	k := c.rec.Counters()
	detail := fmt.Sprintf("sightings=%d completed=%d lost=%d missed=%d duplicates=%d clashes=%d late=%d invalid=%d forced=%d undecided=%d",
		k.Sightings, k.Completed, k.Lost, k.Missed, k.Duplicates, k.Clashes, k.Late, k.Invalid, k.Forced, boolInt(!done)*k.Live)
	c.log.Info("collector stopping", "reconcile", detail)
	c.event(time.Now(), "stop", detail)
	err = errors.Join(err, c.sp.Close())
	if c.j != nil {
		if resetJournal && err == nil {
			// Everything is in the spool: nothing to replay.
			err = c.j.reset()
		}
		err = errors.Join(err, c.j.close())
	}
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c *Collector) event(t time.Time, kind, detail string) {
	if c.replaying {
		return // written before the restart
	}
	if err := c.sp.WriteEvent(t, "collector:"+c.self, kind, detail); err != nil {
		c.log.Error("writing event", "err", err)
	}
}

// flowDef registers a probe flow id.
func (c *Collector) flowDef(s *session, d *pdu.FlowDef) error {
	if int(d.Key.Class) >= len(c.cfg.Classes) {
		return fmt.Errorf("flow %d: class %d is not in the configuration", d.ID, d.Key.Class)
	}
	if err := c.checkFlowLimit(s, d.ID); err != nil {
		return err
	}
	if n := int(d.ID) + 1; n > len(s.flows) {
		s.flows = slices.Grow(s.flows, n-len(s.flows))[:n]
	}
	ref := flowRef{defined: true}
	cl := &c.cfg.Classes[d.Key.Class]
	// Every instance gets the collector flow id shared by every probe that
	// sees it (counters and the other analyses refer to it); one-way flows
	// at a hop of their path also go to the reconciler.
	id, known := c.global[d.Key]
	if !known && c.replayKept {
		// Defined before the compaction and forgotten since: no PDU the
		// replay meets refers to it any more (ageing.go).
		return nil
	}
	if !known {
		id = c.nextFlow
		c.nextFlow++
		c.setGlobal(d.Key, id)
		if cl.OneWay != nil {
			// Cannot fail: the class exists and is one-way.
			class := int(d.Key.Class)
			c.recDo(func(r *reconcile.Reconciler) { r.AddFlow(id, class) })
		}
		if !c.replaying || c.replayFlows {
			if err := c.sp.WriteFlow(time.Now(), id, cl.Name, keyText(d)); err != nil {
				return err
			}
		}
	}
	ref.id = id
	if cl.OneWay != nil {
		if hop, ok := cl.HopIndex(s.probe, int(d.Iface)); ok {
			ref.oneWay, ref.hop = true, uint8(hop)
		}
	}
	ref.iface = d.Iface
	if !s.released { // a released session's ids refer to nothing (replayed PDUs of it)
		if old := s.flows[d.ID]; old.defined {
			c.unref(old.id)
		}
		c.ref(id)
	} else if e := c.byID[id]; !known && e != nil {
		e.mark = c.dataMark() // referred to by nothing: waits to be forgotten
		c.idleFlows = append(c.idleFlows, idleFlow{id, e.mark})
	}
	s.flows[d.ID] = ref
	return nil
}

// keyText renders the granular values of a flow for the spool: "ip.src=…
// l4.dport=…" without the class, which has its own column.
func keyText(d *pdu.FlowDef) string {
	k := d.Key.String()
	if i := strings.IndexByte(k, ' '); i >= 0 {
		return k[i+1:]
	}
	return ""
}
