package reconcile

import "math"

// recentTable remembers, per flow and signature, the last completed packet
// for as long as it can clash with a later one (Reconciler.recent). An
// open-addressing table (linear probing, at most half full) of 24-byte
// entries: a Go map cost 30 % of the time per sighting here, looked up at
// every new record and written at every completion. Entries are only ever
// forgotten all at once, by sweep, which copies the live ones into a second
// table kept for that: no tombstones, no allocation in steady state.
//
// The table holds every packet completed in the last one to two maximum
// transit times (200 k entries, 12 MB at a million packets per second), so
// each lookup was a cache miss, one on every new record (get) and one on
// every completion (put): a quarter of the reconciliation's time. Two
// things take most of them off the critical path. A filter (a blocked
// Bloom filter, 4 bits per slot, two bits per entry in one word, an L2
// cache's worth) answers most gets, which are nearly all for packets that
// clash with nothing, without touching the table. And puts wait in a short
// list (pend) and go into the table together, where their misses overlap
// instead of following one another; a get the filter lets through looks in
// that list first, and a sweep empties it, so that the table answers
// exactly as if every put had gone in at once.
type recentTable struct {
	slots []recentSlot // length a power of two; a zero slot is free
	spare []recentSlot // the other table, filled by sweep
	shift uint         // 64 − log2(len(slots))
	n     int          // entries held

	filter []uint64    // len(slots)/16 words: the bits of every entry held or pending
	fshift uint        // 64 − log2(len(filter))
	pend   []recentPut // puts not yet in slots, in order; at most pendMax
	spareF []uint64    // the filter rehash fills
}

// recentPut is a put waiting in recentTable.pend.
type recentPut struct {
	fs    uint64
	d     recentDone
	limit int
}

// pendMax is the number of puts that wait before going into the table
// together: enough for their cache misses to overlap.
const pendMax = 64

// recentSlot is an entry of the table. The until time is kept with its
// sign bit flipped so that a zero slot is a free one (until is never
// math.MinInt64): a table is cleared and allocated at memory speed, where
// writing a free mark into every slot took a sixth of a collector's
// reconciliation time (its table holds a million entries at a million
// packets a second and maxTransit 1 s, swept every maxTransit).
type recentSlot struct {
	fs    uint64
	ref   int64
	until int64 // recentDone.until ^ math.MinInt64; 0: free
}

func (s *recentSlot) free() bool { return s.until == 0 }

func (s *recentSlot) done() recentDone {
	return recentDone{ref: s.ref, until: s.until ^ math.MinInt64}
}

func (s *recentSlot) set(fs uint64, d recentDone) {
	s.fs, s.ref, s.until = fs, d.ref, d.until^math.MinInt64
}

func newRecentTable() recentTable {
	var t recentTable
	t.slots = t.alloc(1 << 10)
	t.setShift()
	t.filter = make([]uint64, len(t.slots)/16)
	t.setFilterShift()
	t.pend = make([]recentPut, 0, pendMax)
	return t
}

func (t *recentTable) setFilterShift() {
	t.fshift = 64
	for s := len(t.filter); s > 1; s >>= 1 {
		t.fshift--
	}
}

// filterBits returns the filter word of fs and its two bits in it.
func (t *recentTable) filterBits(fs uint64) (int, uint64) {
	h := (fs ^ fs>>29) * 0xBF58476D1CE4E5B9 // another mix than find's
	return int(h >> t.fshift), 1<<(h&63) | 1<<(h>>6&63)
}

// mayHold reports whether fs may be in the table or pending: false is sure.
func (t *recentTable) mayHold(fs uint64) bool {
	w, b := t.filterBits(fs)
	return t.filter[w]&b == b
}

func (t *recentTable) mark(fs uint64) {
	w, b := t.filterBits(fs)
	t.filter[w] |= b
}

func (t *recentTable) alloc(size int) []recentSlot {
	return make([]recentSlot, size)
}

func (t *recentTable) setShift() {
	t.shift = 64
	for s := len(t.slots); s > 1; s >>= 1 {
		t.shift--
	}
}

// find returns the slot of fs, or the free slot where it would go.
func (t *recentTable) find(fs uint64) *recentSlot {
	mask := len(t.slots) - 1
	for i := int((fs * 0x9E3779B97F4A7C15) >> t.shift); ; i = (i + 1) & mask {
		if s := &t.slots[i]; s.free() || s.fs == fs {
			return s
		}
	}
}

func (t *recentTable) get(fs uint64) (recentDone, bool) {
	if !t.mayHold(fs) {
		return recentDone{}, false
	}
	if len(t.pend) > 0 && t.n+len(t.pend) >= t.pend[0].limit {
		// Near the limit a pending put may be refused: only the
		// table can tell.
		t.flush()
	}
	// Far from it every pending put will go in: the last one of fs is
	// its entry. Flushing here instead would empty the list at every
	// false positive of the filter, and the puts' misses would no
	// longer overlap.
	for i := len(t.pend) - 1; i >= 0; i-- {
		if p := &t.pend[i]; p.fs == fs {
			return p.d, true
		}
	}
	s := t.find(fs)
	if s.free() {
		return recentDone{}, false
	}
	return s.done(), true
}

// put sets the entry of fs, a new one only while fewer than limit are
// held; d.until must not be math.MinInt64. It takes effect in the table at the
// next flush, which get, sweep and a full pend list call.
func (t *recentTable) put(fs uint64, d recentDone, limit int) {
	t.mark(fs)
	t.pend = append(t.pend, recentPut{fs, d, limit})
	if len(t.pend) == pendMax {
		t.flush()
	}
}

// flush puts the pending entries into the table, in order.
func (t *recentTable) flush() {
	for i := range t.pend {
		p := &t.pend[i]
		t.putNow(p.fs, p.d, p.limit)
	}
	t.pend = t.pend[:0]
}

func (t *recentTable) putNow(fs uint64, d recentDone, limit int) {
	s := t.find(fs)
	if s.free() {
		if t.n >= limit {
			return
		}
		if 2*(t.n+1) > len(t.slots) {
			t.rehash(2*len(t.slots), math.MinInt64+1)
			s = t.find(fs)
		}
		t.n++
	}
	s.set(fs, d)
	t.mark(fs)
}

// sweep forgets the entries whose until is before wm.
func (t *recentTable) sweep(wm int64) {
	t.flush()
	t.rehash(len(t.slots), wm)
}

// rehash moves the entries with until ≥ keep into a table of size slots.
func (t *recentTable) rehash(size int, keep int64) {
	old := t.slots
	if len(t.spare) == size {
		t.slots = t.spare
		clear(t.slots)
	} else {
		t.slots = t.alloc(size)
	}
	t.setShift()
	// The filter is rebuilt: what sweep forgets must leave it, or it would
	// fill up. Pending entries keep their bits: putNow marks them again
	// as they go in (a rehash for growth happens while the list empties).
	oldF := t.filter
	if n := len(t.slots) / 16; len(t.spareF) == n {
		t.filter = t.spareF
		clear(t.filter)
	} else {
		t.filter = make([]uint64, n)
	}
	t.setFilterShift()
	t.n = 0
	for i := range old {
		if s := &old[i]; !s.free() && s.done().until >= keep {
			*t.find(s.fs) = *s
			t.mark(s.fs)
			t.n++
		}
	}
	t.spare, t.spareF = old, oldF
}
