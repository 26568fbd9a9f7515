package reconcile

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestExpiryHeap drives the heap with random pushes, removals (the top
// and elsewhere) and deadline changes, and checks after each that every
// record knows its position, every parent's deadline is at most its
// children's, and the top is the earliest deadline held.
func TestExpiryHeap(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	hpos := make([]int32, 5000)
	var h expiryHeap
	in := map[int32]int64{} // record → deadline, the reference
	var free []int32
	for i := range int32(len(hpos)) {
		free = append(free, i)
	}
	for op := range 200000 {
		switch k := r.IntN(10); {
		case k < 4 && len(free) > 0:
			i := free[len(free)-1]
			free = free[:len(free)-1]
			d := r.Int64N(1000)
			h.push(hpos, i, d)
			in[i] = d
		case k < 7 && h.len() > 0:
			pos := int32(0)
			if k == 6 {
				pos = int32(r.IntN(h.len()))
			}
			i := h.rec[pos]
			h.remove(hpos, pos)
			delete(in, i)
			free = append(free, i)
		case h.len() > 0:
			pos := int32(r.IntN(h.len()))
			d := r.Int64N(1000)
			in[h.rec[pos]] = d
			h.fix(hpos, pos, d)
		}
		if op%97 != 0 && op < 199990 {
			continue
		}
		if h.len() != len(in) {
			t.Fatalf("op %d: heap holds %d, reference %d", op, h.len(), len(in))
		}
		minD := int64(1 << 62)
		for p, i := range h.rec {
			if hpos[i] != int32(p) {
				t.Fatalf("op %d: record %d at %d says %d", op, i, p, hpos[i])
			}
			if h.dl[p] != in[i] {
				t.Fatalf("op %d: record %d deadline %d, reference %d", op, i, h.dl[p], in[i])
			}
			if p > 0 && h.dl[(p-1)/2] > h.dl[p] {
				t.Fatalf("op %d: parent of %d later than it", op, p)
			}
			minD = min(minD, h.dl[p])
		}
		if h.len() > 0 && h.topDeadline() != minD {
			t.Fatalf("op %d: top %d, earliest %d", op, h.topDeadline(), minD)
		}
	}
}

// TestRecordSize keeps the record at 24 bytes: its reference time is held
// in two 32-bit halves so that no field needs 8-byte alignment, its heap
// position apart (a waiting 2-hop sighting then takes 60 bytes,
// BenchmarkReconcileWaiting).
func TestRecordSize(t *testing.T) {
	if got := unsafe.Sizeof(record{}); got != 24 {
		t.Errorf("record is %d bytes, want 24", got)
	}
	var rec record
	for _, ts := range []int64{0, 1, -1, math.MinInt64, math.MaxInt64, 1_733_600_000_123_456_789, -1_733_600_000_123_456_789} {
		rec.setRef(ts)
		if got := rec.ref(); got != ts {
			t.Errorf("ref after setRef(%d) = %d", ts, got)
		}
	}
}
