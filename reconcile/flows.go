package reconcile

// flowTable maps a collector flow id to the index of its class. The
// collector hands out ids in increasing order and never reuses one; it
// retires those of flows it has forgotten (RemoveFlow), so over months of
// churning flows most ids are retired. The table is paged: a page of
// flowPage ids is allocated when one of its ids is declared and freed once
// every id declared in it is retired, so memory follows the flows held,
// not every id ever given out, while a lookup stays two loads. The
// directory costs 12 bytes per page from the lowest page held to the
// highest (0.05 bytes per id given out since the oldest flow held).
type flowTable struct {
	base  uint32    // page number of pages[0]: the pages below were freed
	pages [][]int32 // id / flowPage − base → the page's classes (-1: undeclared), or nil
	n     []int32   // declared ids per page
}

const flowPage = 256

// get returns the class index of id, or -1.
func (t *flowTable) get(id uint32) int32 {
	p := id/flowPage - t.base // wraps for an id below base: too large
	if p >= uint32(len(t.pages)) || t.pages[p] == nil {
		return -1
	}
	return t.pages[p][id%flowPage]
}

func (t *flowTable) set(id uint32, class int32) {
	if len(t.pages) == 0 {
		t.base = id / flowPage
	}
	if b := id / flowPage; b < t.base { // an id below the pages held: room before them
		k := int(t.base - b)
		t.pages = append(make([][]int32, k, k+len(t.pages)), t.pages...)
		t.n = append(make([]int32, k, k+len(t.n)), t.n...)
		t.base = b
	}
	p := id/flowPage - t.base
	for uint32(len(t.pages)) <= p {
		t.pages = append(t.pages, nil)
		t.n = append(t.n, 0)
	}
	pg := t.pages[p]
	if pg == nil {
		pg = make([]int32, flowPage)
		for i := range pg {
			pg[i] = -1
		}
		t.pages[p] = pg
	}
	if pg[id%flowPage] < 0 {
		t.n[p]++
	}
	pg[id%flowPage] = class
}

func (t *flowTable) remove(id uint32) {
	p := id/flowPage - t.base
	if p >= uint32(len(t.pages)) || t.pages[p] == nil || t.pages[p][id%flowPage] < 0 {
		return
	}
	t.pages[p][id%flowPage] = -1
	if t.n[p]--; t.n[p] > 0 {
		return
	}
	t.pages[p] = nil
	for len(t.pages) > 0 && t.pages[0] == nil {
		t.pages, t.n = t.pages[1:], t.n[1:]
		t.base++
	}
	for len(t.pages) > 0 && t.pages[len(t.pages)-1] == nil {
		t.pages, t.n = t.pages[:len(t.pages)-1], t.n[:len(t.n)-1]
	}
}

// pagesHeld returns the pages allocated (tests: memory follows the flows).
func (t *flowTable) pagesHeld() int {
	n := 0
	for _, pg := range t.pages {
		if pg != nil {
			n++
		}
	}
	return n
}

// RemoveFlow retires collector flow id: later sightings of it are invalid,
// as for an id never declared. The collector retires the id of a flow it
// has forgotten once nothing of the flow can be waiting here any more
// (collector/ageing.go); records and interval statistics of it that are
// still held are decided and written as usual.
func (r *Reconciler) RemoveFlow(id uint32) { r.flows.remove(id) }
