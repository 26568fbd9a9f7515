package collector

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/reconcile"
)

// Ageing of the flow dictionary (docs/transport.md, "Limits"). The
// collector gives every flow instance (flow.Key) a collector flow id, which
// the spool's rows carry. On a busy link with port-granular classes the
// keys come and go for as long as the collector runs; keeping every one it
// ever saw (~200 bytes each) would grow without end. A key is forgotten
// once
//
//   - no session refers to it any more: a session's flow ids go back when it
//     ended or another session of its probe replaced it (releaseFlows), and
//     a probe rolls to a new session before its ids fill the table
//     (probe/roll.go), so long-lived flows are announced again and keep
//     their key alive; and
//   - nothing of it can be waiting in the reconciler: every probe's
//     watermark is past the data time at which the last reference went
//     (mark) by ageMargin — every record of it is decided, every interval
//     it had sightings in written, and no PDU a compaction keeps holds a
//     sighting of it.
//
// A key seen again afterwards gets a new collector flow id and a new flows
// row; the loader maps a key it knows under a new collector id to the same
// database flow (loader/flows.go), so no figure changes. Ids are never
// reused: one that is forgotten is retired at the reconciler
// (reconcile.RemoveFlow), whose table frees its pages.
//
// Forgetting is a decision of the ticker, taken at a wall-clock moment, so
// a restart could not take it again at the same point of the journal's
// replay: each one is journaled ('A' record: the ids), written before any
// later PDU record, and the replay applies it there. A compaction's
// snapshot holds only the keys not forgotten; the PDUs it keeps that
// define a forgotten key (out-of-order deliveries of a released session)
// do not define it again (replayKept).
//
// A released session also keeps its probe flow ids → collector flow ids
// until the same margin has passed, though it takes no new PDU: a
// compaction may keep its last sightings PDUs (they can still reach an open
// interval), and their replay after a restart must find their flows.

const recAged = 'A' // payload: the collector flow ids forgotten, uint32 BE each

// flowEntry is what the collector keeps of a collector flow id.
type flowEntry struct {
	key  flow.Key
	refs int32 // session flow ids defined as it, in sessions not released
	mark int64 // data time at which refs fell to 0
}

// idleFlow and idleSession wait in data-time order for ageMargin to pass.
type idleFlow struct {
	id   uint32
	mark int64
}

type idleSession struct {
	s    *session
	mark int64
}

// ageMargin is the data time after its mark at which a flow is forgotten:
// past the reconciler's reach (timeout, interval, duplicate window, recent
// completions) and past the horizon of a compaction (2 × (timeout +
// interval) before the first open interval).
func (c *Collector) ageMargin() int64 {
	extra := int64(0)
	for i := range c.cfg.Classes {
		if ow := c.cfg.Classes[i].OneWay; ow != nil {
			extra = max(extra, int64(ow.DupWindow), int64(ow.MaxTransit))
		}
	}
	return 4*c.maxTO + extra
}

// dataMark is the latest data time the collector has seen: no sighting
// delivered so far is later.
func (c *Collector) dataMark() int64 { return max(c.maxTime, c.maxSeen) }

// ref counts one more session flow id defined as collector flow id. c.mu
// is held.
func (c *Collector) ref(id uint32) {
	if e := c.byID[id]; e != nil {
		e.refs++
	}
}

// unref counts one less; at none, the flow waits to be forgotten. c.mu is
// held.
func (c *Collector) unref(id uint32) {
	e := c.byID[id]
	if e == nil || e.refs <= 0 {
		return
	}
	if e.refs--; e.refs == 0 {
		e.mark = c.dataMark()
		c.idleFlows = append(c.idleFlows, idleFlow{id, e.mark})
	}
}

// ageFlows forgets the flows and drops the released sessions' flow ids
// whose margin has passed every probe's watermark. The ticker calls it
// after advance. c.mu is held.
func (c *Collector) ageFlows() {
	if c.replaying || len(c.wmBuf) == 0 {
		return
	}
	clock := slices.Min(c.wmBuf)
	margin := c.ageMargin()
	if clock < math.MinInt64/2 || clock-margin < math.MinInt64/2 {
		return
	}
	due := clock - margin
	for len(c.idleSessions) > 0 && c.idleSessions[0].mark < due {
		if s := c.idleSessions[0].s; s.released {
			s.flows = nil
		}
		c.idleSessions = c.idleSessions[1:]
	}
	n := 0
	var ids []uint32
	for ; n < len(c.idleFlows) && c.idleFlows[n].mark < due; n++ {
		q := c.idleFlows[n]
		if e := c.byID[q.id]; e != nil && e.refs == 0 && e.mark == q.mark {
			ids = append(ids, q.id)
		}
	}
	if len(ids) > 0 && c.j != nil {
		b := make([]byte, 0, 4*len(ids))
		for _, id := range ids {
			b = binary.BigEndian.AppendUint32(b, id)
		}
		if err := c.j.append(recAged, b); err != nil {
			c.journalHealth(err)
			return // not journaled: not forgotten; tried again at the next tick
		}
	}
	c.idleFlows = c.idleFlows[n:]
	c.forget(ids)
}

// forget drops flows from the dictionary and retires their ids at the
// reconciler. c.mu is held.
func (c *Collector) forget(ids []uint32) {
	var retire []uint32
	for _, id := range ids {
		e := c.byID[id]
		if e == nil {
			continue
		}
		if e.refs != 0 {
			c.log.Warn("collector: forgetting a flow still referred to (journal replay)", "flow", id, "refs", e.refs)
		}
		delete(c.global, e.key)
		delete(c.byID, id)
		c.forgotten++
		if c.cfg.Classes[e.key.Class].OneWay != nil {
			retire = append(retire, id)
		}
	}
	if len(retire) > 0 {
		c.recDo(func(r *reconcile.Reconciler) {
			for _, id := range retire {
				r.RemoveFlow(id)
			}
		})
	}
}

// replayAged applies an 'A' record of the journal.
func (c *Collector) replayAged(payload []byte) error {
	if len(payload)%4 != 0 {
		return fmt.Errorf("collector: journal: forgotten flows record of %d bytes", len(payload))
	}
	ids := make([]uint32, 0, len(payload)/4)
	for b := payload; len(b) > 0; b = b[4:] {
		ids = append(ids, binary.BigEndian.Uint32(b))
	}
	c.forget(ids)
	return nil
}
