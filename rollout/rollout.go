// Package rollout brings new versions of the shared configuration file to
// the running daemons. It sits before every stage, like conf: a collector
// publishes a version pushed to it (tmon config push) and serves it over a
// signed exchange (docs/rollout.md: server.go, client.go, wire.go); probes
// and the other collectors fetch it, and each daemon also watches the file
// it was started with. A new version is validated on arrival (conf rules,
// the daemon still in it, validFrom on an interval boundary) and either
// held for its validFrom — a config.accepted event — or refused with the
// reason — config.rejected; the version in force stays either way. The
// daemons switch their pipeline at validFrom (probe/switch.go,
// collector/switch.go). What each daemon runs and holds is in its metrics
// and in what it tells the collectors (tmon config status).
package rollout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tmon-project/tmon/conf"
)

// Event kinds the Watcher reports.
const (
	KindAccepted = "config.accepted"
	KindRejected = "config.rejected"
)

// maxFile bounds what is read: the same limit as conf's.
const maxFile = 4 << 20

// Watcher follows the new versions of one daemon's configuration: from
// the file it was started with (Check, Run) and from the collectors (Offer,
// through a Fetcher or a push). It holds at most one version for later.
type Watcher struct {
	path    string
	running *conf.Config
	member  func(*conf.Config) bool // the daemon is in this configuration
	report  func(kind, detail string)
	log     *slog.Logger

	mu        sync.Mutex
	fileLast  [32]byte // hash of the file's content last examined
	last      [32]byte // hash of the content last examined, from any source
	held      *conf.Config
	heldBytes []byte
	published int64 // publication stamp of the newest version examined
}

// New returns a Watcher of running's file. member says whether a new
// version still configures this daemon; report receives the events.
func New(running *conf.Config, member func(*conf.Config) bool, report func(kind, detail string), log *slog.Logger) *Watcher {
	w := &Watcher{path: running.File, running: running, member: member, report: report, log: log}
	if b, err := readFile(w.path); err == nil {
		w.fileLast = sha256.Sum256(b)
		w.last = w.fileLast
	}
	return w
}

// Held returns the version held for later, nil when none.
func (w *Watcher) Held() *conf.Config {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held
}

// HeldContent returns the version held and its file's bytes; nil when none.
func (w *Watcher) HeldContent() (*conf.Config, []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held, w.heldBytes
}

// Running returns the version in force.
func (w *Watcher) Running() *conf.Config {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running
}

// Switch makes to, the version held, the version in force (the daemon
// switched to it) and returns it.
func (w *Watcher) Switch(to *conf.Config) *conf.Config {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running = to
	if w.held == to {
		w.held, w.heldBytes = nil, nil
	}
	return to
}

// Published returns the publication stamp of the newest version examined
// (0: none came from a collector).
func (w *Watcher) Published() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.published
}

// Report says what the daemon runs and holds, for a fetch.
func (w *Watcher) Report(role, name string) Report {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := Report{Role: role, Name: name, Running: w.running.Version, Published: w.published}
	if w.held != nil {
		r.Held = w.held.Version
		if !w.held.ValidFrom.IsZero() {
			r.HeldFrom = w.held.ValidFrom.UnixNano()
		}
	}
	return r
}

// Run checks the file every period until ctx ends.
func (w *Watcher) Run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Check()
		}
	}
}

// Check examines the file once: a content not seen before is validated
// and held or rejected.
func (w *Watcher) Check() {
	b, err := readFile(w.path)
	if err != nil {
		// Being rewritten, or removed: the version in force stays; a
		// content that does arrive is examined then.
		w.log.Debug("rollout: reading the configuration", "err", err)
		return
	}
	// Only a change of the file is news: the version last offered may
	// have come from a collector since.
	h := sha256.Sum256(b)
	w.mu.Lock()
	changed := h != w.fileLast
	w.fileLast = h
	w.mu.Unlock()
	if changed {
		w.Offer(b, 0, "file "+w.path)
	}
}

// Validate checks a new version's file content against the rules of a
// rollout (docs/operations.md, "Configuration rollout"): the conf rules,
// read as if it were this daemon's file (key files are found beside it),
// the daemon still in it, and a validFrom on an interval boundary of both
// the running and the new version, so that the switch never splits an
// interval.
func (w *Watcher) Validate(b []byte) (*conf.Config, error) {
	cfg, err := conf.Parse(bytes.NewReader(b), w.path)
	if err != nil {
		return nil, err
	}
	if !w.member(cfg) {
		return nil, fmt.Errorf("%s: this daemon is not in version %q", w.path, cfg.Version)
	}
	if err := aligned(cfg, w.Running()); err != nil {
		return nil, err
	}
	return cfg, nil
}

func aligned(cfg, running *conf.Config) error {
	if cfg.ValidFrom.IsZero() {
		return nil
	}
	for _, c := range []*conf.Config{cfg, running} {
		if cfg.ValidFrom.UnixNano()%int64(c.Interval) != 0 {
			return fmt.Errorf("%s: validFrom %s is not on an interval boundary of version %q (interval %s): the switch would split an interval",
				cfg.File, cfg.ValidFrom.UTC().Format(time.RFC3339Nano), c.Version, c.Interval)
		}
	}
	return nil
}

// Offer examines a new version's content from source (a file, a push, a
// fetch), published at the given stamp (0 for a file): one not examined
// before is validated, then held (config.accepted) or rejected
// (config.rejected, the version in force stays). It returns the rejection.
func (w *Watcher) Offer(b []byte, published int64, source string) error {
	h := sha256.Sum256(b)
	w.mu.Lock()
	if published > w.published {
		w.published = published
	}
	if h == w.last {
		w.mu.Unlock()
		return nil
	}
	w.last = h
	running := w.running
	w.mu.Unlock()
	cfg, err := w.Validate(b)
	if err != nil {
		detail := fmt.Sprintf("new configuration from %s rejected, version %q stays in force: %v", source, running.Version, err)
		w.log.Error("rollout: "+detail, "kind", KindRejected)
		w.report(KindRejected, detail)
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if cfg.Version == w.running.Version {
		w.log.Info("rollout: the new file's version is the one in force", "version", cfg.Version, "source", source)
		w.held, w.heldBytes = nil, nil
		return nil
	}
	w.held, w.heldBytes = cfg, b
	from := "immediately"
	if !cfg.ValidFrom.IsZero() {
		from = cfg.ValidFrom.UTC().Format(time.RFC3339Nano)
	}
	detail := fmt.Sprintf("version %q from %s accepted and held, valid from %s; version %q in force until then", cfg.Version, source, from, w.running.Version)
	w.log.Info("rollout: "+detail, "kind", KindAccepted)
	w.report(KindAccepted, detail)
	return nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFile)
	}
	return b, nil
}

// HeldLabels returns the labels of a daemon's *_config_held_info metric
// (version, valid_from), ok false when no version is held.
func (w *Watcher) HeldLabels() (version, validFrom string, ok bool) {
	if w == nil {
		return "", "", false
	}
	h := w.Held()
	if h == nil {
		return "", "", false
	}
	from := ""
	if !h.ValidFrom.IsZero() {
		from = h.ValidFrom.UTC().Format(time.RFC3339Nano)
	}
	return h.Version, from, true
}
