package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tmon-project/tmon/capture"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/rollout"
	"github.com/tmon-project/tmon/transport"
)

// The switch to a new version of the configuration (docs/operations.md,
// "Configuration rollout"). At the held version's validFrom the probe ends
// the epoch of its pipeline at exactly that data time: every input is read
// through a cutSource, which ends its input (io.EOF to the sieve) at the
// first packet stamped at or after the instant, or once its clock passed it
// while idle, and keeps that packet for the next epoch. The epoch then ends
// as a run does — analyses closed, PDUs flushed, the collectors' acks
// awaited, bye — and the next epoch starts with the new version from the
// kept packet on, as a new session. No packet is lost or analysed twice:
// packets stamped before validFrom are the old epoch's, the others the new
// one's. The capture itself (files or live sockets) stays open throughout.

// cutSource is a capture source that ends at a data time.
type cutSource struct {
	src capture.Source
	at  atomic.Int64 // cut time (ns); MaxInt64: none
	// from: packets stamped before it are left out and counted in
	// skipped (a probe that caught up with a version in force: they are
	// the old version's, which it did not run); sieve goroutine only.
	from    int64
	skipped uint64
	cut     bool // the input ended at the cut (sieve goroutine)
	// the packet at or after the cut, kept for the next epoch
	pend  bool
	buf   []byte
	ts    int64
	iface uint8
	lt    uint16
}

func newCut(src capture.Source) *cutSource {
	c := &cutSource{src: src, from: math.MinInt64}
	c.at.Store(math.MaxInt64)
	return c
}

// reset starts a new epoch: no cut; a kept packet is delivered first.
func (c *cutSource) reset() {
	c.at.Store(math.MaxInt64)
	c.cut = false
}

// arm sets the cut at data time at.
func (c *cutSource) arm(at int64) { c.at.Store(at) }

func (c *cutSource) ReadPacket() ([]byte, int64, uint8, uint16, error) {
	at := c.at.Load()
	if c.pend {
		if c.ts >= at {
			c.cut = true
			return nil, 0, 0, 0, io.EOF
		}
		c.pend = false
		return c.buf, c.ts, c.iface, c.lt, nil
	}
	data, ts, iface, lt, err := c.src.ReadPacket()
	for err == nil && ts < c.from {
		c.skipped++
		data, ts, iface, lt, err = c.src.ReadPacket()
	}
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, capture.ErrClosed) && c.src.Clock() >= at {
			// Idle past the cut: no packet before it can come.
			c.cut = true
			return nil, 0, 0, 0, io.EOF
		}
		return data, ts, iface, lt, err
	}
	if ts >= at {
		c.buf = append(c.buf[:0], data...)
		c.ts, c.iface, c.lt, c.pend, c.cut = ts, iface, lt, true, true
		return nil, 0, 0, 0, io.EOF
	}
	return data, ts, iface, lt, nil
}

// Clock never passes the cut: the epoch promises nothing beyond it.
func (c *cutSource) Clock() int64 {
	cl := c.src.Clock()
	if c.pend && c.ts < cl {
		cl = c.ts // the kept packet is still to come
	}
	return min(cl, c.at.Load())
}

func (c *cutSource) Close() error { return c.src.Close() }

// eventSink passes events to the current epoch's notes (the Watcher and
// the live capture outlive an epoch).
// Events before the first epoch (the opening, the catch-up) wait for it.
type eventSink struct {
	mu      sync.Mutex
	nt      *notes
	pending [][2]string
}

// set makes nt the current epoch's notes; nil holds the events for the
// next epoch (the old one sends nothing more).
func (e *eventSink) set(nt *notes) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nt = nt
	if nt == nil {
		return
	}
	for _, p := range e.pending {
		nt.event(p[0], p[1])
	}
	e.pending = nil
}

func (e *eventSink) event(kind, detail string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.nt != nil {
		e.nt.event(kind, detail)
	} else if len(e.pending) < 64 {
		e.pending = append(e.pending, [2]string{kind, detail})
	}
}

// armSwitch arms the cuts at the validFrom of the version the Watcher
// holds (re-arming when a newer one replaces it before the instant) and
// logs the instant when the wall clock reaches it. A version without
// validFrom is cut at the inputs' clock when it is seen.
func armSwitch(ctx context.Context, cw *rollout.Watcher, plan *cutPlan, log *slog.Logger) {
	cuts := plan.cuts
	var cur *conf.Config
	var timer *time.Timer
	defer func() {
		// The data can reach validFrom before the wall clock does (a
		// replay reads the first packet past it ahead of its time): the
		// epoch then ends first, and the line saying when the instant
		// came must still be written. ctx ends after the cut was made
		// (stopWatch follows the analyser loop), so c.cut is settled.
		if timer != nil && !anyCut(cuts) {
			timer.Stop()
		}
	}()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if h := cw.Held(); h != nil && h != cur {
			cur = h
			at := h.ValidFrom.UnixNano()
			if h.ValidFrom.IsZero() {
				at = math.MaxInt64
				for _, c := range cuts {
					at = min(at, c.src.Clock())
				}
			}
			plan.armSwitch(at)
			if timer != nil {
				timer.Stop()
			}
			version := h.Version
			timer = time.AfterFunc(time.Until(time.Unix(0, at)), func() {
				log.Info("rollout: switch: validFrom reached, version "+version+" takes over", "version", version,
					"valid_from", time.Unix(0, at).UTC().Format(time.RFC3339Nano), "wall", time.Now().UTC().Format(time.RFC3339Nano))
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func anyCut(cuts []*cutSource) bool {
	for _, c := range cuts {
		if c.cut {
			return true
		}
	}
	return false
}

// catchUp fetches from the collectors once at start: a version published
// while the probe was down is judged, and returned when it is already in
// force (its validFrom passed), to start with it.
func catchUp(ctx context.Context, cfg *conf.Config, name string, cw *rollout.Watcher, log *slog.Logger) *conf.Config {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	fetcher(cfg, name, cw, log).Once(fctx)
	h := cw.Held()
	if h == nil || h.ValidFrom.After(time.Now()) {
		return nil
	}
	log.Info("rollout: catching up: version "+h.Version+" is in force since its validFrom, starting with it", "version", h.Version,
		"valid_from", h.ValidFrom.UTC().Format(time.RFC3339Nano), "file_version", cfg.Version)
	return cw.Switch(h)
}

// switchNote is the config.switch event's detail.
func switchNote(from, to *conf.Config, at int64, how string) string {
	return fmt.Sprintf("version %q in force from %s, was %q: %s", to.Version,
		time.Unix(0, at).UTC().Format(time.RFC3339Nano), from.Version, how)
}

// switchDrain returns the context the old version's session drains under
// at a switch: DrainTimeout as at the end of a run, but once a collector
// holds everything, the others get only grace more — a collector that is
// down must not hold the new version's capture back for the whole drain
// time (the transport's redundant close reports what they missed).
func switchDrain(sender *transport.Sender, timeout, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, c := range sender.Stats().Collectors {
				if c.Pending == 0 && c.Queued == 0 {
					select {
					case <-ctx.Done():
					case <-time.After(grace):
						cancel()
					}
					return
				}
			}
		}
	}()
	return ctx, cancel
}
