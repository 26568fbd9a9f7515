package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/reconcile"
	"github.com/tmon-project/tmon/rollout"
	"github.com/tmon-project/tmon/transport"
)

// The switch to a new version of the configuration (docs/operations.md,
// "Configuration rollout"). At the held version's validFrom T (wall clock)
// the collector stops taking new probe sessions that started at or after T
// (the probes' sessions of the new version: not acked, the probes retry
// them), and waits until every probe's session of the old version has
// ended — each probe cuts its data at T and says bye — or the probe is
// silent. Then the old version's pipeline ends as at a clean stop, with
// everything decided: the records that straddle T (a packet seen at one
// hop before T and due at the next after it, under the other version) and
// the sightings owed by a probe that did not end its session are counted
// dropped, fate unknown, not lost nor missed (gaps, as for PDUs a probe
// gave up); the journal is emptied. The new version's pipeline starts on
// the same spool, counts the records straddling T dropped too, and writes
// a config.switch event stamped T. Every sighting is counted once, in one
// version's accounting rows.

// errSwitching refuses a PDU of a session of the new version while the old
// version's sessions end: the probe sends it again.
var errSwitching = errors.New("collector: switching configuration versions: new sessions wait")

// errOldVersion refuses a PDU of a session older than the switch to the
// version in force: its flow definitions are the old version's.
var errOldVersion = errors.New("collector: a session of the configuration version before the switch")

// versions carries what outlives one version's pipeline: the Watcher and
// the last switch.
type versions struct {
	mu    sync.Mutex
	cw    *rollout.Watcher
	heard *rollout.Heard // what the components said, for status
	cur   *Collector     // receives the Watcher's events
	// from and at: the version switched from and the instant (ns); nil
	// and 0 before the first switch.
	from *conf.Config
	at   int64
}

func (v *versions) set(c *Collector) {
	v.mu.Lock()
	v.cur = c
	v.mu.Unlock()
}

func (v *versions) event(kind, detail string) {
	v.mu.Lock()
	c := v.cur
	v.mu.Unlock()
	if c != nil {
		c.mu.Lock()
		c.event(time.Now(), kind, detail)
		c.mu.Unlock()
	}
}

// runningFile keeps the version in force after a switch: a collector
// restarted with its older file goes on with it (and its journal).
const runningFile = "running.xml"

// startVersion returns the version a collector starts with: the one it
// last switched to when that is later (by validFrom) than the file's.
func startVersion(cfg *conf.Config, spoolDir string, log *slog.Logger) *conf.Config {
	b, err := os.ReadFile(filepath.Join(spoolDir, ".collector", runningFile))
	if err != nil {
		return cfg
	}
	r, err := conf.Parse(bytes.NewReader(b), cfg.File)
	if err != nil {
		log.Warn("rollout: the version last switched to no longer loads; starting with the file's", "err", err)
		return cfg
	}
	if r.Version == cfg.Version || !r.ValidFrom.After(cfg.ValidFrom) {
		return cfg
	}
	log.Info("rollout: starting with version "+r.Version+", switched to before the restart (later than the file's "+cfg.Version+")", "version", r.Version)
	return r
}

// armSwitch waits for the held version's validFrom; then it makes the
// collector refuse new sessions, waits for the old ones to end and stops
// the receiver (stop). It returns when ctx ends.
func (c *Collector) armSwitch(ctx context.Context, stop context.CancelFunc) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var at int64
	var to *conf.Config
	for {
		if h := c.cw.Held(); at == 0 && h != nil {
			at = h.ValidFrom.UnixNano()
			if h.ValidFrom.IsZero() {
				at = time.Now().UnixNano()
			}
			to = h
			if d := time.Until(time.Unix(0, at)); d > 0 {
				tm := time.NewTimer(d)
				select {
				case <-ctx.Done():
					tm.Stop()
					return
				case <-tm.C:
				}
				if c.cw.Held() != to {
					at = 0 // replaced meanwhile: arm again
					continue
				}
			}
			c.mu.Lock()
			c.switchAt, c.switchTo = at, to
			c.switchGap(at, false)
			c.mu.Unlock()
			c.log.Info("rollout: switch: validFrom reached, version "+to.Version+" takes over; waiting for the probes' sessions of version "+c.cfg.Version+" to end",
				"version", to.Version, "valid_from", time.Unix(0, at).UTC().Format(time.RFC3339Nano), "wall", time.Now().UTC().Format(time.RFC3339Nano))
		}
		if at != 0 && c.oldSessionsEnded(time.Now()) {
			stop()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// oldSessionsEnded reports whether every probe's session of the version
// in force has ended (bye), or is silent (not heard for the silence
// limit), or never began.
func (c *Collector) oldSessionsEnded(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.liveness(now)
	for pi := range c.cfg.Probes {
		s := c.latest[pi]
		if s == nil || s.ended() || now.Sub(s.lastHeard) > c.silent || !c.hasHop(pi) && now.Sub(s.lastHeard) > time.Second {
			continue
		}
		return false
	}
	return true
}

// sessionVersion refuses a new session on either side of a switch: one
// that started at or after the instant while the old version ends
// (errSwitching), one that started before the version in force did
// (errOldVersion). Under c.mu.
func (c *Collector) sessionVersion(id uint32) error {
	switch {
	case c.switchAt != 0 && int32(id-transport.SessionID(time.Unix(0, c.switchAt))) >= 0:
		return errSwitching
	case c.since != 0 && int32(id-transport.SessionID(time.Unix(0, c.since))) < 0:
		return errOldVersion
	}
	return nil
}

// switchGap declares the packets in transit across the switch at at
// dropped, fate unknown: for every one-way class, at every hop, a gap at
// the instant (widened by the class's maximum transit, reconcile.Gap) — in
// the old version (prior false) for the hops after a record's last
// sighting, in the new one for those before its first. The old version
// declares it when the instant is reached, before any record it covers
// can be decided. Under c.mu.
func (c *Collector) switchGap(at int64, prior bool) {
	for ci := range c.cfg.Classes {
		if c.cfg.Classes[ci].OneWay == nil {
			continue
		}
		var all uint8
		for pi := range c.cfg.Probes {
			all |= c.probeHops(pi, ci)
		}
		if all != 0 {
			g := reconcile.Gap{Class: ci, Hops: all, From: at, To: at, Prior: prior, Ending: !prior}
			c.recDo(func(r *reconcile.Reconciler) { r.AddGap(g) })
		}
	}
}

// silentGaps declares dropped what a probe whose session of the old
// version did not end owed since its watermark: it was silent (down, or
// cut off) at the switch. Under c.mu.
func (c *Collector) silentGaps(at int64) {
	for pi := range c.cfg.Probes {
		s := c.latest[pi]
		if s == nil || s.closed || s.wm >= at {
			continue
		}
		for ci := range c.cfg.Classes {
			if h := c.probeHops(pi, ci); h != 0 && c.cfg.Classes[ci].OneWay != nil {
				g := reconcile.Gap{Class: ci, Hops: h, From: s.wm, To: at}
				c.recDo(func(r *reconcile.Reconciler) { r.AddGap(g) })
			}
		}
	}
}

// keepRunning writes the version switched to into the collector's
// directory (see startVersion).
func keepRunning(spoolDir string, content []byte) error {
	dir := filepath.Join(spoolDir, ".collector")
	tmp, err := os.CreateTemp(dir, ".running-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(content)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, runningFile))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("rollout: keeping the version switched to: %w", err)
	}
	return nil
}

// switched starts the new version's pipeline after a switch at at: the
// records straddling the instant count dropped, and a config.switch event
// stamped at says so.
func (c *Collector) switched(from *conf.Config, at int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.switchGap(at, true)
	detail := fmt.Sprintf("version %q in force from %s, was %q: pipeline restarted; packets in transit across the instant count dropped",
		c.cfg.Version, time.Unix(0, at).UTC().Format(time.RFC3339Nano), from.Version)
	c.log.Info("rollout: switched: "+detail, "kind", "config.switch", "version", c.cfg.Version, "late", time.Since(time.Unix(0, at)))
	c.event(time.Unix(0, at), "config.switch", detail)
}

// closeSwitch ends the old version's pipeline at a switch: everything is
// decided (what the probes could not deliver before the instant is
// dropped, see switchGaps) and written, the journal emptied, and the
// version switched to kept for a restart.
func (c *Collector) closeSwitch(spoolDir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopReconciling()
	at, to := c.switchAt, c.switchTo
	c.silentGaps(at)
	c.advance(time.Now())
	err := c.rec.Flush()
	c.reportReconcile(time.Now(), true)
	k := c.rec.Counters()
	detail := fmt.Sprintf("sightings=%d completed=%d lost=%d missed=%d dropped=%d duplicates=%d clashes=%d late=%d invalid=%d forced=%d undecided=%d",
		k.Sightings, k.Completed, k.Lost, k.Missed, k.Dropped, k.Duplicates, k.Clashes, k.Late, k.Invalid, k.Forced, k.Live)
	c.log.Info("rollout: switch: version "+c.cfg.Version+" ended, everything decided and written", "reconcile", detail)
	c.event(time.Now(), "stop", "version "+c.cfg.Version+" ends (switch to "+to.Version+"): "+detail)
	err = errors.Join(err, c.sp.Close())
	if c.j != nil {
		if err == nil {
			// Everything is in the spool: the new version replays nothing.
			err = c.j.reset()
		}
		err = errors.Join(err, c.j.close())
	}
	if err != nil {
		return fmt.Errorf("collector %s: switching to version %q: %w", c.self, to.Version, err)
	}
	if h, b := c.cw.HeldContent(); h == to && b != nil {
		if err := keepRunning(spoolDir, b); err != nil {
			c.log.Warn("rollout: "+err.Error()+": a restart with the older file switches again", "err", err)
		}
	}
	return nil
}
