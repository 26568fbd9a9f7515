package reconcile

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"time"
)

// Interval is one closed aggregation slot: everything the reconciler learned
// about packets whose time at hop_from (or, for incomplete packets without
// it, earliest time) falls in [Start, Start+Length). It is what the spool
// writes as one owd_stats, owd_hist, owd_packet and owd_incomplete file.
type Interval struct {
	Start      int64         // ns since the Unix epoch; a multiple of Length
	Length     time.Duration // Config.Interval
	Stats      []PairStats   // one per flow and hop pair with any non-zero counter; sorted by Flow, then Pair
	Packets    []Packet      // complete packets of PerPacket classes; sorted by Flow, Pair, From, Sig
	Incomplete []Incomplete  // lost and missed packets of PerPacket classes; sorted by Flow, first time, Sig
	Metrics    []Metrics     // IPPM metrics; Metrics[i] is of the flow and pair of Stats[i]
	Accounting Accounting    // what became of the sightings of the interval
}

// Accounting says what became of every sighting the reconciler was given
// (docs/spool.md, owd_accounting): each is counted once in Sightings, in
// the interval of its time (a late or invalid one whose interval was
// closed: in the oldest interval open when it came), and once in exactly
// one outcome, so that
//
//	Sightings = Complete + Lost + Missed + Dropped + Duplicate + Late + Invalid
//
// holds in every interval. Lost, Missed and Dropped count the sightings of
// the packets so classified (a packet lost after two hops of three counts
// two), not the packets.
type Accounting struct {
	Sightings uint64 // received
	Complete  uint64 // in a packet seen at every hop of its path
	Lost      uint64 // in a packet classified lost
	Missed    uint64 // in a packet classified missed
	Dropped   uint64 // in a packet classified dropped (a probe gave up a sighting of it)
	Duplicate uint64 // a second sighting of a packet at one hop
	Late      uint64 // its interval was already closed when it came
	Invalid   uint64 // of a flow or hop the reconciler does not know
}

// Balanced reports whether every sighting has exactly one outcome.
func (a *Accounting) Balanced() bool {
	return a.Sightings == a.Complete+a.Lost+a.Missed+a.Dropped+a.Duplicate+a.Late+a.Invalid
}

// PairStats is the delay statistics and exception counts of one flow and
// hop pair in one interval. Count, Sum, SumSq, Min and Max aggregate exactly
// over intervals (the loader's 1 min → 1 h → 1 d roll-up).
type PairStats struct {
	Flow  uint32
	Class int // index into Config.Classes
	Pair  int // index into the class's OneWay.Pairs (0: the default first→last pair)

	Count    uint64  // delays measured
	Sum      int64   // ns; int64 holds 292 years of delay, far beyond any interval
	SumSq    Uint128 // ns²; exact: one second squared is already 1e18
	Min, Max int64   // ns; meaningful only when Count > 0
	Hist     []uint64

	Lost      uint64 // seen at hop_from and at the hops before the last one it reached, not at hop_to nor after it (docs/spool.md)
	Missed    uint64 // incomplete with an earlier hop missing, hop_from or hop_to among the missing
	Duplicate uint64 // extra sightings at hop_to within the duplicate window
	Reordered uint64 // reached hop_to after a packet of the flow that left hop_from later
	Clashes   uint64 // records created beside another of the same flow and signature
	Dropped   uint64 // incomplete, hop_from or hop_to missing because a probe gave up its sighting (Reconciler.AddGap)

	hoff int32 // offset of the histogram in the slot's arena
}

// Packet is one reconciled packet and hop pair (OneWay.PerPacket).
type Packet struct {
	Flow     uint32
	Class    int
	Pair     int
	Sig      uint32
	From, To int64 // times at hop_from and hop_to, ns
	// SpanFrom, SpanTo: at hop_from and hop_to, ns from the first
	// fragment of the datagram to From or To (its last fragment); 0
	// where it was captured whole (Sighting.Span).
	SpanFrom, SpanTo uint32
}

// Incomplete is one packet classified lost or missed (OneWay.PerPacket).
type Incomplete struct {
	Flow  uint32
	Class int
	Sig   uint32
	Lost  bool // false: missed (or dropped)
	// Dropped: the missing hops' sightings were given up by their probe
	// (Reconciler.AddGap); Lost is then false.
	Dropped bool
	Mask    uint8          // bit h set when hop h was seen
	TS      [MaxHops]int64 // hop times; valid where Mask has the bit
}

// First returns the earliest time the packet was seen.
func (in *Incomplete) First() int64 {
	first := int64(math.MaxInt64)
	for h := range MaxHops {
		if in.Mask&(1<<h) != 0 {
			first = min(first, in.TS[h])
		}
	}
	return first
}

// Uint128 is an unsigned 128-bit integer (a sum of squared delays).
type Uint128 struct{ Hi, Lo uint64 }

// AddSquare adds d² to u. It does not allocate.
func (u *Uint128) AddSquare(d int64) {
	a := uint64(d)
	if d < 0 {
		a = -a // two's complement: also right for math.MinInt64
	}
	hi, lo := bits.Mul64(a, a)
	var c uint64
	u.Lo, c = bits.Add64(u.Lo, lo, 0)
	u.Hi += hi + c
}

// String returns u in decimal, as the spool writes sumsq_ns2.
func (u Uint128) String() string {
	return string(u.AppendDecimal(nil))
}

// AppendDecimal appends u in decimal to b.
func (u Uint128) AppendDecimal(b []byte) []byte {
	if u.Hi == 0 {
		return strconv.AppendUint(b, u.Lo, 10)
	}
	const e19 = 10_000_000_000_000_000_000
	qhi, rhi := u.Hi/e19, u.Hi%e19
	qlo, r := bits.Div64(rhi, u.Lo, e19)
	b = Uint128{qhi, qlo}.AppendDecimal(b)
	var digits [19]byte
	for i := len(digits) - 1; i >= 0; i-- {
		digits[i] = byte('0' + r%10)
		r /= 10
	}
	return append(b, digits[:]...)
}

// slot is one open aggregation interval. Its storage is reused after the
// slot closes, so that steady state does not allocate.
type slot struct {
	n     int64 // slot number: Start / Length
	iv    Interval
	stats []PairStats // in creation order; index is a stat id
	index map[statKey]int32
	hist  []uint64   // histogram bins of every stat, back to back
	logs  []delayLog // by stat id: the delays measured, until the slot closes (delays.go)
	mx    slotMetrics
}

type statKey struct {
	flow uint32
	pair int32
}

// stat returns the id of the statistics of (flow, pair p of c), creating them.
func (sl *slot) stat(flow uint32, c *class, p int) int32 {
	k := statKey{flow, int32(p)}
	if si, ok := sl.index[k]; ok {
		return si
	}
	si := int32(len(sl.stats))
	nb := len(c.pairs[p].edges) + 1
	sl.stats = append(sl.stats, PairStats{Flow: flow, Class: c.index, Pair: p, hoff: int32(len(sl.hist))})
	sl.hist = append(sl.hist, make([]uint64, nb)...) // make does not escape: appended in place
	sl.logs = append(sl.logs, newDelayLog(sl.iv.Start))
	sl.index[k] = si
	return si
}

// add records one delay d in stat si.
func (sl *slot) add(si int32, d int64, edges []int64) {
	st := &sl.stats[si]
	if st.Count == 0 || d < st.Min {
		st.Min = d
	}
	if st.Count == 0 || d > st.Max {
		st.Max = d
	}
	st.Count++
	st.Sum += d
	st.SumSq.AddSquare(d)
	// Bin i is [edges[i-1], edges[i]): the number of edges ≤ d.
	lo, hi := 0, len(edges)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if edges[m] <= d {
			lo = m + 1
		} else {
			hi = m
		}
	}
	sl.hist[int(st.hoff)+lo]++
}

// finish computes reordering and the metrics (Reconciler.finish) and fills
// the exported Interval. It may run again on the same slot when the Sink
// failed: it changes none of what it reads.
func (r *Reconciler) finish(sl *slot) {
	r.metrics(sl) // sets each stat's Reordered too

	iv := &sl.iv
	iv.Stats = append(iv.Stats[:0], sl.stats...)
	for i := range iv.Stats {
		st := &iv.Stats[i]
		nb := 0
		if i+1 < len(sl.stats) {
			nb = int(sl.stats[i+1].hoff - st.hoff)
		} else {
			nb = len(sl.hist) - int(st.hoff)
		}
		st.Hist = sl.hist[st.hoff : int(st.hoff)+nb : int(st.hoff)+nb]
	}
	slices.SortFunc(iv.Stats, func(a, b PairStats) int {
		if c := cmp.Compare(a.Flow, b.Flow); c != 0 {
			return c
		}
		return cmp.Compare(a.Pair, b.Pair)
	})
	// The metrics in the order of Interval.Stats.
	iv.Metrics = iv.Metrics[:0]
	for i := range iv.Stats {
		id := sl.index[statKey{iv.Stats[i].Flow, int32(iv.Stats[i].Pair)}]
		iv.Metrics = append(iv.Metrics, r.mx.out[id])
	}
	sortPackets(iv.Packets)
	slices.SortFunc(iv.Incomplete, func(a, b Incomplete) int {
		if c := cmp.Compare(a.Flow, b.Flow); c != 0 {
			return c
		}
		if c := cmp.Compare(a.First(), b.First()); c != 0 {
			return c
		}
		return cmp.Compare(a.Sig, b.Sig)
	})
}

// release gives the slot's delay logs back to the pool once it closed.
func (sl *slot) release(p *chunkPool) {
	for i := range sl.logs {
		sl.logs[i].release(p, 0)
	}
	sl.logs = sl.logs[:0]
}

// reset empties the slot for reuse as slot n, keeping its storage; its
// delay logs must have been released.
func (sl *slot) reset(n, length int64) {
	sl.n = n
	sl.iv.Start = n * length
	sl.iv.Length = time.Duration(length)
	sl.iv.Stats = sl.iv.Stats[:0]
	sl.iv.Packets = sl.iv.Packets[:0]
	sl.iv.Incomplete = sl.iv.Incomplete[:0]
	sl.stats = sl.stats[:0]
	sl.hist = sl.hist[:0]
	sl.logs = sl.logs[:0]
	sl.iv.Metrics = sl.iv.Metrics[:0]
	sl.iv.Accounting = Accounting{}
	sl.mx.reset()
	if sl.index == nil {
		sl.index = make(map[statKey]int32)
	}
	clear(sl.index)
}

// slotWindow is the open slots in time order and a pool of closed ones.
// Only a few slots are open at a time (the timeout over the interval, plus
// one), so a sorted slice searched from the newest end is the right index.
type slotWindow struct {
	open []*slot
	pool []*slot
}

func (w *slotWindow) pop() {
	sl := w.open[0]
	copy(w.open, w.open[1:])
	w.open[len(w.open)-1] = nil
	w.open = w.open[:len(w.open)-1]
	w.pool = append(w.pool, sl)
}

// slotAt returns the open slot of time t (which must not be closed),
// remembering the last one found: most lookups hit it.
func (r *Reconciler) slotAt(t int64) *slot {
	n := r.slotOf(t)
	if sl := r.last; sl != nil && sl.n == n {
		return sl
	}
	r.last = r.slot(n)
	return r.last
}

// openSlot returns the slot of time t, or the oldest open one when that
// is closed.
func (r *Reconciler) openSlot(t int64) *slot {
	return r.slot(max(r.slotOf(t), r.closed))
}

// slot returns open slot n, opening it. n must not be closed.
func (r *Reconciler) slot(n int64) *slot {
	w := &r.slots
	i := len(w.open)
	for i > 0 && w.open[i-1].n >= n {
		if w.open[i-1].n == n {
			return w.open[i-1]
		}
		i--
	}
	var sl *slot
	if k := len(w.pool); k > 0 {
		sl, w.pool = w.pool[k-1], w.pool[:k-1]
	} else {
		sl = new(slot)
	}
	sl.reset(n, r.interval)
	w.open = slices.Insert(w.open, i, sl)
	return sl
}
