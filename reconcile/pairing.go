package reconcile

// Placing a sighting in the record of its packet, and telling apart the
// packets of a signature clash by their times, in any arrival order
// (path order, then the class's learned transit). Split from reconcile.go.

import (
	"math"
	"math/bits"
	"time"
)

// maxSwaps bounds the chain of sightings one sighting can displace (swap).
const maxSwaps = 4

// place puts the sighting (flow, sig) at hop h and time t (with its span,
// Sighting.Span) into the record of its packet: a duplicate of a sighting
// there, another record's, or a new record. depth counts the
// displacements that led here.
func (r *Reconciler) place(c *class, flow, sig uint32, h uint8, t int64, span uint32, depth int) {
	bit := uint8(1) << h
	fs := uint64(flow)<<32 | uint64(sig)

	r.cands = r.index.candidates(r.recs, fs, t-c.maxT, t+c.maxT, r.cands[:0])

	// A duplicate wins over a match: a copy of a packet already seen at h
	// must not complete another record that lacks h.
	// Of two copies, the earlier is the packet and the later the
	// duplicate, whichever arrives first: the record keeps the earlier.
	for _, i := range r.cands {
		rec := r.at(int32(i))
		if rec.mask&bit != 0 && absDiff(rec.ts[h], t) <= c.dup {
			if t < rec.ts[h] {
				rec.ts[h], t = t, rec.ts[h]
				if rec.sp != nil {
					rec.sp[h] = span
				}
				r.retime(c, int32(i))
			}
			r.duplicate(c, flow, int(h), t)
			return
		}
	}
	best, plausible := r.match(c, h, t)
	if !plausible && depth < maxSwaps {
		// The sighting fits no record lacking hop h well: it may be the
		// one that belongs to a record that took another packet's
		// sighting at h (a clash delivered out of order). Take that
		// place; the sighting it held looks for its own record.
		if i, old, oldSpan := r.swap(c, h, t, span); i >= 0 {
			r.place(c, flow, sig, h, old, oldSpan, depth+1)
			return
		}
	}
	if best >= 0 && !plausible && r.inGap(c, r.recs[best].mask, sig, t) {
		// The sighting's own partner may be among the sightings a gap
		// took (forced out, given up): an implausible match would then
		// pair two packets of a signature clash into a false delay. A
		// record of its own is dropped with the gap instead.
		best = -1
	}
	if best >= 0 {
		rec := r.at(int32(best))
		earliest := rec.earliest()
		rec.ts[h] = t
		if rec.sp != nil {
			rec.sp[h] = span
		}
		rec.mask |= bit
		if rec.mask == c.full {
			r.complete(c, best, plausible)
			return
		}
		if t < earliest {
			c.heap.fix(r.hpos, r.hpos[best], t+c.timeout)
		}
		return
	}
	if len(r.cands) > 0 || r.clashesRecent(fs, t, c.maxT) {
		r.clash(c, flow, t)
	}
	if r.live >= r.max {
		r.force()
	}
	i := r.alloc()
	rec := r.at(int32(i))
	*rec.record = record{flow: flow, sig: sig, cls: uint16(c.index), mask: bit}
	rec.setRef(t)
	clear(rec.ts) // a recycled record's times
	rec.ts[h] = t
	if rec.sp != nil {
		clear(rec.sp)
		rec.sp[h] = span
	}
	r.index.insert(r.recs, i, fs)
	c.heap.push(r.hpos, i, t+c.timeout)
	r.live++
}

// force decides the live record nearest its deadline, of any class, to
// make room under MaxRecords: complete, it is measured; incomplete, it is
// dropped (docs/spool.md), not lost.
func (r *Reconciler) force() {
	var c *class
	for i := range r.classes {
		if k := &r.classes[i]; k.heap.len() > 0 && (c == nil || k.heap.topDeadline() < c.heap.topDeadline()) {
			c = k
		}
	}
	top := c.heap.top()
	if rec := r.at(int32(top)); rec.mask != c.full {
		// Its other hops may still come: calling it lost or missed
		// would be a figure made up at the limit. It is dropped (fate
		// unknown), as when a probe gives a sighting up.
		r.c.Forced++
		r.drop(c, rec)
		r.forcedGap(c, rec)
		r.remove(top)
		return
	}
	r.expire(top)
}

// fit says how well time x at hop h fits record rec's other hops: in path
// order (ok), and how far x is from where the class's usual transit puts
// it (d), and the tolerance on d. rec must have a hop other than h.
func (c *class) fit(rec recRef, h uint8, x int64) (ok bool, d, tol int64) {
	m := rec.mask &^ (1 << h)
	ok = true
	for mm := m; mm != 0; mm &= mm - 1 {
		k := uint8(bits.TrailingZeros8(mm))
		if (k < h && rec.ts[k] > x) || (k > h && rec.ts[k] < x) {
			ok = false
			break
		}
	}
	k := bits.TrailingZeros8(m)
	d = absDiff(x, rec.ts[k]+c.est[h]-c.est[k])
	tol = 4*(c.dev[h]+c.dev[k]) + int64(time.Millisecond)
	return ok, d, tol
}

// swap finds, among the candidates holding a sighting at hop h, the record
// that time t fits (in path order, and within the learned transit once
// learned) where its own sighting at h does not, gives it t (and span) and
// returns it with the time and span it held; -1 when there is none. The delays of a record
// are counted only when it is decided (expire), so a record completed with
// the wrong sighting is corrected before anything is counted: the pairing
// does not depend on the order in which the probes' PDUs arrive.
func (r *Reconciler) swap(c *class, h uint8, t int64, span uint32) (int32, int64, uint32) {
	bit := uint8(1) << h
	best, bestD := int32(-1), int64(math.MaxInt64)
	learned := c.nest >= learnMin
	for _, i := range r.cands {
		rec := r.at(int32(i))
		if rec.mask&bit == 0 || rec.mask == bit {
			continue
		}
		okN, dN, tol := c.fit(rec, h, t)
		if !okN || (learned && dN > tol) {
			continue
		}
		okO, dO, _ := c.fit(rec, h, rec.ts[h])
		if okO && (!learned || dO <= tol || dO <= dN) {
			continue // its own sighting fits as well
		}
		if dN < bestD {
			best, bestD = int32(i), dN
		}
	}
	if best < 0 {
		return -1, 0, 0
	}
	rec := r.at(int32(best))
	old := rec.ts[h]
	rec.ts[h] = t
	var oldSpan uint32
	if rec.sp != nil {
		oldSpan, rec.sp[h] = rec.sp[h], span
	}
	r.retime(c, best)
	r.c.Swaps++
	return best, old, oldSpan
}

// retime recomputes the earliest time and the deadline of record i after
// one of its hop times changed.
func (r *Reconciler) retime(c *class, i int32) {
	rec := r.at(int32(i))
	deadline := rec.earliest() + c.timeout
	if rec.mask == c.full {
		deadline = c.tombstone(rec)
	}
	c.heap.fix(r.hpos, r.hpos[i], deadline)
}

// match picks, among the candidates lacking hop h, the record the sighting
// at time t belongs to, or -1. When several packets share a signature
// (a clash), the right one is the one whose times fit: its other hops in
// path order around t, and t where the class's usual transit puts it. The
// usual transit is est, a running mean of each hop's time after the first
// hop over the completed packets of the class, and dev its mean deviation.
// Taking the nearest time alone would pair two clashing packets sent closer
// together than the delay the wrong way round; taking the oldest alone
// would pair the second with the first when the first was lost.
//
// A candidate out of path order (t before an earlier hop's time, or after
// a later one's) is taken only while the class has not learned its transit,
// or when t is within the learned spread of where the transit puts it (the
// probes' clocks disagree by more than the delay: est has learned the
// offset). Otherwise it is another packet with the same signature, and the
// sighting opens a record of its own. Should the clocks step, every match
// would be refused: after maxRefusals refusals without a completion the
// class forgets what it learned and starts again.
func (r *Reconciler) match(c *class, h uint8, t int64) (best int32, plausible bool) {
	best, bestD, bestOK, bestTol := int32(-1), int64(math.MaxInt64), false, int64(0)
	refused := false
	for _, i := range r.cands {
		rec := r.at(int32(i))
		if rec.mask&(1<<h) != 0 {
			continue
		}
		ok, d, tol := c.fit(rec, h, t)
		if !ok && c.nest >= learnMin && d > tol {
			refused = true
			continue
		}
		// An order-consistent candidate beats any other; then the one
		// nearest the expected time; candidates come in key order, so on
		// a tie the older one wins.
		if (ok && !bestOK) || (ok == bestOK && d < bestD) {
			best, bestD, bestOK, bestTol = int32(i), d, ok, tol
		}
	}
	if best < 0 && refused {
		c.refusals++
		if c.refusals >= maxRefusals {
			c.nest, c.refusals = 0, 0
		}
	}
	// Plausible: in path order, and where the learned transit puts it
	// (before the class has learned, order alone).
	plausible = best >= 0 && bestOK && (c.nest < learnMin || bestD <= bestTol)
	return best, plausible
}

// learnMin is the number of completed packets after which a class trusts
// its learned transit; maxRefusals the out-of-order refusals without a
// completion after which it forgets it.
const (
	learnMin    = 16
	maxRefusals = 256
)

// learn folds the hop times of a completed packet into the class's usual
// transit (an exponential mean with weight 1/16, in integers so that the
// result does not depend on floating point).
func (c *class) learn(ts []int64) {
	for h := 1; h < c.nhops; h++ {
		x := ts[h] - ts[0]
		if c.nest == 0 {
			c.est[h], c.dev[h] = x, 0
		} else {
			c.dev[h] += (absDiff(x, c.est[h]) - c.dev[h]) / 16
			c.est[h] += (x - c.est[h]) / 16
		}
	}
	c.nest++
	c.refusals = 0
}
