package transport

import "time"

// session is the duplicate window and watermark of one probe session.
//
// Every seq below base is settled: delivered, or below a floor the probe
// sent. Seqs in [base, base+window) are remembered in a ring bitmap, with
// the probe time of those delivered out of order, so that the watermark can
// take the probe time of the last contiguous PDU when base moves past them.
// Seqs at or beyond base+window are refused (not acked) until base moves.
type session struct {
	probe     uint16
	id        uint32
	base      uint64 // lowest unsettled seq (uint64: seq 2³²−1 settled gives 2³²)
	bits      []uint64
	times     []int64
	wm        Watermark
	lastHeard time.Time
	closed    bool
	bye       uint32 // seq of the bye once delivered (0: restored closed, bye unknown)
	delivered uint64
	skipped   uint64
}

type seqState int

const (
	seqNew   seqState = iota
	seqDone           // delivered or settled: a duplicate
	seqAhead          // beyond the window
)

// newSession starts at the floor of the first PDU heard: seqs below it were
// acked (perhaps to an earlier instance of this collector) or given up.
func newSession(probe uint16, id, floor uint32, window int) *session {
	return &session{
		probe: probe, id: id,
		base:  uint64(floor),
		bits:  make([]uint64, window/64),
		times: make([]int64, window),
		wm:    Watermark{Seq: floor - 1},
	}
}

func (s *session) slot(seq uint64) (word int, bit uint64, i int) {
	i = int(seq % uint64(len(s.times)))
	return i / 64, 1 << (i % 64), i
}

func (s *session) state(seq uint32) seqState {
	q := uint64(seq)
	switch {
	case q < s.base:
		return seqDone
	case q >= s.base+uint64(len(s.times)):
		return seqAhead
	}
	w, b, _ := s.slot(q)
	if s.bits[w]&b != 0 {
		return seqDone
	}
	return seqNew
}

// mark records the delivery of seq (state seqNew) and advances base.
func (s *session) mark(seq uint32, probeTime int64) {
	w, b, i := s.slot(uint64(seq))
	s.bits[w] |= b
	s.times[i] = probeTime
	s.advance()
}

// advance moves base over delivered seqs.
func (s *session) advance() {
	for {
		w, b, i := s.slot(s.base)
		if s.bits[w]&b == 0 {
			return
		}
		s.bits[w] &^= b
		s.wm = Watermark{Seq: uint32(s.base), ProbeTime: max(s.wm.ProbeTime, s.times[i])}
		s.base++
	}
}

// raiseFloor settles every seq below floor and returns how many of them
// never arrived.
func (s *session) raiseFloor(floor uint32) (skipped uint64) {
	f := uint64(floor)
	if f <= s.base {
		return 0
	}
	// Within the window, look at each seq; beyond it, nothing was kept.
	end := min(f, s.base+uint64(len(s.times)))
	for q := s.base; q < end; q++ {
		w, b, i := s.slot(q)
		if s.bits[w]&b != 0 {
			s.bits[w] &^= b
			s.wm.ProbeTime = max(s.wm.ProbeTime, s.times[i])
		} else {
			skipped++
		}
	}
	skipped += f - end
	s.base = f
	s.wm.Seq = floor - 1
	s.skipped += skipped
	s.advance()
	return skipped
}

// above returns the seqs delivered at or above base (out of order).
func (s *session) above() []uint32 {
	var out []uint32
	for q := s.base; q < s.base+uint64(len(s.times)); q++ {
		if w, b, _ := s.slot(q); s.bits[w]&b != 0 {
			out = append(out, uint32(q))
		}
	}
	return out
}

// restore continues a session saved by a previous run (ProbeState): every
// seq below its floor is settled, those above it delivered are
// duplicates, and a closed session takes nothing new.
func (s *session) restore(st ProbeState) {
	if st.Floor > s.base {
		s.base = st.Floor
		s.wm.Seq = uint32(st.Floor - 1)
	}
	for _, q := range st.Above {
		if uint64(q) >= s.base && uint64(q) < s.base+uint64(len(s.times)) {
			w, b, _ := s.slot(uint64(q))
			s.bits[w] |= b
		}
	}
	s.advance()
	s.closed = st.Closed
}

// session returns the state of (probe, id), creating it; r.mu is held.
func (r *Receiver) session(probe uint16, id uint32, floor uint32, now time.Time) *session {
	k := sessionKey{probe, id}
	if s, ok := r.sessions[k]; ok {
		return s
	}
	if len(r.sessions) >= r.maxSess {
		// The session heard least recently goes; a probe's latest one only
		// when every session is some probe's latest: a flood of sessions
		// must not make a real probe's duplicate window forgotten.
		var oldest, oldestLatest *session
		for _, s := range r.sessions {
			p := &oldest
			if l, ok := r.latest[s.probe]; ok && l.id == s.id {
				p = &oldestLatest
			}
			if *p == nil || s.lastHeard.Before((*p).lastHeard) {
				*p = s
			}
		}
		if oldest == nil {
			oldest = oldestLatest
		}
		delete(r.sessions, sessionKey{oldest.probe, oldest.id})
		r.stats.Evicted++
		if r.stats.Evicted&(r.stats.Evicted-1) == 0 { // 1st, 2nd, 4th…: a flood does not flood the log
			r.log.Warn("transport: too many probe sessions, forgetting the one heard least recently", "probe", oldest.probe, "session", oldest.id, "max", r.maxSess, "forgotten", r.stats.Evicted)
		}
	}
	start := sessionStart(id, now)
	prev, ok := r.latest[probe]
	switch {
	case ok && prev.id != id:
		r.stats.Restarts++
		r.log.Info("transport: probe restarted", "probe", probe, "old_session", prev.id, "session", id)
	case !ok:
		r.log.Info("transport: new probe", "probe", probe, "session", id)
	}
	if !ok || start >= prev.start {
		r.latest[probe] = latestSession{id: id, start: start}
	}
	s := newSession(probe, id, floor, r.window)
	if st, ok := r.restored[probe]; ok && st.Session == id {
		// The latest session of a previous run, whose journal was
		// emptied: it continues where it stood.
		delete(r.restored, probe)
		s.restore(st)
	}
	r.sessions[k] = s
	return s
}
