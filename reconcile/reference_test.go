package reconcile

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/tmon-project/tmon/conf"
)

// refRecon is the slow, obvious reconciler the B-tree one is checked
// against: records in a plain slice scanned in full for every sighting,
// statistics in maps, the sum of squares in math/big, reordering by
// comparing every pair of packets. It implements the rules of the package
// doc, written again without any of the fast one's data structures.
type refRecon struct {
	cfg        *conf.Config
	flows      map[uint32]int
	recs       []*refRec
	seq        int
	max        int
	wm         int64
	closed     int64 // slots below are closed
	slots      map[int64]*refSlot
	out        []string // canonical text of each closed interval
	counters   Counters
	maxTimeout int64
	est        map[int][MaxHops]int64 // per class: usual time of each hop after hop 0
	nest       map[int]int
	dev        map[int][MaxHops]int64
	refusals   map[int]int
	forced     []refGap // hops whose sightings a forced record took with it
}

// refGap: class, hops, first and last time of a record forced out.
type refGap struct {
	class    int
	hops     uint8
	from, to int64
}

type refRec struct {
	flow, sig uint32
	ref       int64
	seq       int
	ts        [MaxHops]int64
	has       [MaxHops]bool
	done      bool  // every hop seen
	learned   bool  // done, and folded into the usual transit
	measured  bool  // done and decided: its delays are counted
	doneUntil int64 // measured: kept until the watermark passes this
}

type refStat struct {
	count, lost, missed, dup, clash uint64
	dropped                         uint64 // forced out at the record limit
	sum                             int64
	sumsq                           big.Int
	min, max                        int64
	hist                            []uint64
	pk                              [][2]int64 // (from, to) of every delay
}

type refSlot struct {
	stats      map[[2]int]*refStat // (flow, pair)
	packets    []string
	incomplete []string
}

func newRef(cfg *conf.Config, maxRecords int) *refRecon {
	r := &refRecon{cfg: cfg, flows: map[uint32]int{}, max: maxRecords, wm: math.MinInt64, closed: math.MinInt64, slots: map[int64]*refSlot{}, est: map[int][MaxHops]int64{}, nest: map[int]int{}, dev: map[int][MaxHops]int64{}, refusals: map[int]int{}}
	for _, c := range cfg.Classes {
		if c.OneWay != nil {
			r.maxTimeout = max(r.maxTimeout, int64(c.OneWay.Timeout))
		}
	}
	return r
}

func refPairs(ow *conf.OneWay) []conf.HopPair {
	if len(ow.Pairs) == 0 {
		return []conf.HopPair{{From: 0, To: len(ow.Hops) - 1}}
	}
	return ow.Pairs
}

func (r *refRecon) ow(flow uint32) *conf.OneWay { return r.cfg.Classes[r.flows[flow]].OneWay }

func (r *refRecon) slotNum(t int64) int64 {
	// Euclidean division: the floor for a positive divisor, by another road.
	return new(big.Int).Div(big.NewInt(t), big.NewInt(int64(r.cfg.Interval))).Int64()
}

func (r *refRecon) stat(t int64, flow uint32, pair int) *refStat {
	sl := r.slot(t)
	k := [2]int{int(flow), pair}
	st := sl.stats[k]
	if st == nil {
		st = &refStat{hist: make([]uint64, len(refPairs(r.ow(flow))[pair].Slices)+1)}
		sl.stats[k] = st
	}
	return st
}

func (r *refRecon) slot(t int64) *refSlot {
	n := r.slotNum(t)
	sl := r.slots[n]
	if sl == nil {
		sl = &refSlot{stats: map[[2]int]*refStat{}}
		r.slots[n] = sl
	}
	return sl
}

func (r *refRecon) Add(s Sighting) {
	r.counters.Sightings++
	cls, ok := r.flows[s.Flow]
	if !ok || int(s.Hop) >= len(r.cfg.Classes[cls].OneWay.Hops) {
		r.counters.Invalid++
		return
	}
	if r.slotNum(s.TS) < r.closed {
		r.counters.Late++
		return
	}
	r.place(s, cls, 0)
}

// fit: is x at hop h in path order with rec's other hops, how far from
// where the usual transit puts it, and the tolerance on that distance.
func (r *refRecon) fit(rec *refRec, cls, h int, x int64) (ok bool, d, tol int64) {
	ow := r.cfg.Classes[cls].OneWay
	est, dev := r.est[cls], r.dev[cls]
	ok, first := true, -1
	for k := range ow.Hops {
		if k == h || !rec.has[k] {
			continue
		}
		if first < 0 {
			first = k
		}
		if (k < h && rec.ts[k] > x) || (k > h && rec.ts[k] < x) {
			ok = false
		}
	}
	return ok, abs64(x - (rec.ts[first] + est[h] - est[first])), 4*(dev[h]+dev[first]) + int64(time.Millisecond)
}

func (r *refRecon) place(s Sighting, cls, depth int) {
	ow := r.cfg.Classes[cls].OneWay
	t, h := s.TS, int(s.Hop)
	var cands []*refRec
	for _, rec := range r.recs {
		if rec.flow == s.Flow && rec.sig == s.Sig && rec.ref >= t-int64(ow.MaxTransit) && rec.ref <= t+int64(ow.MaxTransit) {
			cands = append(cands, rec)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].ref != cands[j].ref {
			return cands[i].ref < cands[j].ref
		}
		return cands[i].seq < cands[j].seq
	})
	for _, c := range cands {
		if c.has[h] && abs64(c.ts[h]-t) <= int64(ow.DupWindow) {
			if t < c.ts[h] {
				c.ts[h], t = t, c.ts[h] // the earlier is the packet
			}
			r.counters.Duplicates++
			for p, hp := range refPairs(ow) {
				if hp.To == h {
					r.stat(t, s.Flow, p).dup++
				}
			}
			return
		}
	}
	// The candidate whose times fit: hops in path order around t first,
	// then the nearest to where the usual transit puts t; the older on a
	// tie. Out of path order only near the learned transit, once learned.
	learned := r.nest[cls] >= 16
	var best *refRec
	var bestD, bestTol int64
	bestOK, refused := false, false
	for _, c := range cands {
		if c.has[h] {
			continue
		}
		ok, d, tol := r.fit(c, cls, h, t)
		if !ok && learned && d > tol {
			refused = true
			continue
		}
		if best == nil || (ok && !bestOK) || (ok == bestOK && d < bestD) {
			best, bestD, bestOK, bestTol = c, d, ok, tol
		}
	}
	if best == nil && refused {
		r.refusals[cls]++
		if r.refusals[cls] >= 256 {
			r.nest[cls], r.refusals[cls] = 0, 0
		}
	}
	plausible := best != nil && bestOK && (!learned || bestD <= bestTol)
	if !plausible && depth < 4 {
		// A record not yet decided that t fits where its own sighting at
		// h does not: t takes its place, the displaced one is placed anew.
		var sw *refRec
		swD := int64(math.MaxInt64)
		for _, c := range cands {
			n := 0
			for k := range ow.Hops {
				if c.has[k] {
					n++
				}
			}
			if !c.has[h] || c.measured || n < 2 {
				continue
			}
			okN, dN, tol := r.fit(c, cls, h, t)
			if !okN || (learned && dN > tol) {
				continue
			}
			if okO, dO, _ := r.fit(c, cls, h, c.ts[h]); okO && (!learned || dO <= tol || dO <= dN) {
				continue
			}
			if dN < swD {
				sw, swD = c, dN
			}
		}
		if sw != nil {
			old := sw.ts[h]
			sw.ts[h] = t
			r.counters.Swaps++
			r.place(Sighting{Flow: s.Flow, Hop: s.Hop, Sig: s.Sig, TS: old}, cls, depth+1)
			return
		}
	}
	if best != nil && !plausible {
		// A forced gap at one of best's hops: t's partner may be gone.
		for _, g := range r.forced {
			covers := false
			for k, ok := range best.has {
				covers = covers || (ok && g.hops&(1<<k) != 0)
			}
			if covers && g.class == cls && t >= g.from-int64(ow.MaxTransit) && t <= g.to+int64(ow.MaxTransit) {
				best = nil
				break
			}
		}
	}
	if best != nil {
		best.ts[h], best.has[h] = t, true
		all := true
		for i := range ow.Hops {
			all = all && best.has[i]
		}
		if all {
			r.complete(best, plausible)
		}
		return
	}
	if len(cands) > 0 {
		r.counters.Clashes++
		for p := range refPairs(ow) {
			r.stat(t, s.Flow, p).clash++
		}
	}
	if r.live() >= r.max {
		// Force out the undecided record with the earliest deadline.
		var oldest *refRec
		for _, rec := range r.recs {
			if !rec.measured && (oldest == nil || r.deadline(rec) < r.deadline(oldest)) {
				oldest = rec
			}
		}
		if !oldest.done {
			r.counters.Forced++
			r.drop(oldest)
			g := refGap{class: r.flows[oldest.flow], from: r.first(oldest), to: r.first(oldest)}
			for h, ok := range oldest.has {
				if ok {
					g.hops |= 1 << h
					g.to = max(g.to, oldest.ts[h])
				}
			}
			r.forced = append(r.forced, g)
		} else {
			r.expire(oldest)
		}
	}
	rec := &refRec{flow: s.Flow, sig: s.Sig, ref: t, seq: r.seq}
	r.seq++
	rec.ts[h], rec.has[h] = t, true
	r.recs = append(r.recs, rec)
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func (r *refRecon) first(rec *refRec) int64 {
	m := int64(math.MaxInt64)
	for h, ok := range rec.has {
		if ok && rec.ts[h] < m {
			m = rec.ts[h]
		}
	}
	return m
}

// live counts the undecided records.
func (r *refRecon) live() int {
	n := 0
	for _, rec := range r.recs {
		if !rec.measured {
			n++
		}
	}
	return n
}

func (r *refRecon) deadline(rec *refRec) int64 {
	ow := r.ow(rec.flow)
	switch {
	case rec.measured:
		return rec.doneUntil
	case rec.done:
		// Decided once the duplicate window after its last sighting has
		// passed, at the latest at its timeout.
		last := int64(math.MinInt64)
		for h := range ow.Hops {
			last = max(last, rec.ts[h])
		}
		return min(last+int64(ow.DupWindow), r.first(rec)+int64(ow.Timeout))
	}
	return r.first(rec) + int64(ow.Timeout)
}

// complete marks rec done; it learns the transit now when the sighting
// that completed it fit (plausible), else when decided.
func (r *refRecon) complete(rec *refRec, plausible bool) {
	rec.done = true
	if plausible {
		r.learn(rec)
	}
}

func (r *refRecon) learn(rec *refRec) {
	rec.learned = true
	ow := r.ow(rec.flow)
	cls := r.flows[rec.flow]
	est, dev := r.est[cls], r.dev[cls]
	for h := 1; h < len(ow.Hops); h++ {
		x := rec.ts[h] - rec.ts[0]
		if r.nest[cls] == 0 {
			est[h], dev[h] = x, 0
		} else {
			dev[h] += (abs64(x-est[h]) - dev[h]) / 16
			est[h] += (x - est[h]) / 16
		}
	}
	r.est[cls], r.dev[cls] = est, dev
	r.nest[cls]++
	r.refusals[cls] = 0
}

// decide counts a done record's delays; it is kept for duplicates and
// clashes until doneUntil.
func (r *refRecon) decide(rec *refRec) {
	ow := r.ow(rec.flow)
	if !rec.learned {
		r.learn(rec)
	}
	for p, hp := range refPairs(ow) {
		r.measure(rec, p, hp)
	}
	r.counters.Completed++
	rec.measured = true
	last := int64(math.MinInt64)
	for h := range ow.Hops {
		last = max(last, rec.ts[h])
	}
	// Kept for duplicates (DupWindow after the last sighting) and, so that
	// clashes do not depend on delivery order, MaxTransit after its
	// reference time.
	rec.doneUntil = max(last+int64(ow.DupWindow), rec.ref+int64(ow.MaxTransit))
}

// measure counts rec's delay over pair p, seen at both its hops.
func (r *refRecon) measure(rec *refRec, p int, hp conf.HopPair) {
	ow := r.ow(rec.flow)
	from, to := rec.ts[hp.From], rec.ts[hp.To]
	d := to - from
	st := r.stat(from, rec.flow, p)
	if st.count == 0 || d < st.min {
		st.min = d
	}
	if st.count == 0 || d > st.max {
		st.max = d
	}
	st.count++
	st.sum += d
	st.sumsq.Add(&st.sumsq, new(big.Int).Mul(big.NewInt(d), big.NewInt(d)))
	bin := 0
	for _, e := range hp.Slices {
		if d >= int64(e) {
			bin++
		}
	}
	st.hist[bin]++
	st.pk = append(st.pk, [2]int64{from, to})
	if ow.PerPacket {
		sl := r.slot(from)
		sl.packets = append(sl.packets, fmt.Sprintf("pkt flow=%d pair=%d from=%d sig=%08x to=%d", rec.flow, p, from, rec.sig, to))
	}
}

func (r *refRecon) expire(rec *refRec) {
	if rec.done && !rec.measured {
		r.decide(rec)
		if rec.doneUntil >= r.wm && r.wm != math.MaxInt64 {
			return // kept for duplicates and clashes
		}
	}
	for i, x := range r.recs {
		if x == rec {
			r.recs = append(r.recs[:i], r.recs[i+1:]...)
			break
		}
	}
	if rec.done {
		return
	}
	ow := r.ow(rec.flow)
	// Lacking only hops whose sightings a forced record took: dropped.
	var missing uint8
	for h := range ow.Hops {
		if !rec.has[h] {
			missing |= 1 << h
		}
	}
	for _, g := range r.forced {
		if f := r.first(rec); g.class == r.flows[rec.flow] && f >= g.from-int64(ow.MaxTransit) && f <= g.to+int64(ow.MaxTransit) {
			missing &^= g.hops
		}
	}
	if missing == 0 {
		r.recs = append(r.recs, rec) // drop removes it
		r.drop(rec)
		return
	}
	// Lost: the hops seen are exactly 0..k for some k.
	k := 0
	for k < len(ow.Hops) && rec.has[k] {
		k++
	}
	lost := true
	for h := k; h < len(ow.Hops); h++ {
		lost = lost && !rec.has[h]
	}
	for p, hp := range refPairs(ow) {
		t := r.first(rec)
		if rec.has[hp.From] {
			t = rec.ts[hp.From]
		}
		if rec.has[hp.From] && rec.has[hp.To] {
			r.measure(rec, p, hp)
		}
		if lost && rec.has[hp.From] && !rec.has[hp.To] {
			r.stat(t, rec.flow, p).lost++
		}
		if !lost && (!rec.has[hp.From] || !rec.has[hp.To]) {
			r.stat(t, rec.flow, p).missed++
		}
	}
	if ow.PerPacket {
		r.incomplete(rec, fmt.Sprintf("lost=%v", lost))
	}
	if lost {
		r.counters.Lost++
	} else {
		r.counters.Missed++
	}
}

// incomplete writes the per-packet row of rec, decided incomplete with
// outcome, in its slot.
func (r *refRecon) incomplete(rec *refRec, outcome string) {
	var hops []string
	for h := range r.ow(rec.flow).Hops {
		if rec.has[h] {
			hops = append(hops, fmt.Sprint(rec.ts[h]))
		} else {
			hops = append(hops, "-")
		}
	}
	sl := r.slot(r.first(rec))
	sl.incomplete = append(sl.incomplete, fmt.Sprintf("inc flow=%d first=%d sig=%08x %s hops=%s", rec.flow, r.first(rec), rec.sig, outcome, strings.Join(hops, ",")))
}

// drop decides rec, incomplete, at the record limit: its pairs seen at
// both ends are measured, the others counted dropped (fate unknown).
func (r *refRecon) drop(rec *refRec) {
	for i, x := range r.recs {
		if x == rec {
			r.recs = append(r.recs[:i], r.recs[i+1:]...)
			break
		}
	}
	ow := r.ow(rec.flow)
	for p, hp := range refPairs(ow) {
		t := r.first(rec)
		if rec.has[hp.From] {
			t = rec.ts[hp.From]
		}
		if rec.has[hp.From] && rec.has[hp.To] {
			r.measure(rec, p, hp)
		} else {
			r.stat(t, rec.flow, p).dropped++
		}
	}
	if ow.PerPacket {
		r.incomplete(rec, "lost=false dropped=true")
	}
	r.counters.Dropped++
}

func (r *refRecon) Advance(w int64) {
	if w <= r.wm {
		return
	}
	r.wm = w
	for _, rec := range append([]*refRec(nil), r.recs...) {
		if r.deadline(rec) < w {
			r.expire(rec)
		}
	}
	for _, rec := range append([]*refRec(nil), r.recs...) {
		if rec.measured && rec.doneUntil < w {
			r.expire(rec)
		}
	}
	r.closeWhere(func(n int64) bool {
		end := (n + 1) * int64(r.cfg.Interval)
		return w > end+r.maxTimeout
	})
}

func (r *refRecon) Flush() {
	r.wm = math.MaxInt64
	for len(r.recs) > 0 {
		r.expire(r.recs[0])
	}
	r.wm = math.MaxInt64
	r.closeWhere(func(int64) bool { return true })
}

func (r *refRecon) closeWhere(ok func(int64) bool) {
	var ns []int64
	for n := range r.slots {
		if ok(n) {
			ns = append(ns, n)
		}
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i] < ns[j] })
	for _, n := range ns {
		r.out = append(r.out, r.render(n, r.slots[n]))
		delete(r.slots, n)
		r.closed = n + 1
	}
}

// render writes a slot in the canonical text that canon writes for an
// Interval; rows with every counter zero do not exist.
func (r *refRecon) render(n int64, sl *refSlot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "interval %d len %d\n", n*int64(r.cfg.Interval), int64(r.cfg.Interval))
	var keys [][2]int
	for k := range sl.stats {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		st := sl.stats[k]
		var reo uint64
		for _, a := range st.pk {
			for _, b := range st.pk {
				if b[1] < a[1] && b[0] > a[0] {
					reo++
					break
				}
			}
		}
		if st.count+st.lost+st.missed+st.dropped+st.dup+st.clash == 0 {
			continue
		}
		mm := ""
		if st.count > 0 {
			mm = fmt.Sprintf("%d %d", st.min, st.max)
		}
		fmt.Fprintf(&b, "stat flow=%d class=%d pair=%d n=%d sum=%d sumsq=%s minmax=%s hist=%v lost=%d missed=%d dropped=%d dup=%d reo=%d clash=%d\n",
			k[0], r.flows[uint32(k[0])], k[1], st.count, st.sum, st.sumsq.String(), mm, st.hist, st.lost, st.missed, st.dropped, st.dup, reo, st.clash)
	}
	sort.Strings(sl.packets)
	for _, p := range sl.packets {
		b.WriteString(p + "\n")
	}
	sort.Strings(sl.incomplete)
	for _, p := range sl.incomplete {
		b.WriteString(p + "\n")
	}
	return b.String()
}

// canon writes an Interval in the reference's canonical text. Packets and
// incomplete rows are sorted as text on both sides: the order within an
// interval is not part of the contract beyond being deterministic.
func canon(cfg *conf.Config, iv *Interval) string {
	var b strings.Builder
	fmt.Fprintf(&b, "interval %d len %d\n", iv.Start, int64(iv.Length))
	for _, st := range iv.Stats {
		mm := ""
		if st.Count > 0 {
			mm = fmt.Sprintf("%d %d", st.Min, st.Max)
		}
		fmt.Fprintf(&b, "stat flow=%d class=%d pair=%d n=%d sum=%d sumsq=%s minmax=%s hist=%v lost=%d missed=%d dropped=%d dup=%d reo=%d clash=%d\n",
			st.Flow, st.Class, st.Pair, st.Count, st.Sum, st.SumSq.String(), mm, st.Hist, st.Lost, st.Missed, st.Dropped, st.Duplicate, st.Reordered, st.Clashes)
	}
	var pk []string
	for _, p := range iv.Packets {
		pk = append(pk, fmt.Sprintf("pkt flow=%d pair=%d from=%d sig=%08x to=%d", p.Flow, p.Pair, p.From, p.Sig, p.To))
	}
	sort.Strings(pk)
	for _, p := range pk {
		b.WriteString(p + "\n")
	}
	var inc []string
	for _, in := range iv.Incomplete {
		var hops []string
		for h := range cfg.Classes[in.Class].OneWay.Hops {
			if in.Mask&(1<<h) != 0 {
				hops = append(hops, fmt.Sprint(in.TS[h]))
			} else {
				hops = append(hops, "-")
			}
		}
		drop := ""
		if in.Dropped {
			drop = " dropped=true"
		}
		inc = append(inc, fmt.Sprintf("inc flow=%d first=%d sig=%08x lost=%v%s hops=%s", in.Flow, in.First(), in.Sig, in.Lost, drop, strings.Join(hops, ",")))
	}
	sort.Strings(inc)
	for _, p := range inc {
		b.WriteString(p + "\n")
	}
	return b.String()
}
