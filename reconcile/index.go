package reconcile

// matchIndex finds the live records of a flow and signature: a hash table
// of chains threaded through the records themselves (record.next), so that
// a record costs one int32 here plus its share of the chain heads.
//
// Why not the B-tree on (flow, signature, reference time) of trafMon 4.3:
// matching only ever asks for the records of one (flow, signature), and
// nearly always there are none or one; the tree's ordered walk cost a
// third of the time per sighting, and its nodes (24-byte keys, two thirds
// full) about 40 bytes per record. The candidates are put in the tree's
// order, (reference time, record index), after they are collected, so
// that the pairing is the same.
type matchIndex struct {
	heads []int32 // chain heads by hash; -1: empty; length a power of two
	shift uint    // 64 − log2(len(heads))
	n     int     // records indexed
}

func newMatchIndex() matchIndex {
	ix := matchIndex{}
	ix.resize(1 << 10)
	return ix
}

func (ix *matchIndex) resize(size int) {
	ix.heads = make([]int32, size)
	for i := range ix.heads {
		ix.heads[i] = -1
	}
	ix.shift = 64
	for s := size; s > 1; s >>= 1 {
		ix.shift--
	}
}

// bucket spreads (flow, signature) over the heads: signatures are hashes
// already, but flows are small integers that must not pile up.
func (ix *matchIndex) bucket(fs uint64) int {
	return int((fs * 0x9E3779B97F4A7C15) >> ix.shift)
}

// insert adds record i (flow and signature fs). The table doubles when it
// holds twice as many records as heads (chains of one or two, 2 to 4 bytes
// of heads per record): an allocation only when the working set grows, as
// for the records themselves.
func (ix *matchIndex) insert(recs []record, i int32, fs uint64) {
	if ix.n >= 2*len(ix.heads) {
		ix.grow(recs)
	}
	b := ix.bucket(fs)
	recs[i].next = ix.heads[b]
	ix.heads[b] = i
	ix.n++
}

func (ix *matchIndex) grow(recs []record) {
	old := ix.heads
	ix.resize(2 * len(old))
	for _, head := range old {
		for i := head; i >= 0; {
			next := recs[i].next
			b := ix.bucket(recs[i].fs())
			recs[i].next = ix.heads[b]
			ix.heads[b] = i
			i = next
		}
	}
}

// remove takes record i out of its chain.
func (ix *matchIndex) remove(recs []record, i int32) {
	p := &ix.heads[ix.bucket(recs[i].fs())]
	for *p != i {
		p = &recs[*p].next
	}
	*p = recs[i].next
	ix.n--
}

// candidates appends to cands the records of fs whose reference time is
// within [lo, hi], in (reference time, index) order.
func (ix *matchIndex) candidates(recs []record, fs uint64, lo, hi int64, cands []uint32) []uint32 {
	for i := ix.heads[ix.bucket(fs)]; i >= 0; i = recs[i].next {
		rec := &recs[i]
		if rec.fs() == fs && rec.ref() >= lo && rec.ref() <= hi {
			cands = append(cands, uint32(i))
		}
	}
	// Insertion sort: there are rarely more than two.
	for a := 1; a < len(cands); a++ {
		for b := a; b > 0 && candLess(recs, cands[b], cands[b-1]); b-- {
			cands[b], cands[b-1] = cands[b-1], cands[b]
		}
	}
	return cands
}

func candLess(recs []record, a, b uint32) bool {
	if ra, rb := recs[a].ref(), recs[b].ref(); ra != rb {
		return ra < rb
	}
	return a < b
}
