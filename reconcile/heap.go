package reconcile

// expiryHeap orders live records by deadline (earliest time + class
// timeout), so that Advance finds the expired records and the cap on live
// records finds the one to force out, both at the top.
//
// Why a heap and not a B-tree on (deadline, index): expiry only ever
// needs the minimum, never an ordered walk; an intrusive binary heap over
// an []int32 (each record's position kept in pos, Reconciler.hpos) gives O(1) peek and
// O(log n) push, remove and fix in one contiguous array, with no node
// structure to allocate or chase. Deadlines mostly grow with arrival time,
// so a push rarely sifts up more than a level or two.
type expiryHeap struct {
	// The deadline of each entry beside its record index, so that sifting
	// compares within the heap's own arrays instead of chasing records;
	// two arrays, not one of structs, which padding would make 16 bytes
	// an entry instead of 12.
	dl  []int64
	rec []int32
}

func (h *expiryHeap) len() int   { return len(h.rec) }
func (h *expiryHeap) top() int32 { return h.rec[0] }

// topDeadline returns the earliest deadline; the heap must not be empty.
func (h *expiryHeap) topDeadline() int64 { return h.dl[0] }

func (h *expiryHeap) less(i, j int) bool {
	return h.dl[i] < h.dl[j]
}

func (h *expiryHeap) swap(pos []int32, i, j int) {
	h.dl[i], h.dl[j] = h.dl[j], h.dl[i]
	h.rec[i], h.rec[j] = h.rec[j], h.rec[i]
	pos[h.rec[i]] = int32(i)
	pos[h.rec[j]] = int32(j)
}

func (h *expiryHeap) push(pos []int32, r int32, deadline int64) {
	h.dl = grow(h.dl, 1)
	h.rec = grow(h.rec, 1)
	n := len(h.rec) - 1
	h.dl[n], h.rec[n] = deadline, r
	pos[r] = int32(n)
	h.up(pos, n)
}

// remove takes out the record at heap position i.
func (h *expiryHeap) remove(pos []int32, i int32) {
	n := len(h.rec) - 1
	if int(i) != n {
		h.swap(pos, int(i), n)
		h.dl, h.rec = h.dl[:n], h.rec[:n]
		if !h.down(pos, int(i)) {
			h.up(pos, int(i))
		}
		return
	}
	h.dl, h.rec = h.dl[:n], h.rec[:n]
}

// fix gives the record at position i a new deadline.
func (h *expiryHeap) fix(pos []int32, i int32, deadline int64) {
	h.dl[i] = deadline
	if !h.down(pos, int(i)) {
		h.up(pos, int(i))
	}
}

// up and down move the entry through a hole rather than by swaps: the
// same comparisons and the same final places, but each entry passed over
// is written once (and its record's hpos once) instead of twice, the
// moving one only where it stops.
func (h *expiryHeap) up(pos []int32, j int) {
	j0 := j
	dl, r := h.dl[j], h.rec[j]
	for j > 0 {
		i := (j - 1) / 2
		if !(dl < h.dl[i]) {
			break
		}
		h.dl[j], h.rec[j] = h.dl[i], h.rec[i]
		pos[h.rec[j]] = int32(j)
		j = i
	}
	if j != j0 {
		h.dl[j], h.rec[j] = dl, r
		pos[r] = int32(j)
	}
}

func (h *expiryHeap) down(pos []int32, i0 int) bool {
	i, n := i0, len(h.rec)
	dl, r := h.dl[i], h.rec[i]
	for {
		j := 2*i + 1
		if j >= n || j < 0 {
			break
		}
		if j2 := j + 1; j2 < n && h.less(j2, j) {
			j = j2
		}
		if !(h.dl[j] < dl) {
			break
		}
		h.dl[i], h.rec[i] = h.dl[j], h.rec[j]
		pos[h.rec[i]] = int32(i)
		i = j
	}
	if i > i0 {
		h.dl[i], h.rec[i] = dl, r
		pos[r] = int32(i)
	}
	return i > i0
}

// grow extends s by n elements. It grows the capacity by a sixteenth, not
// append's quarter: the records and the heap are most of a collector's
// memory, and capacity never used is memory per waiting sighting too. The
// price, more copying while the working set grows, is not paid in steady
// state.
func grow[T any](s []T, n int) []T {
	if len(s)+n <= cap(s) {
		return s[:len(s)+n]
	}
	t := make([]T, len(s)+n, cap(s)+max(cap(s)/16, n, 1024))
	copy(t, s)
	return t
}
