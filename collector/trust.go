package collector

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/transport"
)

// What the collector does against replays, forgers and hostile input
// (docs/transport.md): authentication on by default, the probes' latest
// sessions kept across restarts, refusals reported as events as they
// happen, and the resources a probe can make it hold bounded (conf.Limits).

// errLimit refuses a PDU that would take the collector past a limit of
// conf.Limits: it is not acked, the probe keeps it.
var errLimit = errors.New("collector limit reached")

// probeKeys returns the keys accepted for each probe by id (several while
// keys are rolled), or nil when no probe has one (the insecure opt-out;
// conf requires all or none).
func probeKeys(cfg *conf.Config) map[uint16][][]byte {
	var keys map[uint16][][]byte
	for i := range cfg.Probes {
		p := &cfg.Probes[i]
		if ks := p.AcceptedKeys(); ks != nil {
			if keys == nil {
				keys = make(map[uint16][][]byte)
			}
			keys[p.ID] = ks
		}
	}
	return keys
}

// statePath is where the probes' latest sessions are kept: beside the
// journal, out of the loader's sight.
func statePath(spoolDir string) string {
	return filepath.Join(spoolDir, ".collector", "sessions.json")
}

// trustState is the collector's part of replay protection and refusal
// reporting; the ticker goroutine only (after the journal was replayed).
type trustState struct {
	path    string                       // state file; "" with no spool state (tests)
	saved   []transport.ProbeState       // as last written
	counted [transport.NumReasons]uint64 // refusals already reported

	// Journal shares (checkJournalLimit), under c.mu.
	share       map[uint16]int64 // probe id → bytes journaled since the journal last shrank
	lastJournal int64
}

// restoreSessions loads the probes' latest sessions saved by the previous
// run and gives them to the receiver, once the journal was replayed.
func (c *Collector) restoreSessions(spoolDir string) error {
	path := statePath(spoolDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	st, err := transport.LoadState(path)
	if err != nil {
		return err
	}
	c.rcv.RestoreState(st)
	c.trust.path, c.trust.saved = path, st
	if len(st) > 0 {
		c.log.Info("collector: probes' latest sessions restored (older sessions are refused as replays)", "probes", len(st))
	}
	return nil
}

// saveSessions writes the probes' latest sessions when they changed.
func (c *Collector) saveSessions() {
	if c.trust.path == "" {
		return
	}
	st := c.rcv.State()
	if slices.EqualFunc(st, c.trust.saved, func(a, b transport.ProbeState) bool {
		return a.Probe == b.Probe && a.Session == b.Session && a.Floor == b.Floor && a.Closed == b.Closed && slices.Equal(a.Above, b.Above)
	}) {
		return
	}
	if err := transport.SaveState(c.trust.path, st); err != nil {
		c.log.Error("collector: saving the probes' sessions", "err", err)
		return
	}
	c.trust.saved = st
}

// reportRefusals writes one transport.refused event per reason that
// refused datagrams since the last call (once a second: a flood makes one
// event a second per reason, not one per datagram).
func (c *Collector) reportRefusals(now time.Time) {
	if c.rcv == nil {
		return
	}
	st := c.rcv.Stats()
	for r := range transport.Reason(transport.NumReasons) {
		n := st.Invalid[r] - c.trust.counted[r]
		if n == 0 {
			continue
		}
		c.trust.counted[r] = st.Invalid[r]
		detail := fmt.Sprintf("reason=%s count=%d total=%d last_from=%s", r, n, st.Invalid[r], st.LastFrom[r])
		c.mu.Lock()
		c.event(now, "transport.refused", detail)
		c.mu.Unlock()
		if r != transport.ReasonWindow {
			c.log.Warn("collector: datagrams refused", "reason", r.String(), "count", n, "last_from", st.LastFrom[r])
		}
	}
}

// trustTick runs every second beside tick.
func (c *Collector) trustTick(now time.Time) {
	c.reportRefusals(now)
	c.saveSessions()
}

// checkFlowLimit refuses a flow definition that would make the
// collector's flow table pass conf.Limits.MaxFlows (probe flow ids index
// it: an id costs its slot and every one below it). c.mu is held.
func (c *Collector) checkFlowLimit(s *session, id uint32) error {
	grow := int64(id) + 1 - int64(len(s.flows))
	if grow <= 0 {
		return nil
	}
	if int64(id) >= int64(c.limits.MaxFlows) || c.flowSlots+grow > int64(c.limits.MaxFlows) {
		if !c.flowLimitSaid {
			c.flowLimitSaid = true
			c.event(time.Now(), "collector.limit", fmt.Sprintf("maxFlows=%d reached: probe %s flow %d refused (its PDU is not acked)", c.limits.MaxFlows, s.name, id))
		}
		return fmt.Errorf("flow %d: %w (maxFlows %d, %d held)", id, errLimit, c.limits.MaxFlows, c.flowSlots)
	}
	c.flowSlots += grow
	return nil
}

// checkJournalLimit refuses a PDU of a probe that holds more than its
// share of the journal (conf.Limits.MaxJournal over the probes) while the
// journal is past the limit: it is not acked, the probe keeps it. Refusing
// every probe would deadlock — the compaction that makes room needs the
// other probes' sightings to move the watermark — so only the probe that
// fills the journal waits. Shares count the bytes journaled since the
// journal last shrank (a compaction). c.mu is held.
func (c *Collector) checkJournalLimit(f *pdu.Frame) error {
	if c.j == nil || c.replaying {
		return nil
	}
	size := c.j.bytes()
	if size < c.trust.lastJournal {
		clear(c.trust.share)
	}
	c.trust.lastJournal = size
	if c.trust.share == nil {
		c.trust.share = make(map[uint16]int64)
	}
	fair := c.limits.MaxJournal / int64(max(len(c.cfg.Probes), 1))
	if size >= c.limits.MaxJournal && c.trust.share[f.Header.Probe] >= fair {
		if !c.journalLimitSaid {
			c.journalLimitSaid = true
			c.event(time.Now(), "collector.limit", fmt.Sprintf("maxJournal=%d reached: PDUs of probe id %d (%d bytes since the last compaction, more than its share %d) are not acked until a compaction makes room",
				c.limits.MaxJournal, f.Header.Probe, c.trust.share[f.Header.Probe], fair))
		}
		return fmt.Errorf("journal %d bytes: %w (maxJournal %d, probe id %d over its share)", size, errLimit, c.limits.MaxJournal, f.Header.Probe)
	}
	if size < c.limits.MaxJournal {
		c.journalLimitSaid = false
	}
	c.trust.share[f.Header.Probe] += int64(len(f.Signed) + len(f.Auth) + pdu.TrailerSize)
	return nil
}

// releaseFlows gives back the flow ids of a session that ended (every PDU
// up to its goodbye has been handled) or that a new session of its probe
// replaced: none of its PDUs can come any more. A probe
// that has announced its share of maxFlows starts a new session for that
// (probe/roll.go); without the release its old sessions would hold the
// table until maxSessions evicts them. c.mu is held.
func (c *Collector) releaseFlows(s *session) {
	if s.released {
		return
	}
	s.released = true
	c.flowSlots -= int64(len(s.flows))
	for _, f := range s.flows {
		if f.defined {
			c.unref(f.id)
		}
	}
	if len(s.flows) > 0 {
		// Kept until a compaction can keep none of its PDUs (ageing.go).
		c.idleSessions = append(c.idleSessions, idleSession{s, c.dataMark()})
	}
}

// evictSession forgets the probe session heard least recently that is no
// probe's latest, when the sessions reach conf.Limits.MaxSessions; its
// flows are released. c.mu is held.
func (c *Collector) evictSession() {
	if len(c.sessions) < c.limits.MaxSessions {
		return
	}
	var oldK sessKey
	var old *session
	for k, s := range c.sessions {
		if c.latest[s.probe] == s {
			continue
		}
		if old == nil || s.lastHeard.Before(old.lastHeard) {
			oldK, old = k, s
		}
	}
	if old == nil {
		return
	}
	c.releaseFlows(old)
	old.flows = nil
	delete(c.sessions, oldK)
	if !c.sessionLimitSaid {
		c.sessionLimitSaid = true // every eviction is an event; the log says it once
		c.log.Warn("collector: maxSessions reached: forgetting the sessions heard least recently", "maxSessions", c.limits.MaxSessions, "first", fmt.Sprintf("%s/%08x", old.name, oldK.session))
	}
	c.event(time.Now(), "collector.limit", fmt.Sprintf("maxSessions=%d reached: probe %s session %08x forgotten", c.limits.MaxSessions, old.name, oldK.session))
}
