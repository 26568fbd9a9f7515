// Package reconcile is the collector stage that merges the one-way sightings
// decoded from probe PDUs into per-packet records, turns complete records into
// per-hop-pair delays and incomplete ones into lost/missed counts, and hands
// one Interval of statistics per aggregation slot to a Sink (the spool).
//
// Data flow: transport (decoded PDUs) ──► reconcile ──Sink──► spool.
//
// Matching follows trafMon 4.3: records are indexed by (flow, signature),
// in reference time order, so that a sighting finds the record of its
// packet as the one nearest in time among those sharing its signature; a
// signature clash (two packets of one flow with the same hash within the
// maximum transit time) is detected, counted and tolerated.
//
// The rules, for a sighting at hop h and time t of a flow whose class has
// MaxTransit M, DupWindow D and Timeout T:
//
//   - Candidates are the records of the same flow and signature whose
//     reference time (the time of the sighting that created them) lies in
//     [t−M, t+M].
//   - If a candidate has hop h within D of t, the sighting is a duplicate:
//     the record keeps the earlier of the two times (in any arrival order),
//     the later is counted for each pair ending at h, then dropped. A
//     complete record is kept for this check until D after its last
//     sighting (at most its timeout after its earliest), and remembered M
//     after its reference time so that a later packet with the same
//     signature counts as a clash in any delivery order.
//   - Otherwise the candidate without hop h whose times fit takes it: its
//     other hops in path order around t first, then the one where the
//     class's usual transit puts t nearest (see match), the older on a
//     tie; a record with every hop is complete: one delay per hop pair, in
//     the interval of its hop_from time.
//   - Otherwise, when no candidate fits (in path order and, once learned,
//     within the usual transit), the sighting takes hop h of an undecided
//     candidate that it fits where that candidate's own sighting at h does
//     not (a clash whose sightings arrived out of order); the displaced
//     sighting is placed again by these rules.
//   - Otherwise a new record is created, and a clash counted if there were
//     candidates.
//   - A complete record is decided (its delays counted) once the watermark
//     passes the duplicate window after its last sighting, at the latest its
//     timeout after its earliest: until then a swap can still correct it, so
//     the pairing does not depend on the order the PDUs arrive in.
//   - A record whose earliest time is T older than the watermark is lost when
//     the hops seen are the first k of the path, missed otherwise.
//   - An interval closes once the watermark is past its end by the largest T
//     of any class: no record that could still count in it is left.
package reconcile

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/tmon-project/tmon/conf"
)

// MaxHops is the largest number of hops of a one-way path: a record keeps its
// hop times in a fixed array so that it never allocates.
const MaxHops = 8

// DefaultMaxRecords is the default cap on live records (Options.MaxRecords).
// A record of an n-hop class takes 28 + 8·n bytes plus 12 in its expiry
// heap and up to 4 in the match index (60 for 2 hops): 4 Mi records stay
// well under 1 GiB.
const DefaultMaxRecords = 4 << 20

// Sighting is one packet seen at one hop of a one-way path, as decoded from a
// probe PDU. Sizes: 24 bytes.
type Sighting struct {
	Flow uint32 // collector flow id, declared with AddFlow
	Hop  uint8  // index into the class's OneWay.Hops; alternative interfaces map to the same hop
	Sig  uint32 // packet signature
	TS   int64  // capture time, ns since the Unix epoch
	Size uint32 // IP length when the class carries it, else 0; not used for matching
	// Span: a datagram the probe reassembled from IP fragments, ns from
	// its first fragment to TS (its last); 0 for a packet captured whole.
	// Not used for matching; kept for the per-packet rows (Packet).
	Span uint32
}

// Sink receives each aggregation slot once it can no longer change.
// The Reconciler reuses the Interval and everything it points to after
// WriteInterval returns: a Sink must copy what it keeps.
// When WriteInterval fails, the slot stays open and is offered again at the
// next Advance or Flush.
type Sink interface {
	WriteInterval(*Interval) error
}

// Options tunes a Reconciler. The zero value selects the defaults.
type Options struct {
	// MaxRecords caps the live (incomplete) records. When a new record would
	// exceed it, the record closest to its timeout is expired early and
	// counted in Counters.Forced; memory stays bounded when a probe goes
	// silent or a flow's signatures never match. Default DefaultMaxRecords.
	MaxRecords int
}

// Counters are cumulative totals since New, for the collector to log and
// export. Forced, Late and Invalid growing are events worth reporting.
type Counters struct {
	Live       int    // records held: incomplete ones, and complete ones kept for the duplicate window
	Sightings  uint64 // Add calls
	Completed  uint64 // records with every hop seen
	Lost       uint64 // incomplete records missing only hops at the end of the path
	Missed     uint64 // incomplete records missing an earlier hop
	Dropped    uint64 // incomplete records whose missing hops a probe gave up (AddGap)
	Duplicates uint64 // sightings dropped as duplicates
	Clashes    uint64 // records created beside another of the same flow and signature
	Forced     uint64 // incomplete records expired early because MaxRecords was reached
	Late       uint64 // sightings dropped because their interval was already closed
	Invalid    uint64 // sightings of an undeclared flow or a hop outside the path
	Intervals  uint64 // intervals handed to the Sink
	Swaps      uint64 // sightings that took another's place in a record (clashes delivered out of order)
}

// ErrNoOneWay is returned by AddFlow for a class without a one-way measurement.
var ErrNoOneWay = errors.New("class has no one-way measurement")

// class is the per-class matching data, converted once from conf.
type class struct {
	index     int
	nhops     int
	full      uint8 // mask with every hop present
	pairs     []pair
	maxT      int64 // MaxTransit, ns
	timeout   int64 // Timeout, ns
	dup       int64 // DupWindow, ns
	perPacket bool
	sample    uint32         // 1 in sample packets selected by the probes (≥ 1)
	est       [MaxHops]int64 // usual time of each hop after hop 0 (see match)
	dev       [MaxHops]int64 // mean absolute deviation from est
	nest      int            // completed packets folded into est
	refusals  int            // out-of-order candidates refused since the last completion
	probes    [MaxHops][]int // probes observing each hop (conf.ProbeInterface.Probe)
	tol       []int64        // compose tolerance (clock.go) by pair·MaxHops + intermediate hop
	heap      expiryHeap     // the class's live records by deadline: each class waits for its own probes
}

type pair struct {
	from, to int
	edges    []int64 // slice edges, ns
}

// record is one packet being reconciled. Fixed size: records live in a
// pooled slice and are recycled through a free list. Its hop times are
// apart, in Reconciler.times (as many per record as the longest path of
// the configuration, not MaxHops); its earliest time is computed from them
// and its deadline kept only in its class's expiry heap, its position
// there in Reconciler.hpos. Every field is 4 bytes wide or less — the
// reference time in two halves — so that the record takes 24 bytes, not
// the 32 an int64 field's alignment would pad it to: a 2-hop packet
// waiting for its second sighting takes 60 bytes in all
// (BenchmarkReconcileWaiting).
type record struct {
	refHi   uint32 // ref() = refHi<<32 | refLo: the time of the sighting that created it, its order among candidates; immutable
	refLo   uint32
	flow    uint32
	sig     uint32
	next    int32  // next record of the same matchIndex chain
	cls     uint16 // index into Reconciler.classes
	mask    uint8  // hops present
	learned bool   // complete, and folded into the class's usual transit
}

// ref is the record's reference time.
func (rec *record) ref() int64 { return int64(uint64(rec.refHi)<<32 | uint64(rec.refLo)) }

// setRef sets the record's reference time.
func (rec *record) setRef(t int64) { rec.refHi, rec.refLo = uint32(uint64(t)>>32), uint32(t) }

// recRef is a record with its hop times, valid where mask has the bit. It
// is invalidated, like a pointer into Reconciler.recs, by alloc.
type recRef struct {
	*record
	ts []int64
	sp []uint32 // spans at each hop (Sighting.Span); nil without a per-packet class
}

// at returns record i with its times.
func (r *Reconciler) at(i int32) recRef {
	o := int(i) * r.stride
	ref := recRef{record: &r.recs[i], ts: r.times[o : o+r.stride : o+r.stride]}
	if r.spans != nil {
		ref.sp = r.spans[o : o+r.stride : o+r.stride]
	}
	return ref
}

// fs is the record's flow and signature, its matchIndex key.
func (rec *record) fs() uint64 { return uint64(rec.flow)<<32 | uint64(rec.sig) }

// earliest is the record's earliest hop time.
func (rec recRef) earliest() int64 {
	t := int64(math.MaxInt64)
	for m := rec.mask; m != 0; m &= m - 1 {
		t = min(t, rec.ts[bits.TrailingZeros8(m)])
	}
	return t
}

// tsArray is the record's hop times as the Interval reports them.
func (rec recRef) tsArray() [MaxHops]int64 {
	var a [MaxHops]int64
	copy(a[:], rec.ts)
	return a
}

// Reconciler matches sightings into records and aggregates them per slot.
//
// Concurrency: a Reconciler is not safe for concurrent use. AddFlow, Add,
// Advance, Flush and Counters must be called from one goroutine (the
// collector's reconcile goroutine); the Sink is called from within Advance
// and Flush on that goroutine.
//
// Costs: Add is O(log n) in the live records and does not allocate once the
// pools have grown to the steady-state working set.
type Reconciler struct {
	interval int64 // slot length, ns
	classes  []class
	flows    flowTable // flow id → index into classes; -1: undeclared
	sink     Sink
	max      int

	recs []record
	// hpos[i] is record i's position in its class's expiry heap, or the
	// next free record while it is free: apart from the records, so that
	// sifting the heap, which updates the positions of every entry it
	// moves, stays within dense arrays instead of writing into a record
	// at each level (the heap's sifting was a tenth of the reconciliation's
	// time), and the record packs into 24 bytes.
	hpos  []int32
	times []int64 // hop times of record i: times[i·stride : (i+1)·stride]
	// spans of record i like times (Sighting.Span), only when a class
	// writes per-packet rows: the others pay nothing for them.
	spans  []uint32
	spanOn bool
	stride int   // hops of the longest path
	free   int32 // head of the free list; -1 when empty
	index  matchIndex
	live   int // records in the classes' expiry heaps

	cands []uint32 // candidates of the sighting being placed

	maxTimeout int64 // largest class timeout: decides when a slot can close
	wm         int64 // watermark: every sighting before it has been delivered
	closed     int64 // slots below this number are closed
	slots      slotWindow

	last *slot // the slot slotAt found last; nil once it closed

	mx     *metricsState // scratch of metrics(), allocated at the first interval
	chunks chunkPool     // storage of the slots' delay logs (delays.go)
	clk    clockTol      // clock error bounds for the compose tolerance (clock.go)
	c      Counters

	gaps gaps // sightings given up by probes, for the dropped classification

	// recent remembers, per flow and signature, the last completed packet
	// for as long as a later packet with the same signature counts as a
	// clash with it (MaxTransit after its reference time). A completed
	// record itself leaves the index after the short duplicate window:
	// keeping it there for MaxTransit made the tree several times larger
	// and matching twice as slow.
	recent     recentTable
	swept      int64 // watermark of the last sweep of recent
	maxTransit int64 // largest class MaxTransit
}

// recentDone is a completed packet that can still clash.
type recentDone struct {
	ref   int64 // its reference time
	until int64 // it can clash while the watermark has not passed this
}

// New returns a Reconciler for the one-way classes of cfg, writing closed
// intervals to sink. cfg must have been validated; New checks what matching
// relies on and reports the class at fault.
func New(cfg *conf.Config, sink Sink, opt Options) (*Reconciler, error) {
	if cfg == nil || sink == nil {
		return nil, errors.New("reconcile: new: nil config or sink")
	}
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("reconcile: new: interval %v is not positive", cfg.Interval)
	}
	if opt.MaxRecords <= 0 {
		opt.MaxRecords = DefaultMaxRecords
	}
	if opt.MaxRecords > math.MaxInt32-1 {
		return nil, fmt.Errorf("reconcile: new: max records %d exceeds %d", opt.MaxRecords, math.MaxInt32-1)
	}
	r := &Reconciler{
		interval: int64(cfg.Interval),
		classes:  make([]class, len(cfg.Classes)),
		sink:     sink,
		max:      opt.MaxRecords,
		free:     -1,
		index:    newMatchIndex(),
		wm:       math.MinInt64,
		closed:   math.MinInt64,
		chunks:   newChunkPool(),
	}
	r.clk.assumed = cfg.Clock.AssumeSynced
	for i := range cfg.Classes {
		cl := &cfg.Classes[i]
		r.classes[i].index = -1
		if cl.OneWay == nil {
			continue
		}
		c, err := newClass(i, cl.OneWay)
		if err != nil {
			return nil, fmt.Errorf("reconcile: new: class %q: %w", cl.Name, err)
		}
		c.newTol(cl.OneWay)
		r.classes[i] = c
		r.maxTimeout = max(r.maxTimeout, c.timeout)
		r.stride = max(r.stride, c.nhops)
		r.spanOn = r.spanOn || c.perPacket
		r.maxTransit = max(r.maxTransit, c.maxT)
	}
	r.recent = newRecentTable(r.maxTransit)
	return r, nil
}

func newClass(i int, ow *conf.OneWay) (class, error) {
	n := len(ow.Hops)
	if n < 2 || n > MaxHops {
		return class{}, fmt.Errorf("%d hops, want 2 to %d", n, MaxHops)
	}
	if ow.MaxTransit <= 0 || ow.Timeout <= 0 || ow.DupWindow < 0 {
		return class{}, fmt.Errorf("maxTransit %v, timeout %v, dupWindow %v: want positive times", ow.MaxTransit, ow.Timeout, ow.DupWindow)
	}
	c := class{
		index:     i,
		nhops:     n,
		full:      uint8(1<<n - 1),
		maxT:      int64(ow.MaxTransit),
		timeout:   int64(ow.Timeout),
		dup:       int64(ow.DupWindow),
		perPacket: ow.PerPacket,
		sample:    max(ow.Sample, 1),
	}
	pairs := ow.Pairs
	if len(pairs) == 0 {
		pairs = []conf.HopPair{{From: 0, To: n - 1}}
	}
	for _, p := range pairs {
		if p.From < 0 || p.To >= n || p.From >= p.To {
			return class{}, fmt.Errorf("hop pair %d→%d outside 0..%d or not in path order", p.From, p.To, n-1)
		}
		edges := make([]int64, len(p.Slices))
		for j, e := range p.Slices {
			edges[j] = int64(e)
			if j > 0 && edges[j] <= edges[j-1] {
				return class{}, fmt.Errorf("hop pair %d→%d: slice edges not ascending at %v", p.From, p.To, e)
			}
		}
		c.pairs = append(c.pairs, pair{from: p.From, to: p.To, edges: edges})
	}
	return c, nil
}

// AddFlow declares collector flow id as an instance of class (an index into
// Config.Classes). Ids are dense small integers assigned by the collector;
// re-declaring an id changes its class for later sightings.
func (r *Reconciler) AddFlow(id uint32, class int) error {
	if class < 0 || class >= len(r.classes) {
		return fmt.Errorf("reconcile: add flow %d: class %d out of range", id, class)
	}
	if r.classes[class].index < 0 {
		return fmt.Errorf("reconcile: add flow %d: class %d: %w", id, class, ErrNoOneWay)
	}
	r.flows.set(id, int32(class))
	return nil
}

// Counters returns the cumulative counters.
func (r *Reconciler) Counters() Counters {
	c := r.c
	c.Live = r.live
	return c
}

// Watermark returns the last watermark given to Advance.
func (r *Reconciler) Watermark() int64 { return r.wm }

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// Add merges one sighting. It drops (and counts) a sighting of an undeclared
// flow or hop, one whose interval is already closed, and a duplicate.
// Every sighting is counted in the Accounting of one interval, and once
// decided, in exactly one of its outcomes.
// It does not allocate in steady state.
func (r *Reconciler) Add(s Sighting) {
	r.c.Sightings++
	t := s.TS
	ci := r.flows.get(s.Flow)
	if ci < 0 {
		r.c.Invalid++
		a := &r.openSlot(t).iv.Accounting
		a.Sightings++
		a.Invalid++
		return
	}
	c := &r.classes[ci]
	if int(s.Hop) >= c.nhops {
		r.c.Invalid++
		a := &r.openSlot(t).iv.Accounting
		a.Sightings++
		a.Invalid++
		return
	}
	if r.slotOf(t) < r.closed {
		r.c.Late++
		a := &r.openSlot(t).iv.Accounting
		a.Sightings++
		a.Late++
		return
	}
	r.slotAt(t).iv.Accounting.Sightings++
	r.place(c, s.Flow, s.Sig, s.Hop, t, s.Span, 0)
}

func (r *Reconciler) alloc() int32 {
	if r.free >= 0 {
		i := r.free
		r.free = r.hpos[i]
		return i
	}
	r.recs = grow(r.recs, 1)
	r.hpos = grow(r.hpos, 1)
	r.times = grow(r.times, r.stride)
	if r.spanOn {
		r.spans = grow(r.spans, r.stride)
	}
	return int32(len(r.recs) - 1)
}

// remove takes record i out of both indexes and puts it on the free list.
func (r *Reconciler) remove(i int32) {
	rec := r.at(int32(i))
	r.index.remove(r.recs, i)
	r.classes[rec.cls].heap.remove(r.hpos, r.hpos[i])
	r.live--
	r.hpos[i] = r.free
	r.free = i
}

// complete marks a record that has every hop. Its delays are counted when
// it is decided (decide, at its deadline): until then a sighting of a
// clashing packet delivered later may still take its place (swap). Its
// times teach the class its usual transit now when the last sighting fit
// them (plausible), else when it is decided: a wrong pairing must not
// bend what tells the next ones apart.
func (r *Reconciler) complete(c *class, i int32, plausible bool) {
	rec := r.at(int32(i))
	if plausible {
		c.learn(rec.ts)
		rec.learned = true
	}
	// Kept as a tombstone until the duplicate window after its last
	// sighting has passed the watermark: a copy of the packet arriving
	// after completion is then counted as a duplicate, instead of
	// opening a record that would expire as a false lost or missed packet.
	// And remembered in recent for the maximum transit time after its
	// reference time, so that a later packet with the same signature counts
	// as a clash whatever order the probes' PDUs arrive in.
	c.heap.fix(r.hpos, r.hpos[i], c.tombstone(rec))
	last := rec.ts[0]
	for h := 1; h < c.nhops; h++ {
		last = max(last, rec.ts[h])
	}
	fs := uint64(rec.flow)<<32 | uint64(rec.sig)
	// Bounded like the records: while the watermark stalls (a silent
	// probe) completions can pile up; past the cap they are not
	// remembered, and a clash with them goes uncounted (never a wrong delay).
	r.recent.put(fs, recentDone{ref: rec.ref(), until: max(last+c.dup, rec.ref()+c.maxT)}, r.max)
}

// tombstone is the deadline of a complete record: the duplicate window
// after its last sighting, but not past its timeout, so that it is decided
// before the interval of its earliest sighting closes.
func (c *class) tombstone(rec recRef) int64 {
	last := rec.ts[0]
	for h := 1; h < c.nhops; h++ {
		last = max(last, rec.ts[h])
	}
	return min(last+c.dup, rec.earliest()+c.timeout)
}

// decide counts a complete record: one delay per hop pair.
func (r *Reconciler) decide(c *class, rec recRef) {
	if !rec.learned {
		c.learn(rec.ts)
	}
	for p := range c.pairs {
		r.measure(c, rec, p)
	}
	r.c.Completed++
	r.compose(c, rec)
	r.account(c, rec, outComplete)
}

// outcome is what became of the sightings of a decided record.
type outcome int

const (
	outComplete outcome = iota
	outLost
	outMissed
	outDropped
)

// account counts each sighting of decided record rec in the Accounting of
// the interval of its time.
func (r *Reconciler) account(c *class, rec recRef, o outcome) {
	for m := rec.mask; m != 0; m &= m - 1 {
		a := &r.slotAt(rec.ts[bits.TrailingZeros8(m)]).iv.Accounting
		switch o {
		case outComplete:
			a.Complete++
		case outLost:
			a.Lost++
		case outMissed:
			a.Missed++
		case outDropped:
			a.Dropped++
		}
	}
}

// measure counts the delay of record rec over hop pair p, seen at both of
// its hops, in the interval of its time at hop_from.
func (r *Reconciler) measure(c *class, rec recRef, p int) {
	pp := &c.pairs[p]
	from, to := rec.ts[pp.from], rec.ts[pp.to]
	sl := r.slot(r.slotOf(from))
	si := sl.stat(rec.flow, c, p)
	sl.add(si, to-from, pp.edges)
	sl.logs[si].add(&r.chunks, from, to)
	if c.perPacket {
		pk := Packet{Flow: rec.flow, Class: c.index, Pair: p, Sig: rec.sig, From: from, To: to}
		if rec.sp != nil {
			pk.SpanFrom, pk.SpanTo = rec.sp[pp.from], rec.sp[pp.to]
		}
		if n := len(sl.iv.Packets); n == cap(sl.iv.Packets) && n < 1<<20 {
			// Doubled up to a million rows (56 MB), not by append's
			// quarter: an interval's first growth copies and faults in
			// much less (tmon owd: 1 200 of 8 500 page faults). Beyond,
			// append's quarter bounds the unused capacity. Slots are
			// reused: a steady state grows nothing.
			sl.iv.Packets = slices.Grow(sl.iv.Packets, n+256)
		}
		sl.iv.Packets = append(sl.iv.Packets, pk)
	}
}

// expire classifies an incomplete record as lost (only hops at the end of
// the path missing) or missed (an earlier hop missing) and removes it.
func (r *Reconciler) expire(i int32) {
	rec := r.at(int32(i))
	c := &r.classes[rec.cls]
	if rec.mask == c.full {
		r.decide(c, rec)
		r.remove(i)
		return
	}
	if r.dropped(c, rec) {
		r.drop(c, rec)
		r.remove(i)
		return
	}
	lost := rec.mask&(rec.mask+1) == 0 // hops present form a prefix 0..k
	for p := range c.pairs {
		pp := &c.pairs[p]
		hasFrom := rec.mask&(1<<pp.from) != 0
		hasTo := rec.mask&(1<<pp.to) != 0
		// The interval is decided by the time at hop_from; without it,
		// by the earliest time the packet was seen.
		t := rec.earliest()
		if hasFrom {
			t = rec.ts[pp.from]
		}
		switch {
		case hasFrom && hasTo:
			// Seen at both hops of the pair: its delay there is
			// measured, whatever happened elsewhere on the path
			// (RFC 5644: segment figures stand on their own).
			r.measure(c, rec, p)
		case lost && hasFrom && !hasTo:
			sl := r.slot(r.slotOf(t))
			si := sl.stat(rec.flow, c, p)
			sl.stats[si].Lost++
			sl.mx.lost = append(sl.mx.lost, lossEntry{stat: si, from: t})
		case !lost && (!hasFrom || !hasTo):
			sl := r.slot(r.slotOf(t))
			sl.stats[sl.stat(rec.flow, c, p)].Missed++
		}
	}
	if c.perPacket {
		sl := r.slot(r.slotOf(rec.earliest()))
		sl.iv.Incomplete = append(sl.iv.Incomplete, Incomplete{
			Flow: rec.flow, Class: c.index, Sig: rec.sig, Lost: lost, Mask: rec.mask, TS: rec.tsArray(),
		})
	}
	if lost {
		r.c.Lost++
		r.account(c, rec, outLost)
	} else {
		r.c.Missed++
		r.account(c, rec, outMissed)
	}
	r.remove(i)
}

// duplicate counts a duplicate sighting at hop h in the slot of its time,
// for each pair ending at h (the spool's definition).
func (r *Reconciler) duplicate(c *class, flow uint32, h int, t int64) {
	r.c.Duplicates++
	r.slotAt(t).iv.Accounting.Duplicate++
	for p := range c.pairs {
		if c.pairs[p].to == h {
			sl := r.slot(r.slotOf(t))
			sl.stats[sl.stat(flow, c, p)].Duplicate++
		}
	}
}

// clash counts a record created beside another of the same flow and
// signature, in the slot of its time, for every pair of the class: the clash
// concerns the packet, not a hop.
// clashesRecent reports whether a completed packet of the same flow and
// signature, still within its clash window, has a reference time within
// maxT of t.
func (r *Reconciler) clashesRecent(fs uint64, t, maxT int64) bool {
	d, ok := r.recent.get(fs)
	return ok && d.until >= r.wm && absDiff(d.ref, t) <= maxT
}

// sweepRecent forgets the completed packets that can no longer clash, once
// per maximum transit time of watermark progress, and gives the table's
// filter the watermark at every one.
func (r *Reconciler) sweepRecent() {
	if r.wm-r.swept < r.maxTransit && r.wm != math.MaxInt64 {
		r.recent.setWatermark(r.wm)
		return
	}
	r.swept = r.wm
	r.recent.sweep(r.wm)
}

func (r *Reconciler) clash(c *class, flow uint32, t int64) {
	r.c.Clashes++
	sl := r.slot(r.slotOf(t))
	for p := range c.pairs {
		sl.stats[sl.stat(flow, c, p)].Clashes++
	}
}
