// Package reassembly puts IPv4 and IPv6 fragments back together into the
// datagram they were cut from. It sits inside the sieve stage (capture →
// sieve[reassembly] → ring → analyser): the sieve hands it the fragments
// that some flow class may want (the others are dropped before, on their IP
// header alone), and classifies and signs the reassembled datagram like any
// unfragmented packet — on its full transport header, ports included, with
// one signature over the whole datagram that every probe computes the same,
// however the path fragmented it.
//
// A fragment set is keyed by the capture interface, the IP version, the
// addresses, the protocol and the IP identification (RFC 791, RFC 8200). A
// set completes when its fragments cover [0, end) exactly, end given by the
// fragment without more-fragments; the datagram then carries the times of
// its first and last fragments (the oldest and youngest capture times of
// the set). Everything else is a counted outcome, never a silent one:
//
//   - Incomplete: the set was not complete Timeout (data time) after its
//     first fragment was captured, or it was evicted to bound memory;
//   - Overlap: a fragment overlaps another with different bounds or bytes
//     (RFC 5722): the whole set is dropped, as receivers do;
//   - Duplicate: an exact copy of a fragment already held, or a fragment
//     of a set completed less than Timeout ago (a duplicate on the path):
//     dropped, as a receiver would;
//   - TooMany: a set of more than MaxFrags fragments is dropped;
//   - Invalid: a fragment no receiver would take (more-fragments set and a
//     length not a multiple of 8, or an end beyond 64 KiB) is dropped.
//
// Memory is bounded by MaxSets and MaxBytes (buffers of completed and
// dropped sets are reused); a flood of fragments evicts the oldest sets.
// A Reassembler is used by one goroutine; Add does not allocate once its
// buffers have grown.
package reassembly

import (
	"encoding/binary"
	"github.com/tmon-project/tmon/conf"
	"math"
	"time"
)

// Key identifies a fragment set.
type Key struct {
	Src, Dst [16]byte // IPv4 in the first 4 bytes
	ID       uint32   // IPv4 identification or IPv6 fragment identification
	Iface    uint8
	Version  uint8 // 4 or 6
	Proto    uint8 // IPv4 protocol; IPv6: next header after the fragment header
}

// Config bounds a Reassembler; zero fields take the defaults, those of
// <analyses fragTimeout fragMaxSets fragMaxBytes fragMaxFrags>
// (conf.DefaultAnalyses). A fragment crosses a path within a transit time,
// so the fragments of one datagram reach a probe within a few milliseconds
// of one another; the default second covers any reordering a path does,
// and keeps the window in which an IP identification may be reused by a
// fast sender short.
type Config struct {
	Timeout  time.Duration // data time a set may wait for its missing fragments
	MaxSets  int           // sets held at once
	MaxBytes int           // payload bytes held at once
	MaxFrags int           // fragments of one set
}

// maxDatagram is the largest fragmentable part: offsets are 13 bits of
// 8-byte units, plus the last fragment's payload.
const maxDatagram = 65535 + 8

// Stats count what happened to the fragments given to Add.
type Stats struct {
	Fragments  uint64 // fragments given to Add
	Datagrams  uint64 // datagrams reassembled
	Incomplete uint64 // sets dropped unfinished: timed out, evicted, or at Close
	Evicted    uint64 // of Incomplete, those evicted to bound memory
	Overlap    uint64 // sets dropped for overlapping fragments
	Duplicate  uint64 // fragments dropped as exact copies
	TooMany    uint64 // sets dropped for more than MaxFrags fragments
	Discarded  uint64 // fragments of a set dropped before (overlap, too many)
	Invalid    uint64 // fragments no receiver would take: more-fragments with a length not a multiple of 8, beyond 64 KiB
	Held       int    // sets held now
	HeldBytes  int    // payload bytes held now
}

type span struct{ off, end int32 }

type set struct {
	key         Key
	first, last int64
	created     int64
	buf         []byte // payload at its offsets
	hdr         []byte // first fragment: the IP header (IPv6: up to the fragment header)
	nhAt        int    // IPv6: offset in hdr of the next-header byte to restore; -1 for IPv4
	end         int    // -1 until the last fragment is seen
	got         int    // payload bytes held (no overlaps: their union)
	spans       []span
	// state: open; done (completed: kept without its bytes until
	// created+Timeout to recognise duplicates); dropped (overlap, too many
	// fragments, no room: kept likewise, so that its later fragments do
	// not start a set that would time out and be counted again).
	state uint8
}

const (
	stOpen = iota
	stDone
	stDropped
)

// Reassembler holds the open fragment sets of one sieve.
type Reassembler struct {
	cfg   Config
	tmo   int64
	sets  map[Key]*set
	queue []*set // by creation time (data time), oldest first, from qh on
	qh    int
	free  []*set
	bytes int
	st    Stats
	out   []byte // the last datagram returned
	clock int64  // latest data time seen
}

// New returns a Reassembler with cfg's bounds.
func New(cfg Config) *Reassembler {
	d := conf.DefaultAnalyses()
	if cfg.Timeout <= 0 {
		cfg.Timeout = d.FragTimeout
	}
	if cfg.MaxSets <= 0 {
		cfg.MaxSets = d.FragMaxSets
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = d.FragMaxBytes
	}
	if cfg.MaxFrags <= 0 {
		cfg.MaxFrags = d.FragMaxFrags
	}
	return &Reassembler{cfg: cfg, tmo: int64(cfg.Timeout), sets: make(map[Key]*set)}
}

// Stats returns the counters.
func (r *Reassembler) Stats() Stats {
	s := r.st
	s.Held = 0
	for _, x := range r.sets {
		if x.state == stOpen {
			s.Held++
		}
	}
	s.HeldBytes = r.bytes
	return s
}

// Pending returns the sets held (open, or kept to recognise duplicates):
// while it is 0 there is nothing to expire.
func (r *Reassembler) Pending() int { return len(r.queue) - r.qh }

// Fragment is one fragment as the sieve dissected it.
type Fragment struct {
	Key  Key
	TS   int64  // capture time, ns
	Off  int    // offset of Payload in the fragmentable part, bytes
	More bool   // more-fragments flag
	Hdr  []byte // the IP header (IPv6: the unfragmentable part, up to the fragment header); used from the fragment at offset 0
	// NHAt: IPv6, the offset in Hdr of the next-header byte that names the
	// fragment header; the datagram gets Key.Proto there. -1 for IPv4.
	NHAt    int
	Payload []byte
}

// Datagram is a reassembled datagram.
type Datagram struct {
	IP          []byte // the IP packet, header included; valid until the next Add or Expire
	First, Last int64  // capture times of its oldest and youngest fragment
	Fragments   int
}

// Add takes one fragment (its bytes are copied) and returns the datagram
// when this fragment completed it. It first expires the sets older than
// Timeout at f.TS.
func (r *Reassembler) Add(f *Fragment) (Datagram, bool) {
	r.st.Fragments++
	r.Expire(f.TS)
	end := f.Off + len(f.Payload)
	if f.Off < 0 || end > maxDatagram || (f.More && len(f.Payload)%8 != 0) || len(f.Hdr) > 1024 {
		// A fragment no receiver would take (RFC 791: all but the last
		// carry a multiple of 8 bytes).
		r.st.Invalid++
		return Datagram{}, false
	}
	s := r.sets[f.Key]
	switch {
	case s == nil:
	case s.state == stDone:
		r.st.Duplicate++
		return Datagram{}, false
	case s.state == stDropped:
		r.st.Discarded++
		return Datagram{}, false
	}
	if s == nil {
		s = r.open(f)
	}
	if f.TS < s.first {
		s.first = f.TS
	}
	if f.TS > s.last {
		s.last = f.TS
	}
	nsp := span{int32(f.Off), int32(end)}
	for _, o := range s.spans {
		if o.end <= nsp.off || nsp.end <= o.off {
			continue
		}
		if o == nsp && string(s.buf[o.off:o.end]) == string(f.Payload) {
			r.st.Duplicate++
			return Datagram{}, false
		}
		r.st.Overlap++
		r.drop(s)
		return Datagram{}, false
	}
	if !f.More {
		if s.end >= 0 && s.end != end {
			r.st.Overlap++ // two different ends
			r.drop(s)
			return Datagram{}, false
		}
		s.end = end
	}
	if s.end >= 0 && end > s.end {
		r.st.Overlap++ // data beyond the end
		r.drop(s)
		return Datagram{}, false
	}
	if len(s.spans) == r.cfg.MaxFrags {
		r.st.TooMany++
		r.drop(s)
		return Datagram{}, false
	}
	for r.bytes+len(f.Payload) > r.cfg.MaxBytes && r.queue[r.qh] != s {
		r.evictOldest()
	}
	if r.bytes+len(f.Payload) > r.cfg.MaxBytes {
		r.st.Incomplete++
		r.st.Evicted++
		r.drop(s)
		return Datagram{}, false
	}
	if len(s.buf) < end {
		if cap(s.buf) < end {
			s.buf = append(s.buf[:cap(s.buf)], make([]byte, end-cap(s.buf))...)
		}
		s.buf = s.buf[:end]
	}
	copy(s.buf[f.Off:end], f.Payload)
	s.spans = append(s.spans, nsp)
	s.got += len(f.Payload)
	r.bytes += len(f.Payload)
	if f.Off == 0 {
		s.hdr = append(s.hdr[:0], f.Hdr...)
		s.nhAt = f.NHAt
	}
	if s.end < 0 || s.got != s.end || len(s.hdr) == 0 {
		return Datagram{}, false
	}
	return r.complete(s), true
}

// open starts a set for f's key, evicting the oldest when at MaxSets.
func (r *Reassembler) open(f *Fragment) *set {
	for len(r.sets) >= r.cfg.MaxSets {
		r.evictOldest()
	}
	var s *set
	if n := len(r.free); n > 0 {
		s = r.free[n-1]
		r.free = r.free[:n-1]
	} else {
		s = new(set)
	}
	s.key, s.first, s.last, s.created = f.Key, f.TS, f.TS, f.TS
	s.buf, s.hdr, s.spans = s.buf[:0], s.hdr[:0], s.spans[:0]
	s.nhAt, s.end, s.got, s.state = -1, -1, 0, stOpen
	r.sets[f.Key] = s
	r.queue = append(r.queue, s)
	return s
}

// complete builds the datagram of a full set and keeps the set, without
// its bytes, until its timeout, to recognise duplicates.
func (r *Reassembler) complete(s *set) Datagram {
	r.st.Datagrams++
	n := len(s.hdr) + s.end
	r.out = append(r.out[:0], s.hdr...)
	r.out = append(r.out, s.buf[:s.end]...)
	ip := r.out[:n]
	if s.key.Version == 4 {
		binary.BigEndian.PutUint16(ip[2:], uint16(min(n, 65535)))
		binary.BigEndian.PutUint16(ip[6:], 0) // flags and offset: a whole datagram
		ip[10], ip[11] = 0, 0                 // the checksum no longer holds; the signature ignores it
	} else {
		binary.BigEndian.PutUint16(ip[4:], uint16(min(n-40, 65535)))
		if s.nhAt >= 0 && s.nhAt < len(s.hdr) {
			ip[s.nhAt] = s.key.Proto
		}
	}
	d := Datagram{IP: ip, First: s.first, Last: s.last, Fragments: len(s.spans)}
	r.bytes -= s.got
	s.got = 0
	s.state = stDone
	return d
}

// Expire drops the sets whose first fragment is older than Timeout at
// now (data time): unfinished ones are Incomplete.
func (r *Reassembler) Expire(now int64) {
	r.clock = max(r.clock, now)
	for r.Pending() > 0 && r.queue[r.qh].created+r.tmo <= now {
		r.evictOldest()
	}
}

// Close drops every set: the capture ended; unfinished sets are Incomplete.
func (r *Reassembler) Close() {
	r.clock = math.MaxInt64 // not an eviction
	for r.Pending() > 0 {
		r.evictOldest()
	}
}

// evictOldest removes the oldest set: at its timeout, or early to bound
// memory (then counted Evicted too).
func (r *Reassembler) evictOldest() {
	s := r.queue[r.qh]
	r.queue[r.qh] = nil
	r.qh++
	switch {
	case r.qh == len(r.queue):
		if cap(r.queue) > 4*r.cfg.MaxSets {
			r.queue = nil // let a flood's backing array go
		}
		r.queue, r.qh = r.queue[:0], 0
	case r.qh > len(r.queue)/2 && r.qh > 64:
		n := copy(r.queue, r.queue[r.qh:])
		clear(r.queue[n:])
		r.queue, r.qh = r.queue[:n], 0
	}
	if s.state == stOpen {
		r.st.Incomplete++
		if s.created+r.tmo > r.clock {
			r.st.Evicted++
		}
	}
	delete(r.sets, s.key)
	r.bytes -= s.got
	s.got = 0
	if len(r.free) < maxFree {
		r.free = append(r.free, s)
	}
}

// maxFree bounds the recycled sets (and the buffers they keep).
const maxFree = 64

// drop ends a set before its time (overlap, too many fragments, no room):
// its bytes go, its key stays until its timeout (state dropped).
func (r *Reassembler) drop(s *set) {
	r.bytes -= s.got
	s.got = 0
	s.state = stDropped
}

// Config returns the reassembler's bounds, defaults filled in.
func (r *Reassembler) Config() Config { return r.cfg }
