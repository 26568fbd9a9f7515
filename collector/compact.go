package collector

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/reconcile"
	"github.com/tmon-project/tmon/transport"
)

// Compaction keeps the journal bounded while probes run. When the journal
// passes c.compactAt bytes, and every flow and event row handled so far is
// in a spool file, it is rewritten as
//
//	'C' snapshot: the flow registry (collector flow ids and each session's
//	    probe flow ids), each session's duplicate window floor and
//	    watermark, bye seen, the probes' latest clock records, the last
//	    interval written;
//	'P' only the PDUs still needed: those whose sightings may still reach
//	    an open interval (a sighting at or after the horizon, below),
//	    events with a given-up notice reaching the horizon, and every PDU
//	    above its session's duplicate-window floor (delivered out of order:
//	    the window remembers them one by one);
//	'S' every row of those PDUs is in a spool file.
//
// into a new file, synced and renamed over the journal (atomic: a kill
// leaves the old journal or the new one). The horizon is the start of the
// first interval not yet closed (the last interval written, or what the
// reconciler's watermark has closed) minus twice the largest one-way
// timeout plus interval: a record that reaches an open interval spans at
// most one timeout, so every sighting it holds is kept, and a kept
// sighting whose partner was dropped can only touch a closed interval,
// which is not written again.
//
// At replay the snapshot restores the registry and clocks first, then the
// kept PDUs are replayed as before (the reconciler rebuilds its open
// records from them), and last the snapshot's floors and watermarks are
// applied: the receiver learns each session's floor through a heartbeat
// it replays (so retransmissions of every PDU acked before are
// recognised), the collector its sessions' watermarks.
const defaultCompactAt = 64 << 20

const recSnapshot = 'C' // payload: JSON snapshot

type snapshot struct {
	NextFlow uint32      `json:"next_flow"`
	Flows    []snapFlow  `json:"flows"` // collector flow ids
	Sessions []snapSess  `json:"sessions"`
	Clocks   []snapClock `json:"clocks,omitempty"`
	MaxTime  int64       `json:"max_time"`
	Skip     int64       `json:"skip"` // start of the last interval written
	// Gaps: the probes' given-up spans the reconciler still holds; Sheds
	// their shedding notices by probe name (the shedding gaps are rebuilt
	// from them). The PDUs that told them may be compacted away.
	Gaps  []reconcile.Gap        `json:"gaps,omitempty"`
	Sheds map[string][]shedStart `json:"sheds,omitempty"`
}

type snapFlow struct {
	ID  uint32   `json:"id"`
	Key flow.Key `json:"key"`
}

type snapSess struct {
	Probe   uint16 `json:"probe"`
	Session uint32 `json:"session"`
	// Receiver: every seq below Floor is settled; WmTime the probe time of
	// its watermark. Known false: the receiver did not remember it.
	Known  bool   `json:"known"`
	Floor  uint32 `json:"floor"`
	WmTime int64  `json:"wm_time"`
	// Collector side.
	Wm     int64 `json:"wm"`
	Closed bool  `json:"closed"`
	// Continues: the bye said a new session follows (session.continues).
	Continues bool `json:"continues,omitempty"`
	// Released: its flow ids went back (releaseFlows); Refs are kept for
	// the replay of its PDUs the compaction kept (ageing.go).
	Released bool      `json:"released,omitempty"`
	Latest   bool      `json:"latest"`
	Refs     []snapRef `json:"refs,omitempty"` // by probe flow id
}

type snapRef struct {
	Defined bool   `json:"d,omitempty"`
	OneWay  bool   `json:"o,omitempty"`
	ID      uint32 `json:"i,omitempty"`
	Hop     uint8  `json:"h,omitempty"`
	Iface   uint8  `json:"f,omitempty"`
}

type snapClock struct {
	Probe int       `json:"probe"`
	Clock pdu.Clock `json:"clock"`
}

// maybeCompact compacts the journal when it is over its limit. c.mu is
// held and the spool holds every row handled so far.
func (c *Collector) maybeCompact() {
	if c.j == nil || c.rcv == nil || c.j.bytes() < c.compactLimit() {
		return
	}
	if err := c.compact(); err != nil {
		c.log.Error("collector: journal compaction", "err", err)
	}
}

func (c *Collector) compactLimit() int64 {
	limit := c.compactAt
	if limit <= 0 {
		limit = defaultCompactAt
	}
	// Twice what the last compaction kept: a large kept part must not make
	// every tick compact.
	return max(limit, 2*c.j.kept)
}

// snapshotNow describes the collector's and the receiver's state.
func (c *Collector) snapshotNow() *snapshot {
	sn := &snapshot{NextFlow: c.nextFlow, MaxTime: c.maxTime, Skip: max(c.sink.skip, c.sink.last)}
	for k, id := range c.global {
		sn.Flows = append(sn.Flows, snapFlow{ID: id, Key: k})
	}
	slices.SortFunc(sn.Flows, func(a, b snapFlow) int { return cmp.Compare(a.ID, b.ID) })
	rs := make(map[sessKey]transport.SessionInfo)
	for _, si := range c.rcv.Sessions() {
		rs[sessKey{si.Probe, si.Session}] = si
	}
	for k, s := range c.sessions {
		ss := snapSess{Probe: k.probe, Session: k.session, Wm: s.wm, Closed: s.closed, Continues: s.continues, Latest: c.latest[s.probe] == s, Released: s.released}
		if si, ok := rs[k]; ok {
			ss.Known, ss.Floor, ss.WmTime = true, si.Watermark.Seq+1, si.Watermark.ProbeTime
			delete(rs, k)
		}
		for _, f := range s.flows {
			ss.Refs = append(ss.Refs, snapRef{Defined: f.defined, OneWay: f.oneWay, ID: f.id, Hop: f.hop, Iface: f.iface})
		}
		sn.Sessions = append(sn.Sessions, ss)
	}
	for k, si := range rs { // heard, never delivered anything to the collector
		sn.Sessions = append(sn.Sessions, snapSess{Probe: k.probe, Session: k.session, Known: true,
			Floor: si.Watermark.Seq + 1, WmTime: si.Watermark.ProbeTime})
	}
	// Sessions grow with the probe's start time: the latest last.
	slices.SortFunc(sn.Sessions, func(a, b snapSess) int {
		return cmp.Or(cmp.Compare(a.Probe, b.Probe), cmp.Compare(a.Session, b.Session))
	})
	c.clk.mu.Lock()
	for p, k := range c.clk.m {
		sn.Clocks = append(sn.Clocks, snapClock{Probe: p, Clock: k})
	}
	c.clk.mu.Unlock()
	slices.SortFunc(sn.Clocks, func(a, b snapClock) int { return cmp.Compare(a.Probe, b.Probe) })
	for _, g := range c.rec.Gaps() {
		if g.Shed == 0 {
			sn.Gaps = append(sn.Gaps, g)
		}
	}
	for pi, st := range c.sheds {
		if len(st) > 0 {
			if sn.Sheds == nil {
				sn.Sheds = map[string][]shedStart{}
			}
			sn.Sheds[c.cfg.Probes[pi].Name] = st
		}
	}
	return sn
}

// horizon is the earliest sighting time a kept PDU must have.
func (c *Collector) horizon(sn *snapshot) int64 {
	iv := int64(c.cfg.Interval)
	open := int64(math.MinInt64)
	if sn.Skip != math.MinInt64 {
		open = sn.Skip + iv
	}
	if wm := c.rec.Watermark(); wm > math.MinInt64/2 && wm < math.MaxInt64/2 {
		open = max(open, floorDiv(wm-c.maxTO-1, iv)*iv)
	}
	if open < math.MinInt64/2 {
		return math.MinInt64
	}
	return open - 2*c.maxTO
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// keep tells whether the journalled datagram b is still needed.
func keep(b []byte, floors map[sessKey]uint32, horizon int64) bool {
	f, err := pdu.Parse(b)
	if err != nil {
		return false
	}
	h := &f.Header
	if fl, ok := floors[sessKey{h.Probe, h.Session}]; ok && h.Seq >= fl {
		return true // in the duplicate window, above its floor
	}
	switch h.Type {
	case pdu.TypeSightings:
		var r pdu.SightingReader
		var p pdu.Sighting
		r.Reset(f.Body)
		for r.Next(&p) {
			if p.TS >= horizon {
				return true
			}
		}
		return r.Err() != nil
	case pdu.TypeEvents:
		var r pdu.EventReader
		var e pdu.Event
		r.Reset(f.Body)
		for r.Next(&e) {
			if e.Kind != transport.EventGivenUp {
				continue
			}
			if g, err := transport.ParseGivenUp(e.Detail); err != nil || g.To >= horizon {
				return true
			}
		}
	}
	return false
}

// compact rewrites the journal: see maybeCompact. c.mu is held.
func (c *Collector) compact() error {
	c.recBarrier() // the reconciler's state goes with the journal's PDUs
	sn := c.snapshotNow()
	snap, err := json.Marshal(sn)
	if err != nil {
		return err
	}
	hz := c.horizon(sn)
	floors := make(map[sessKey]uint32, len(sn.Sessions))
	for _, s := range sn.Sessions {
		if s.Known {
			floors[sessKey{s.Probe, s.Session}] = s.Floor
		}
	}
	old, err := os.Open(c.j.path)
	if err != nil {
		return err
	}
	recs, _, err := readJournal(old)
	old.Close()
	if err != nil {
		return err
	}
	tmp := c.j.path + ".new"
	nj, err := createJournal(tmp)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		nj.f.Close()
		os.Remove(tmp)
		return err
	}
	if err := nj.append(recSnapshot, snap); err != nil {
		return fail(err)
	}
	kept := 0
	for _, r := range recs {
		if r.kind == recPDU && keep(r.payload, floors, hz) {
			if err := nj.append(recPDU, r.payload); err != nil {
				return fail(err)
			}
			kept++
		}
	}
	if err := nj.append(recSpooled, nil); err != nil {
		return fail(err)
	}
	if err := nj.f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, c.j.path); err != nil {
		return fail(err)
	}
	if d, err := os.Open(filepath.Dir(c.j.path)); err == nil {
		d.Sync()
		d.Close()
	}
	c.syncMu.Lock() // the syncer may be syncing the old file
	c.j.mu.Lock()
	before := c.j.size
	c.j.f.Close()
	c.j.f, c.j.size, c.j.kept, c.j.pending, c.j.broken = nj.f, nj.size, nj.size, nil, false
	c.j.mu.Unlock()
	c.syncMu.Unlock()
	c.compactions++
	c.log.Info("collector: journal compacted", "bytes_before", before, "bytes_after", nj.size,
		"pdus_kept", kept, "horizon", hz)
	return nil
}

// restore applies the registry part of a snapshot before the replay.
func (c *Collector) restore(sn *snapshot) error {
	c.nextFlow = max(c.nextFlow, sn.NextFlow)
	for _, f := range sn.Flows {
		if _, ok := c.global[f.Key]; ok {
			continue
		}
		if int(f.Key.Class) >= len(c.cfg.Classes) {
			return fmt.Errorf("snapshot: flow %d: class %d is not in the configuration", f.ID, f.Key.Class)
		}
		c.setGlobal(f.Key, f.ID)
		if c.cfg.Classes[f.Key.Class].OneWay == nil {
			continue
		}
		if err := c.rec.AddFlow(f.ID, int(f.Key.Class)); err != nil {
			return fmt.Errorf("snapshot: flow %d: %w", f.ID, err)
		}
	}
	for _, ss := range sn.Sessions {
		pi, ok := c.cfg.ProbeByID(ss.Probe)
		if !ok {
			continue
		}
		k := sessKey{ss.Probe, ss.Session}
		s := c.sessions[k]
		if s == nil {
			s = &session{probe: pi, name: c.cfg.Probes[pi].Name, id: ss.Session}
			c.sessions[k] = s
		}
		s.lastHeard = c.started
		// A released session's flow ids went back (releaseFlows): its
		// refs, kept for the replay of its PDUs, hold no slot nor flow.
		// (A closed session of an older snapshot has none.)
		released := ss.Released || ss.Closed
		for i, r := range ss.Refs {
			if i >= len(s.flows) {
				s.flows = append(s.flows, flowRef{})
				if !released {
					c.flowSlots++ // held against maxFlows as when first defined
				}
			}
			if r.Defined {
				s.flows[i] = flowRef{defined: true, oneWay: r.OneWay, id: r.ID, hop: r.Hop, iface: r.Iface}
				if !released {
					c.ref(r.ID)
				}
			}
		}
		if released && !s.released {
			s.released = true
			c.idleSessions = append(c.idleSessions, idleSession{s, sn.MaxTime})
		}
		if ss.Latest || c.latest[pi] == nil {
			c.latest[pi] = s
		}
	}
	// Flows no session refers to wait to be forgotten, from the
	// snapshot's data time (a conservative mark).
	for id, e := range c.byID {
		if e.refs == 0 {
			e.mark = max(sn.MaxTime, 1)
			c.idleFlows = append(c.idleFlows, idleFlow{id, e.mark})
		}
	}
	for _, k := range sn.Clocks {
		if k.Probe >= 0 && k.Probe < len(c.cfg.Probes) {
			c.clk.set(k.Probe, k.Clock)
		}
	}
	for _, g := range sn.Gaps {
		c.rec.AddGap(g)
	}
	for name, st := range sn.Sheds {
		if pi, ok := c.cfg.ProbeByName(name); ok {
			c.sheds[pi] = st
			c.applyShed(pi)
		}
	}
	return nil
}

// settle applies the floors and watermarks of a snapshot after the replay
// of the PDUs that follow it.
func (c *Collector) settle(sn *snapshot) {
	for _, ss := range sn.Sessions {
		if ss.Known && ss.Floor > 0 {
			hb := pdu.AppendControl(nil, pdu.Header{Type: pdu.TypeHeartbeat, Probe: ss.Probe, Session: ss.Session,
				Seq: ss.Floor - 1, Floor: ss.Floor, ProbeTime: ss.WmTime})
			if err := c.rcv.Replay(hb, c); err != nil {
				c.log.Warn("collector: journal: snapshot floor refused", "err", err)
			}
		}
		s := c.sessions[sessKey{ss.Probe, ss.Session}]
		if s == nil {
			continue
		}
		s.wm = max(s.wm, ss.Wm)
		s.closed = s.closed || ss.Closed
		s.continues = s.continues || ss.Continues
	}
	c.maxTime = max(c.maxTime, sn.MaxTime)
}
