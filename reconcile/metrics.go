package reconcile

import (
	"cmp"
	"math"
	"slices"

	"github.com/tmon-project/tmon/hist"
)

// IPPM metrics of one flow and hop pair in one interval, computed when the
// interval closes from what the slot already keeps: the (from, to) times of
// every delay measured, the hop_from time of every lost packet, and the
// per-packet composition checks made at completion. Column names and units:
// docs/spool.md, owd_metrics.
//
// The packet sequence of a flow and pair is its packets with a time at
// hop_from (delivered or lost; missed ones are left out), in order of that
// time: "consecutive" below means adjacent in it. Under 1-in-N sampling it
// is the sequence of selected packets. Loss periods, IPDV pairs and
// reordering extents are cut at interval boundaries.

// QuantileLevels are the quantiles reported for delay, PDV and IPDV.
var QuantileLevels = [4]float64{0.5, 0.9, 0.99, 0.999}

// Quantiles are the values at QuantileLevels (nearest rank, from the
// log-linear histogram) with their error bounds: the exact quantile lies in
// [V[i]−Err[i], V[i]+Err[i]], and Err[i] ≤ hist.RelErr·|exact|.
type Quantiles struct {
	V, Err [4]int64
}

// Metrics are the IPPM metrics of one flow and hop pair in one interval;
// Interval.Metrics[i] belongs to Interval.Stats[i]. The []byte fields are
// sparse histograms (hist.Hist.AppendSparse) that point into storage the
// Reconciler reuses: a Sink copies what it keeps.
type Metrics struct {
	Flow  uint32
	Class int
	Pair  int

	SampleN  uint32 // 1 in SampleN packets measured (conf.OneWay.Sample; 1: every packet)
	LossWait int64  // ns: the class timeout, after which a packet not seen at hop_to is lost (RFC 7680's waiting time)

	Count uint64 // delays measured (PairStats.Count)
	Lost  uint64 // lost packets (PairStats.Lost)

	Delay     Quantiles // one-way delay
	DelayHist []byte

	// PDV (RFC 5481): each delay minus the interval's minimum delay.
	PDV     Quantiles
	PDVMax  int64 // exact: max − min delay
	PDVHist []byte

	// IPDV (RFC 3393): delay of a packet minus that of the previous
	// packet of the sequence, for consecutive packets both delivered.
	IPDVCount        uint64
	IPDVMin, IPDVMax int64 // exact; meaningful when IPDVCount > 0
	IPDV             Quantiles
	IPDVHist         []byte

	// Loss patterns (RFC 3357): a loss period is a maximal run of
	// consecutive lost packets, its length their number; a loss distance
	// is the difference in sequence position between a lost packet and
	// the previous lost packet of the interval.
	LossPeriods       uint64
	LossPeriodMax     uint64
	LossPeriodHist    []byte
	LossDistanceCount uint64
	LossDistanceMin   uint64 // meaningful when LossDistanceCount > 0
	LossDistanceHist  []byte

	// Reordering (RFC 4737): Reordered as PairStats.Reordered; the extent
	// of a reordered packet is the number of arrival positions between
	// it and the first packet that arrived before it though sent after it.
	Reordered        uint64
	ReorderExtentMax uint64
	ReorderExtentSum uint64

	Duplicate uint64 // PairStats.Duplicate (RFC 5560: extra copies at hop_to)

	NegDelay uint64 // delays below zero: clocks out of step at the two hops
	// ComposeViol (RFC 5644 spatial composition): packets whose time at a
	// hop strictly between hop_from and hop_to lies outside [t_from − e,
	// t_to + e], e the sum of the clock error bounds of the probes
	// involved (SetClocks; 0 while unknown, with assumeSynced or one probe),
	// so that a segment delay, the segments summing to this pair's delay,
	// is below −e: a clock at an intermediate hop is out of step by more
	// than the probes' own bounds say. Only pairs
	// with intermediate hops can count it.
	ComposeViol uint64
}

// Estimate scales a count k of sampled packets back to the traffic: k·N,
// and the half-width of its 95 % confidence interval. Selection by a hash
// of the signature acts as an independent draw with probability 1/N per
// packet, so k is binomial: the variance of k·N is about k·N·(N−1). For
// k = 0 the bound is the "rule of three", 3·N. With N = 1 the count is a
// census and the interval is 0.
func (m *Metrics) Estimate(k uint64) (est, ci95 float64) {
	n := float64(max(m.SampleN, 1))
	if n == 1 {
		return float64(k), 0
	}
	if k == 0 {
		return 0, 3 * n
	}
	return float64(k) * n, 1.96 * math.Sqrt(float64(k)*n*(n-1))
}

// LossRatio is the one-way loss ratio (RFC 7680) lost / (count + lost),
// with its 95 % confidence interval [lo, hi] under sampling: the Wilson
// score interval of the lost fraction of the sampled packets, which unlike
// the normal approximation stays within [0, 1] and is not empty at 0 lost
// (0 of n gives [0, z²/(n+z²)]). With N = 1 the ratio is a census and
// lo = hi = r. ok is false when no packet was sent.
func (m *Metrics) LossRatio() (r, lo, hi float64, ok bool) {
	sent := m.Count + m.Lost
	if sent == 0 {
		return 0, 0, 0, false
	}
	r = float64(m.Lost) / float64(sent)
	if m.SampleN <= 1 {
		return r, r, r, true
	}
	lo, hi = Wilson(m.Lost, sent)
	return r, lo, hi, true
}

// Wilson is the 95 % Wilson score interval of a binomial proportion k of n
// (n > 0): the p whose normal test against k/n is not rejected at z = 1.96,
//
//	(p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n).
func Wilson(k, n uint64) (lo, hi float64) {
	const z = 1.96
	nf := float64(n)
	p := float64(k) / nf
	d := 1 + z*z/nf
	c := (p + z*z/(2*nf)) / d
	h := z / d * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf))
	lo, hi = max(c-h, 0), min(c+h, 1)
	// At the ends the interval reaches the bound exactly: rounding must
	// not take it away from p̂.
	if k == 0 {
		lo = 0
	}
	if k == n {
		hi = 1
	}
	return lo, hi
}

// lossEntry is a lost packet kept until its slot closes.
type lossEntry struct {
	stat int32
	from int64
}

// slotMetrics is what a slot keeps for the metrics besides its stats.
type slotMetrics struct {
	lost []lossEntry
	viol []uint64 // compose violations by stat id
}

func (m *slotMetrics) reset() {
	m.lost = m.lost[:0]
	m.viol = m.viol[:0]
}

func (m *slotMetrics) addViol(si int32) {
	for int(si) >= len(m.viol) {
		m.viol = append(m.viol, 0)
	}
	m.viol[si]++
}

// metricsState is the reconciler's scratch space for computing metrics:
// reused at every interval so that steady state does not allocate.
type metricsState struct {
	delay, pdv, ipdv, lossLen, lossDist hist.Hist
	delays                              []delayEntry // one stat's, decoded from its log
	pmax                                []int64
	arena                               []byte
	spans                               [][2]int32 // arena offsets of the hist fields, 5 per metrics
	out                                 []Metrics  // by stat id
}

// compose checks spatial composition for a record that just completed:
// for each pair with intermediate hops, the packet's time at each of them
// must lie within [t_from − e, t_to + e], e the clock tolerance (clock.go).
func (r *Reconciler) compose(c *class, rec recRef) {
	if c.nhops < 3 {
		return
	}
	for p := range c.pairs {
		pp := &c.pairs[p]
		ti, tk := rec.ts[pp.from], rec.ts[pp.to]
		for j := pp.from + 1; j < pp.to; j++ {
			e := c.tol[p*MaxHops+j]
			if tj := rec.ts[j]; tj < ti-e || tj > tk+e {
				sl := r.slot(r.slotOf(ti))
				sl.mx.addViol(sl.stat(rec.flow, c, p))
				break
			}
		}
	}
}

// quantiles fills q from h.
func quantiles(h *hist.Hist, q *Quantiles) {
	for i, l := range QuantileLevels {
		q.V[i], q.Err[i] = h.Quantile(l)
	}
}

// metrics computes the metrics of every stat of slot sl into r.mx.out, by
// stat id, and sets each stat's Reordered. One stat at a time, its delays
// are decoded from its log (in the order they were measured), put in
// arrival order at hop_to for reordering, then in departure order at
// hop_from, merged with its losses, for the sequence metrics.
func (r *Reconciler) metrics(sl *slot) {
	if r.mx == nil {
		r.mx = new(metricsState)
	}
	mx := r.mx
	// Each stat's losses together, in hop_from order (entries equal in
	// both are the same).
	slices.SortFunc(sl.mx.lost, func(a, b lossEntry) int {
		if c := cmp.Compare(a.stat, b.stat); c != 0 {
			return c
		}
		return cmp.Compare(a.from, b.from)
	})
	mx.out = mx.out[:0]
	mx.arena = mx.arena[:0]
	mx.spans = mx.spans[:0]
	li := 0
	for id := range sl.stats {
		st := &sl.stats[id]
		c := &r.classes[st.Class]
		mx.delays = sl.logs[id].decode(&r.chunks, sl.iv.Start, mx.delays[:0])
		ds := mx.delays

		// Arrival order (RFC 4737 style): a packet is reordered when a
		// packet that left hop_from later arrived before it; its extent
		// (§4.2.2) is the number of arrival positions between it and
		// the first such packet.
		sortArrival(ds)
		var reordered, extentSum, extentMax uint64
		mx.pmax = mx.pmax[:0]
		pm := int64(math.MinInt64)
		for j := range ds {
			f := ds[j].from
			if f < pm {
				reordered++
				// The first arrival position whose running maximum
				// send time exceeds f.
				i, hi := 0, j
				for i < hi {
					mid := int(uint(i+hi) >> 1)
					if mx.pmax[mid] > f {
						hi = mid
					} else {
						i = mid + 1
					}
				}
				e := uint64(j - i)
				extentSum += e
				extentMax = max(extentMax, e)
			}
			pm = max(pm, f)
			mx.pmax = append(mx.pmax, pm)
		}
		st.Reordered = reordered

		m := Metrics{
			Flow: st.Flow, Class: st.Class, Pair: st.Pair,
			SampleN: c.sample, LossWait: c.timeout,
			Count: st.Count, Lost: st.Lost, Reordered: st.Reordered, Duplicate: st.Duplicate,
			ReorderExtentSum: extentSum, ReorderExtentMax: extentMax,
		}
		if id < len(sl.mx.viol) {
			m.ComposeViol = sl.mx.viol[id]
		}
		mx.delay.Reset()
		mx.pdv.Reset()
		mx.ipdv.Reset()
		mx.lossLen.Reset()
		mx.lossDist.Reset()

		// The sequence in hop_from order: the delays by (from, delay),
		// and the losses, a loss after a delay with the same from time
		// unless that delay is positive (as if a loss's delay were 0,
		// and the delays came first): delay, PDV, IPDV, loss patterns.
		for j := range ds {
			ds[j].t -= ds[j].from
		}
		sortDeparture(ds)
		lj := li
		for lj < len(sl.mx.lost) && sl.mx.lost[lj].stat == int32(id) {
			lj++
		}
		lost := sl.mx.lost[li:lj]
		li = lj
		run, pos, lastLost := uint64(0), 0, -1
		prevDelivered, prevD := false, int64(0)
		for di, k := 0, 0; di < len(ds) || k < len(lost); pos++ {
			if k < len(lost) && (di == len(ds) || lost[k].from < ds[di].from || lost[k].from == ds[di].from && ds[di].t > 0) {
				k++
				run++
				if lastLost >= 0 {
					mx.lossDist.Add(int64(pos - lastLost))
				}
				lastLost = pos
				prevDelivered = false
				continue
			}
			d := ds[di].t
			di++
			if run > 0 {
				mx.lossLen.Add(int64(run))
				run = 0
			}
			mx.delay.Add(d)
			mx.pdv.Add(d - st.Min)
			if d < 0 {
				m.NegDelay++
			}
			if prevDelivered {
				mx.ipdv.Add(d - prevD)
			}
			prevDelivered, prevD = true, d
		}
		if run > 0 {
			mx.lossLen.Add(int64(run))
		}
		quantiles(&mx.delay, &m.Delay)
		quantiles(&mx.pdv, &m.PDV)
		quantiles(&mx.ipdv, &m.IPDV)
		m.PDVMax = mx.pdv.Max()
		m.IPDVCount, m.IPDVMin, m.IPDVMax = mx.ipdv.Count(), mx.ipdv.Min(), mx.ipdv.Max()
		m.LossPeriods, m.LossPeriodMax = mx.lossLen.Count(), uint64(mx.lossLen.Max())
		m.LossDistanceCount, m.LossDistanceMin = mx.lossDist.Count(), uint64(mx.lossDist.Min())

		for _, h := range [...]*hist.Hist{&mx.delay, &mx.pdv, &mx.ipdv, &mx.lossLen, &mx.lossDist} {
			b := int32(len(mx.arena))
			mx.arena = h.AppendSparse(mx.arena)
			mx.spans = append(mx.spans, [2]int32{b, int32(len(mx.arena))})
		}
		mx.out = append(mx.out, m)
	}
	// The arena is complete: point the histogram fields into it.
	for i := range mx.out {
		m := &mx.out[i]
		s := mx.spans[5*i : 5*i+5]
		for k, dst := range [...]*[]byte{&m.DelayHist, &m.PDVHist, &m.IPDVHist, &m.LossPeriodHist, &m.LossDistanceHist} {
			*dst = mx.arena[s[k][0]:s[k][1]:s[k][1]]
		}
	}
}
