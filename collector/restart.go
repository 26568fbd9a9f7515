package collector

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tmon-project/tmon/internal/killpoint"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/reconcile"
	"github.com/tmon-project/tmon/spool"
	"github.com/tmon-project/tmon/transport"
)

// journaledSink writes closed intervals to the spool, whose sets it commits
// in the journal (CommitSet); after a restart it drops the intervals the
// journal says were committed already (start ≤ skip).
type journaledSink struct {
	sp   *spool.Writer
	j    *journal
	skip int64
	last int64 // start of the last interval written
	// written, when set, is told of every interval written (thresholds).
	written func(*reconcile.Interval)
}

func (s *journaledSink) WriteInterval(iv *reconcile.Interval) error {
	if iv.Start <= s.skip {
		return nil
	}
	if err := s.sp.WriteInterval(iv); err != nil {
		return err
	}
	if s.written != nil {
		s.written(iv)
	}
	return nil
}

// openJournal opens the journal in spoolDir and replays it: see journal.
func (c *Collector) openJournal(spoolDir string) error {
	j, recs, err := openJournal(spoolDir)
	if err != nil {
		return err
	}
	c.dataDone = map[dataKey]int{}
	// lastFlows, lastEvents: the last record after which every flows
	// (events) row of earlier PDUs is in a spool file.
	lastFlows, lastEvents, lastSpooled := -1, -1, -1
	skip := int64(math.MinInt64)
	var snap *snapshot
	var committed []spool.Set
	for i, r := range recs {
		switch r.kind {
		case recSnapshot:
			snap = new(snapshot)
			if err := json.Unmarshal(r.payload, snap); err != nil {
				j.close()
				return fmt.Errorf("collector: journal snapshot: %w", err)
			}
			skip = max(skip, snap.Skip)
		case recSpooled:
			lastFlows, lastEvents, lastSpooled = i, i, i
		case recInterval:
			if len(r.payload) == 8 {
				skip = max(skip, int64(binary.BigEndian.Uint64(r.payload)))
			}
		case recCommit:
			var set spool.Set
			if err := json.Unmarshal(r.payload, &set); err != nil {
				j.close()
				return fmt.Errorf("collector: journal commit record: %w", err)
			}
			committed = append(committed, set)
			switch {
			case set.Interval:
				skip = max(skip, set.Start)
			case slices.Equal(set.Types, []string{spool.TypeFlows}):
				lastFlows = i
			case slices.Equal(set.Types, []string{spool.TypeEvents}):
				lastEvents = i
			case !set.Interval && set.Manifest:
				// A data set (flow_counters, rtt_stats, tcp_conns,
				// ftp_transfers of one interval, committed together):
				// every row of its types and interval from earlier PDUs
				// is in the spool.
				for _, typ := range set.Types {
					c.dataDone[dataKey{typ, set.Start}] = i
				}
			}
		}
	}
	// Sets committed before the kill are completed, the files of sets not
	// committed removed: the replay writes those again.
	rolled, err := spool.Recover(spoolDir, committed)
	if err != nil {
		j.close()
		return fmt.Errorf("collector: %w", err)
	}
	if rolled > 0 {
		c.log.Info("collector: restart: completed the spool files of committed sets", "sets", rolled)
	}
	// Commit records of what the replay writes go after the replayed ones.
	c.j = j
	c.sink.j = j
	c.sink.skip = skip
	n, refused := 0, 0
	c.replaying = true
	if snap != nil {
		if err := c.restore(snap); err != nil {
			c.replaying = false
			c.j, c.sink.j = nil, nil
			j.close()
			return fmt.Errorf("collector: journal: %w", err)
		}
	}
	// The PDUs a compaction kept: after its snapshot, before its 'S'.
	keptFrom, keptTo := -1, -1
	for i, r := range recs {
		switch {
		case r.kind == recSnapshot:
			keptFrom, keptTo = i, len(recs)
		case r.kind == recSpooled && keptFrom >= 0 && keptTo == len(recs):
			keptTo = i
		}
	}
	for i, r := range recs {
		if r.kind == recAged {
			if err := c.replayAged(r.payload); err != nil {
				c.log.Warn(err.Error())
			}
			continue
		}
		if r.kind != recPDU {
			continue
		}
		c.replayKept = i > keptFrom && i < keptTo
		c.replayFlows, c.replayEvents, c.replayCounters = i > lastFlows, i > lastEvents, i > lastSpooled
		c.replayAt = i
		if err := c.rcv.Replay(r.payload, c); err != nil {
			refused++
			c.log.Warn("collector: journal: PDU refused on replay", "err", err)
		}
		n++
	}
	if snap != nil {
		c.replayFlows, c.replayEvents, c.replayCounters = false, false, false
		c.settle(snap)
	}
	c.replaying, c.replayFlows, c.replayEvents, c.replayCounters, c.replayKept = false, false, false, false, false
	c.dataDone = nil
	if n > 0 || snap != nil {
		detail := fmt.Sprintf("replayed %d PDUs from the journal (%d refused); intervals up to %s were written before",
			n, refused, time.Unix(0, max(skip, 0)).UTC().Format(time.RFC3339))
		c.log.Info("collector: restart: " + detail)
		c.event(time.Now(), "collector.restart", detail)
	}
	return nil
}

// journalPDU appends the accepted datagram of f to the journal. A failure
// is not returned: the PDU is handled, and refusing it now would make the
// probe send it again and count it twice. The record stays pending (written
// before anything else) and no ack leaves until it is written (durable.go).
func (c *Collector) journalPDU(f *pdu.Frame) {
	if c.j == nil || c.replaying {
		return
	}
	n := len(f.Signed) + len(f.Auth) + pdu.TrailerSize
	raw := f.Signed[:n:n] // the datagram: header, body, auth trailer, CRC are contiguous
	err := c.j.appendPDU(raw)
	c.journalHealth(err)
	if err == nil {
		killpoint.At("journal.pdu")
	}
}

// journalTick retries a pending journal record and, when the spool holds
// every flow and event row handled so far, notes it. c.mu is held.
func (c *Collector) journalTick() {
	if c.j == nil {
		return
	}
	err := c.j.flushPending()
	c.journalHealth(err)
	if err == nil && c.sp.Buffered() == 0 && !c.sp.Unfinished() && c.j.bytes() > 0 {
		if err := c.j.append(recSpooled, nil); err != nil {
			c.journalHealth(err)
			return
		}
		c.maybeCompact()
	}
	select {
	case c.kick <- struct{}{}: // sync what is not synced yet
	default:
	}
}

// liveness reports probes that fell silent or came back, from the
// receiver's view of each session. c.mu is held.
func (c *Collector) liveness(now time.Time) {
	if c.rcv == nil {
		return
	}
	for _, si := range c.rcv.Sessions() {
		s := c.sessions[sessKey{si.Probe, si.Session}]
		if s == nil || c.latest[s.probe] != s {
			continue
		}
		if si.LastHeard.After(s.lastHeard) {
			s.lastHeard = si.LastHeard
		}
	}
	for pi, s := range c.latest {
		silent := !s.ended() && now.Sub(s.lastHeard) > c.silent
		switch {
		case silent && !c.unreachable[pi]:
			c.unreachable[pi] = true
			c.event(now, "probe.unreachable", fmt.Sprintf("probe %s not heard for %s", s.name, now.Sub(s.lastHeard).Round(time.Second)))
		case !silent && c.unreachable[pi]:
			c.unreachable[pi] = false
			c.event(now, "probe.reachable", fmt.Sprintf("probe %s heard again", s.name))
		}
	}
}

// givenUp takes a probe's notice of PDUs it gave up to this collector: the
// sightings in them, at the probe's hops, count as dropped.
func (c *Collector) givenUp(s *session, detail string) {
	g, err := transport.ParseGivenUp(detail)
	if err != nil {
		c.log.Warn("collector: probe "+s.name+": bad given-up notice", "err", err)
		return
	}
	if g.Sightings == 0 {
		return
	}
	for ci := range c.cfg.Classes {
		if hops := c.probeHops(s.probe, ci); hops != 0 {
			gap := reconcile.Gap{Class: ci, Hops: hops, From: g.From, To: g.To}
			c.recDo(func(r *reconcile.Reconciler) { r.AddGap(gap) })
		}
	}
}
