package transport

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Replay protection across collector restarts (docs/transport.md).
//
// A probe's session is its start time in milliseconds modulo 2³²
// (SessionID): unique without waiting, growing from one probe run to the
// next. The collector keeps, per probe, its latest session — the full start
// time, the duplicate window's floor and the seqs delivered above it, and
// whether it ended — in a state file it rewrites atomically (every second
// and at stop, surviving a clean stop that empties the journal). With keys,
// a session that starts before a probe's latest is a replay and is refused
// as stale; the latest session itself continues where it stood: a replayed
// PDU is a duplicate, and after its bye nothing new is taken.

// SessionID returns the session id of a probe run started at t: its start
// time in milliseconds modulo 2³².
func SessionID(t time.Time) uint32 { return uint32(t.UnixMilli()) }

// sessionStart returns the start time in milliseconds of session id, the
// time ≡ id (mod 2³²) nearest to now: right while the probe's and the
// collector's clocks agree within 24 days (2³¹ ms).
func sessionStart(id uint32, now time.Time) int64 {
	n := now.UnixMilli()
	return n + int64(int32(id-uint32(n)))
}

// ProbeState is what the collector persists of a probe's latest session.
type ProbeState struct {
	Probe   uint16   `json:"probe"`
	Session uint32   `json:"session"`
	Start   int64    `json:"start_ms"` // the session's start, ms since the epoch (sessionStart)
	Floor   uint64   `json:"floor"`    // every seq below it is settled
	Above   []uint32 `json:"above,omitempty"`
	Closed  bool     `json:"closed,omitempty"` // its bye was delivered
}

// stateVersion is the format of the state file.
const stateVersion = 1

type stateFile struct {
	Version int          `json:"version"`
	Probes  []ProbeState `json:"probes"`
}

// LoadState reads a state file written by SaveState; a missing file is no
// state (a collector's first start).
func LoadState(path string) ([]ProbeState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("transport: session state: %w", err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("transport: session state %s: %w", path, err)
	}
	if f.Version != stateVersion {
		return nil, fmt.Errorf("transport: session state %s: version %d, want %d", path, f.Version, stateVersion)
	}
	return f.Probes, nil
}

// SaveState writes st to path atomically and durably: a temporary file,
// fsynced, renamed over path, and the directory fsynced, so that a crash
// leaves the old state or the new one.
func SaveState(path string, st []ProbeState) error {
	b, err := json.Marshal(stateFile{Version: stateVersion, Probes: st})
	if err != nil {
		return fmt.Errorf("transport: session state: %w", err)
	}
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("transport: session state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("transport: session state: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("transport: session state: %w", err)
		}
	}
	return nil
}

// RestoreState gives the receiver the probes' latest sessions saved by a
// previous run (State, SaveState), after the journal was replayed: a probe
// whose latest session the journal did not rebuild gets it back, so that
// with keys its older sessions are refused as stale, and its PDUs already
// delivered are duplicates (after its bye, nothing new is taken).
func (r *Receiver) RestoreState(st []ProbeState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range st {
		if l, ok := r.latest[p.Probe]; ok && l.start >= p.Start {
			continue // the journal knows this session or a later one
		}
		r.latest[p.Probe] = latestSession{id: p.Session, start: p.Start}
		r.restored[p.Probe] = p
		delete(r.sessions, sessionKey{p.Probe, p.Session})
	}
}

// State returns the probes' latest sessions, for SaveState, sorted by probe.
func (r *Receiver) State() []ProbeState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ProbeState, 0, len(r.latest))
	for probe, l := range r.latest {
		if st, ok := r.restored[probe]; ok {
			out = append(out, st)
			continue
		}
		st := ProbeState{Probe: probe, Session: l.id, Start: l.start}
		if s, ok := r.sessions[sessionKey{probe, l.id}]; ok {
			st.Floor, st.Above, st.Closed = s.base, s.above(), s.closed
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ProbeState) int { return cmp.Compare(a.Probe, b.Probe) })
	return out
}
