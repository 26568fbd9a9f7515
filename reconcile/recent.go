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
// transit times (two million entries, 96 MB at a million packets per
// second), so each lookup is a cache and a TLB miss, one on every new
// record (get) and one on every completion (put). Two things take most of
// them off the critical path. A filter answers most gets without touching
// the table (see the until filter below). And puts wait in a short list
// (pend) and go into the table together, where their misses overlap
// instead of following one another; a get the filter lets through looks in
// that list first, and a sweep empties it, so that the table answers
// exactly as if every put had gone in at once.
//
// The until filter is a blocked Bloom filter whose cells are bytes, not
// bits: each entry sets two cells of one cache line to at least the
// epoch of its until time (watermark progress in units of a 64th of the
// maximum transit or less, counted from the last sweep's). A get asks
// whether the entry of fs can still clash (its until at or after the
// watermark), and the filter answers no for an entry absent and also for
// one present but expired: its cells are below the watermark's epoch
// unless a live entry shares them. A bit filter answered "maybe" for every
// expired entry still held until the next sweep, which in a trace whose
// signatures come back after about a second (a replayed or periodic one)
// meant a table miss at nearly every new record: a third of the
// reconciliation's time.
type recentTable struct {
	slots []recentSlot // length a power of two; a zero slot is free
	spare []recentSlot // the other table, filled by sweep
	shift uint         // 64 − log2(len(slots))
	n     int          // entries held

	// cells is the until filter, in blocks of 64: 0 empty, else 1 + the
	// epoch of the greatest until marked there, counted from base, held
	// at 255 (a time far ahead reads as live until the next sweep counts
	// it again). Four cells per entry kept by the last sweep, or more
	// (cellsFor): with two cells an entry, about one in twenty gets of an
	// absent or expired entry then passes.
	cells  []uint8
	kept   int   // entries kept by the last sweep, or held at the last growth
	cshift uint  // 64 − log2(len(cells)/64)
	unit   uint  // an epoch is 1<<unit ns: a 64th of the largest maxTransit or less
	base   int64 // epoch of the last sweep's watermark: cell value 1
	// thr is the least cell value that may be live at the current
	// watermark (setWatermark); 0 when the watermark is too far past base
	// for the cells to tell (every get then looks in the table).
	thr    uint8
	pend   []recentPut // puts not yet in slots, in order; at most pendMax
	spareC []uint8     // the cells rehash fills
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

// newRecentTable returns a table for classes whose largest MaxTransit is
// maxT ns, swept once per maxT of watermark progress (sweepRecent): the
// watermark moves at most 64 epochs from one sweep to the next.
func newRecentTable(maxT int64) recentTable {
	var t recentTable
	for maxT>>t.unit >= 64 {
		t.unit++
	}
	t.slots = t.alloc(1 << 10)
	t.setShift()
	t.cells = make([]uint8, cellsFor(0, 0))
	t.setCellShift()
	t.thr = 1
	t.pend = make([]recentPut, 0, pendMax)
	return t
}

// cellsFor returns the number of cells of the filter for n entries: the
// power of two at least 4n, or have when that is up to twice as many
// (the size does not flip at every sweep as n varies, and the cells are
// reused).
func cellsFor(n, have int) int {
	want := 1 << 12
	for want < 4*n {
		want <<= 1
	}
	if have >= want && have <= 2*want {
		return have
	}
	return want
}

func (t *recentTable) setCellShift() {
	t.cshift = 64
	for s := len(t.cells) / 64; s > 1; s >>= 1 {
		t.cshift--
	}
}

// cellsOf returns the indexes of fs's two cells (one cache line).
func (t *recentTable) cellsOf(fs uint64) (int, int) {
	h := (fs ^ fs>>29) * 0xBF58476D1CE4E5B9 // another mix than find's
	line := int(h>>t.cshift) << 6           // h>>64 is 0: one line
	return line | int(h&63), line | int(h>>6&63)
}

// level is the cell value of an entry that can clash until until: its
// epoch counted from base, at least 1 (an entry already expired reads as
// live at most until the watermark's epoch passes base) and at most 255.
func (t *recentTable) level(until int64) uint8 {
	e := until >> t.unit // floor, negative times included
	if e < t.base {
		return 1
	}
	if d := uint64(e) - uint64(t.base); d < 254 {
		return uint8(d + 1)
	}
	return 255
}

// setWatermark sets the threshold of the cells at watermark wm: an entry
// with until ≥ wm has an epoch at least wm's, so cells of at least wm's
// level. Beyond 254 epochs from base a held cell no longer says how far
// ahead its entry is: the filter is then not used.
func (t *recentTable) setWatermark(wm int64) {
	e := wm >> t.unit
	switch {
	case e <= t.base:
		t.thr = 1
	case uint64(e)-uint64(t.base) < 255:
		t.thr = uint8(uint64(e)-uint64(t.base)) + 1
	default:
		t.thr = 0
	}
}

// mayClash reports whether the entry of fs may be held (or pending) with
// an until at or after the watermark of the last setWatermark: false is
// sure.
func (t *recentTable) mayClash(fs uint64) bool {
	i, j := t.cellsOf(fs)
	return t.cells[i] >= t.thr && t.cells[j] >= t.thr
}

func (t *recentTable) mark(fs uint64, until int64) {
	i, j := t.cellsOf(fs)
	v := t.level(until)
	t.cells[i] = max(t.cells[i], v)
	t.cells[j] = max(t.cells[j], v)
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

// get returns the entry of fs when it is held with an until at or after
// the watermark of the last setWatermark; it may also return an expired
// one, which the caller tells by its until.
func (t *recentTable) get(fs uint64) (recentDone, bool) {
	if !t.mayClash(fs) {
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
	t.mark(fs, d.until)
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
	t.mark(fs, d.until)
}

// sweep forgets the entries whose until is before wm, and counts the
// filter's epochs from wm's.
func (t *recentTable) sweep(wm int64) {
	t.flush()
	t.base = wm >> t.unit
	t.rehash(len(t.slots), wm)
	t.kept = t.n
	t.setWatermark(wm)
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
	// fill up. Pending entries keep their cells: putNow marks them again
	// as they go in (a rehash for growth happens while the list empties).
	oldC := t.cells
	t.kept = max(t.kept, size/4) // a growth: the entries held
	if n := cellsFor(t.kept, len(t.cells)); len(t.spareC) == n {
		t.cells = t.spareC
		clear(t.cells)
	} else {
		t.cells = make([]uint8, n)
	}
	t.setCellShift()
	t.n = 0
	for i := range old {
		if s := &old[i]; !s.free() && s.done().until >= keep {
			*t.find(s.fs) = *s
			t.mark(s.fs, s.done().until)
			t.n++
		}
	}
	t.spare, t.spareC = old, oldC
}
