package reconcile

// expiryHeap orders live records by deadline (earliest time + class
// timeout), so that Advance finds the expired records and the cap on live
// records finds the one to force out, both at the top.
//
// Why a heap and not a B-tree on (deadline, index): expiry only ever
// needs the minimum, never an ordered walk; an intrusive binary heap over
// an []int32 (each record knows its position) gives O(1) peek and
// O(log n) push, remove and fix in one contiguous array, with no node
// structure to allocate or chase. Deadlines mostly grow with arrival time,
// so a push rarely sifts up more than a level or two.
type expiryHeap struct {
	a []heapEntry
}

// heapEntry copies the deadline beside the record index so that sifting
// compares within the heap's own array instead of chasing records.
type heapEntry struct {
	deadline int64
	rec      int32
}

func (h *expiryHeap) len() int   { return len(h.a) }
func (h *expiryHeap) top() int32 { return h.a[0].rec }

// topDeadline returns the earliest deadline; the heap must not be empty.
func (h *expiryHeap) topDeadline() int64 { return h.a[0].deadline }

func (h *expiryHeap) less(i, j int) bool {
	return h.a[i].deadline < h.a[j].deadline
}

func (h *expiryHeap) swap(recs []record, i, j int) {
	h.a[i], h.a[j] = h.a[j], h.a[i]
	recs[h.a[i].rec].hpos = int32(i)
	recs[h.a[j].rec].hpos = int32(j)
}

func (h *expiryHeap) push(recs []record, r int32) {
	h.a = append(h.a, heapEntry{recs[r].deadline, r})
	recs[r].hpos = int32(len(h.a) - 1)
	h.up(recs, len(h.a)-1)
}

// remove takes out the record at heap position i.
func (h *expiryHeap) remove(recs []record, i int32) {
	n := len(h.a) - 1
	if int(i) != n {
		h.swap(recs, int(i), n)
		h.a = h.a[:n]
		if !h.down(recs, int(i)) {
			h.up(recs, int(i))
		}
		return
	}
	h.a = h.a[:n]
}

// fix restores the order after the deadline of the record at position i
// changed.
func (h *expiryHeap) fix(recs []record, i int32) {
	h.a[i].deadline = recs[h.a[i].rec].deadline
	if !h.down(recs, int(i)) {
		h.up(recs, int(i))
	}
}

func (h *expiryHeap) up(recs []record, j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(recs, i, j)
		j = i
	}
}

func (h *expiryHeap) down(recs []record, i0 int) bool {
	i, n := i0, len(h.a)
	for {
		j := 2*i + 1
		if j >= n || j < 0 {
			break
		}
		if j2 := j + 1; j2 < n && h.less(j2, j) {
			j = j2
		}
		if !h.less(j, i) {
			break
		}
		h.swap(recs, i, j)
		i = j
	}
	return i > i0
}
