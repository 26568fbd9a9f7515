// Package rollout follows new versions of the shared configuration file
// while a daemon runs. It sits before every stage, like conf: each probe
// and collector watches the file it was started with; a new version is
// validated on arrival (conf rules, and the daemon must still be in it) and
// either held for its validFrom — reported as a config.accepted event — or
// refused with the reason — config.rejected; the version in force stays in
// force either way. The version held is visible in the daemon's metrics
// (tmon config status).
//
// Not yet here (issue 14): distribution of the file by the collectors
// (tmon config push) and the switch of the running pipeline at validFrom;
// until then the daemon takes the held version when it is restarted.
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

// Watcher watches one configuration file for a daemon.
type Watcher struct {
	path    string
	running *conf.Config
	member  func(*conf.Config) bool // the daemon is in this configuration
	report  func(kind, detail string)
	log     *slog.Logger

	mu   sync.Mutex
	last [32]byte // hash of the content last examined
	held *conf.Config
}

// New returns a Watcher of running's file. member says whether a new
// version still configures this daemon; report receives the events.
func New(running *conf.Config, member func(*conf.Config) bool, report func(kind, detail string), log *slog.Logger) *Watcher {
	w := &Watcher{path: running.File, running: running, member: member, report: report, log: log}
	if b, err := readFile(w.path); err == nil {
		w.last = sha256.Sum256(b)
	}
	return w
}

// Held returns the version held for later, nil when none.
func (w *Watcher) Held() *conf.Config {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held
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
	h := sha256.Sum256(b)
	w.mu.Lock()
	defer w.mu.Unlock()
	if h == w.last {
		return
	}
	w.last = h
	cfg, err := conf.Parse(bytes.NewReader(b), w.path)
	if err == nil && !w.member(cfg) {
		err = fmt.Errorf("%s: this daemon is not in the new version", w.path)
	}
	if err != nil {
		detail := fmt.Sprintf("new configuration rejected, version %q stays in force: %v", w.running.Version, err)
		w.log.Error("rollout: "+detail, "kind", KindRejected)
		w.report(KindRejected, detail)
		return
	}
	if cfg.Version == w.running.Version {
		w.log.Info("rollout: the file changed, its version is the one in force", "version", cfg.Version)
		w.held = nil
		return
	}
	w.held = cfg
	from := "immediately"
	if !cfg.ValidFrom.IsZero() {
		from = cfg.ValidFrom.UTC().Format(time.RFC3339Nano)
	}
	detail := fmt.Sprintf("version %q accepted and held, valid from %s; version %q in force until the daemon switches", cfg.Version, from, w.running.Version)
	w.log.Info("rollout: "+detail, "kind", KindAccepted)
	w.report(KindAccepted, detail)
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
