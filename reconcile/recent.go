package reconcile

import "math"

// recentTable remembers, per flow and signature, the last completed packet
// for as long as it can clash with a later one (Reconciler.recent). An
// open-addressing table (linear probing, at most half full) of 24-byte
// entries: a Go map cost 30 % of the time per sighting here, looked up at
// every new record and written at every completion. Entries are only ever
// forgotten all at once, by sweep, which copies the live ones into a second
// table kept for that: no tombstones, no allocation in steady state.
type recentTable struct {
	slots []recentSlot // length a power of two; until == empty marks a free slot
	spare []recentSlot // the other table, filled by sweep
	shift uint         // 64 − log2(len(slots))
	n     int          // entries held
}

type recentSlot struct {
	fs uint64
	recentDone
}

// empty marks a free slot: no completed packet can clash until then.
const empty = math.MinInt64

func newRecentTable() recentTable {
	var t recentTable
	t.slots = t.alloc(1 << 10)
	t.setShift()
	return t
}

func (t *recentTable) alloc(size int) []recentSlot {
	s := make([]recentSlot, size)
	for i := range s {
		s[i].until = empty
	}
	return s
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
		if s := &t.slots[i]; s.until == empty || s.fs == fs {
			return s
		}
	}
}

func (t *recentTable) get(fs uint64) (recentDone, bool) {
	s := t.find(fs)
	return s.recentDone, s.until != empty
}

// put sets the entry of fs, a new one only while fewer than limit are
// held; d.until must not be empty.
func (t *recentTable) put(fs uint64, d recentDone, limit int) {
	s := t.find(fs)
	if s.until == empty {
		if t.n >= limit {
			return
		}
		if 2*(t.n+1) > len(t.slots) {
			t.rehash(2*len(t.slots), math.MinInt64+1)
			s = t.find(fs)
		}
		t.n++
	}
	s.fs, s.recentDone = fs, d
}

// sweep forgets the entries whose until is before wm.
func (t *recentTable) sweep(wm int64) {
	t.rehash(len(t.slots), wm)
}

// rehash moves the entries with until ≥ keep into a table of size slots.
func (t *recentTable) rehash(size int, keep int64) {
	old := t.slots
	if len(t.spare) == size {
		t.slots = t.spare
		for i := range t.slots {
			t.slots[i].until = empty
		}
	} else {
		t.slots = t.alloc(size)
	}
	t.setShift()
	t.n = 0
	for i := range old {
		if s := &old[i]; s.until != empty && s.until >= keep {
			*t.find(s.fs) = *s
			t.n++
		}
	}
	t.spare = old
}
