package reconcile

import (
	"math"
	"math/bits"
	"slices"

	"github.com/tmon-project/tmon/selection"
)

// Dropped sightings (trafMon §1.5: "dropped, a probe gave up on the PDU").
//
// When a probe gives up PDUs to a collector, it tells it which hops of which
// classes the lost sightings were at (the probe's interfaces) and their
// capture-time span. A record that expires incomplete is dropped — not lost
// nor missed — when every hop it lacks is one such a gap covers: the probe
// saw the packet there (or may have) but the observation never arrived. A
// gap covers a record whose earliest time lies within the gap's span
// widened by the class's maximum transit (the missing sighting is within
// that of the record's times).

// Gap is a span of sightings a probe gave up, at some hops of one class.
type Gap struct {
	Class    int   // index into Config.Classes
	Hops     uint8 // bit h: hop h of the class's path is in the gap
	From, To int64 // capture times (ns) of the first and last sighting given up; To math.MaxInt64: still open
	// Shed, when not 0, narrows the gap to the packets a probe shedding
	// at that level left out (selection.Shed): its other packets were sent.
	Shed uint8
	// Owner is the probe (its index) whose shedding the gap describes:
	// SetShed replaces the owner's shedding gaps.
	Owner int
	// Prior: the gap is a switch of configuration versions at From (=
	// To), seen from the new version. A packet whose hop_from sighting is
	// missing there was at hop_from before the switch: the old version
	// counted it (dropped) in the interval of that time, so the new one
	// accounts for its sightings (owd_accounting dropped) but does not
	// count the packet again (owd_stats, owd_incomplete).
	Prior bool
	// Ending: the same switch seen from the old version. Prior covers only
	// the hops before a record's first sighting (they were before the
	// switch), Ending only those after its last (after the switch): a
	// sighting missing on the record's own side of the instant would have
	// come, and the record is lost or missed as usual.
	Ending bool
}

// Gaps returns a copy of the gaps held (for a collector's snapshot).
func (r *Reconciler) Gaps() []Gap { return slices.Clone(r.gaps.list) }

// covers reports whether g, a gap of the record's class, holds the
// sightings of the packet of signature sig and earliest time t at its hops.
func (g *Gap) covers(sig uint32, t, maxT int64) bool {
	if t < g.From-maxT || (g.To != math.MaxInt64 && t > g.To+maxT) {
		return false
	}
	return g.Shed == 0 || selection.Shed(sig, g.Shed)
}

// SetShed replaces the shedding gaps of probe owner (spans of one level
// each, the last possibly open): the probe's notices may arrive in any
// order, so its caller rebuilds them all from every notice it holds.
func (r *Reconciler) SetShed(owner int, gs []Gap) {
	keep := r.gaps.list[:0]
	for _, g := range r.gaps.list {
		if g.Shed == 0 || g.Owner != owner {
			keep = append(keep, g)
		}
	}
	clear(r.gaps.list[len(keep):])
	r.gaps.list = keep
	for _, g := range gs {
		if g.Shed > 0 {
			g.Owner = owner
			r.AddGap(g)
		}
	}
}

// gaps holds the gaps still able to cover a live record. Bounded: a gap is
// forgotten once the watermark is past its end by the class timeout and
// maximum transit (no record it could cover is left), and at most maxGaps
// are kept (the oldest go first: their records count as lost or missed).
type gaps struct {
	list []Gap
}

const maxGaps = 4096

// AddGap declares sightings a probe gave up (see Gap). Records that expire
// later and lack only hops of the gap within its span count as dropped.
func (r *Reconciler) AddGap(g Gap) {
	if g.Class < 0 || g.Class >= len(r.classes) || r.classes[g.Class].index < 0 || g.Hops == 0 {
		return
	}
	if len(r.gaps.list) >= maxGaps {
		r.gaps.list = append(r.gaps.list[:0], r.gaps.list[1:]...)
	}
	r.gaps.list = append(r.gaps.list, g)
}

// forcedGap remembers that rec, forced out at the record limit, took the
// sightings at its hops with it: a later sighting of the same packet at
// another hop makes a record lacking exactly those, which must be dropped
// too, not called lost or missed. A flood forces records one after the
// other in time order, so the span grows the class's latest such gap
// instead of adding one per record (maxGaps would evict the probes' own).
func (r *Reconciler) forcedGap(c *class, rec recRef) {
	hi := rec.earliest()
	for m := rec.mask; m != 0; m &= m - 1 {
		hi = max(hi, rec.ts[bits.TrailingZeros8(m)])
	}
	if n := len(r.gaps.list); n > 0 {
		if g := &r.gaps.list[n-1]; g.Shed == 0 && !g.Prior && !g.Ending && g.Class == c.index && g.Hops == rec.mask && rec.earliest() <= g.To+c.maxT && hi >= g.From-c.maxT {
			g.From, g.To = min(g.From, rec.earliest()), max(g.To, hi)
			return
		}
	}
	r.AddGap(Gap{Class: c.index, Hops: rec.mask, From: rec.earliest(), To: hi})
}

// dropped reports whether the incomplete record rec of class c lacks only
// hops that gaps cover.
func (r *Reconciler) dropped(c *class, rec recRef) bool {
	missing := c.full &^ rec.mask
	if missing == 0 || len(r.gaps.list) == 0 {
		return false
	}
	for i := range r.gaps.list {
		g := &r.gaps.list[i]
		if g.Class != c.index || !g.covers(rec.sig, rec.earliest(), c.maxT) {
			continue
		}
		hops := g.Hops
		if g.Prior {
			hops &= rec.mask&-rec.mask - 1 // below the first sighting
		}
		if g.Ending {
			hops &^= 1<<bits.Len8(rec.mask) - 1 // above the last
		}
		missing &^= hops
		if missing == 0 {
			return true
		}
	}
	return false
}

// inGap reports whether a gap of class c covers the packet of signature
// sig at time t at any of hops.
func (r *Reconciler) inGap(c *class, hops uint8, sig uint32, t int64) bool {
	for i := range r.gaps.list {
		if g := &r.gaps.list[i]; g.Class == c.index && g.Hops&hops != 0 && g.covers(sig, t, c.maxT) {
			return true
		}
	}
	return false
}

// priorGap reports whether a Prior gap of class c covers the record.
func (r *Reconciler) priorGap(c *class, rec recRef) bool {
	for i := range r.gaps.list {
		if g := &r.gaps.list[i]; g.Prior && g.Class == c.index && rec.earliest() >= g.From-c.maxT && rec.earliest() <= g.To+c.maxT {
			return true
		}
	}
	return false
}

// pruneGaps forgets the gaps no live record can need any more.
func (r *Reconciler) pruneGaps() {
	keep := r.gaps.list[:0]
	for _, g := range r.gaps.list {
		c := &r.classes[g.Class]
		if g.To == math.MaxInt64 || g.To+c.maxT+c.timeout >= r.wm {
			keep = append(keep, g)
		}
	}
	clear(r.gaps.list[len(keep):])
	r.gaps.list = keep
}

// drop counts the incomplete record rec as dropped: in every pair with
// hop_from or hop_to missing, in the interval of its hop_from time (or of
// its earliest time).
func (r *Reconciler) drop(c *class, rec recRef) {
	prior := r.priorGap(c, rec)
	for p := range c.pairs {
		pp := &c.pairs[p]
		hasFrom := rec.mask&(1<<pp.from) != 0
		hasTo := rec.mask&(1<<pp.to) != 0
		if hasFrom && hasTo {
			r.measure(c, rec, p) // seen at both ends of this pair
			continue
		}
		if !hasFrom && prior {
			continue // counted before the switch (Gap.Prior)
		}
		t := rec.earliest()
		if hasFrom {
			t = rec.ts[pp.from]
		}
		sl := r.slot(r.slotOf(t))
		sl.stats[sl.stat(rec.flow, c, p)].Dropped++
	}
	if c.perPacket && !(prior && rec.mask&1 == 0) {
		sl := r.slot(r.slotOf(rec.earliest()))
		sl.iv.Incomplete = append(sl.iv.Incomplete, Incomplete{
			Flow: rec.flow, Class: c.index, Sig: rec.sig, Dropped: true, Mask: rec.mask, TS: rec.tsArray(),
		})
	}
	r.c.Dropped++
	r.account(c, rec, outDropped)
}
