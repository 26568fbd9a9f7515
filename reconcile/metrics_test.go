package reconcile

import (
	"cmp"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/hist"
	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/selection"
)

// metricsSink keeps deep copies of the metrics of every interval.
type metricsSink struct {
	stats map[refKey]PairStats
	m     map[refKey]Metrics
}

type refKey struct {
	flow  uint32
	pair  int
	start int64
}

func (s *metricsSink) WriteInterval(iv *Interval) error {
	if len(iv.Metrics) != len(iv.Stats) {
		panic("metrics not aligned with stats")
	}
	for i, m := range iv.Metrics {
		st := iv.Stats[i]
		if st.Flow != m.Flow || st.Pair != m.Pair {
			panic("metrics not aligned with stats")
		}
		for _, b := range []*[]byte{&m.DelayHist, &m.PDVHist, &m.IPDVHist, &m.LossPeriodHist, &m.LossDistanceHist} {
			*b = slices.Clone(*b)
		}
		k := refKey{m.Flow, m.Pair, iv.Start}
		s.m[k], s.stats[k] = m, st
	}
	return nil
}

// refPkt is one packet of a flow and pair, from the generator's truth.
type refPkt struct {
	from, to  int64
	delivered bool
	viol      bool
}

// ref is the obvious computation of every metric from the truth.
type ref struct {
	pkts []refPkt
	dups uint64
}

func nearestRank(sorted []int64, q float64) int64 {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(1, min(r, len(sorted)))-1]
}

func checkQuantiles(t *testing.T, what string, got Quantiles, vals []int64) {
	t.Helper()
	if len(vals) == 0 {
		return
	}
	s := slices.Sorted(slices.Values(vals))
	for i, q := range QuantileLevels {
		want := nearestRank(s, q)
		if d := got.V[i] - want; d > got.Err[i] || -d > got.Err[i] {
			t.Errorf("%s p%v: %d ± %d, exact %d", what, q*100, got.V[i], got.Err[i], want)
		}
		if float64(got.Err[i]) > hist.RelErr*math.Abs(float64(want))+0.5 {
			t.Errorf("%s p%v: error bound %d above %.2f%% of %d", what, q*100, got.Err[i], 100*hist.RelErr, want)
		}
		if got.V[i] > s[len(s)-1] || got.V[i] < s[0] {
			t.Errorf("%s p%v: %d outside [min %d, max %d]", what, q*100, got.V[i], s[0], s[len(s)-1])
		}
	}
}

func sparseOf(vals []int64) string {
	var h hist.Hist
	for _, v := range vals {
		h.Add(v)
	}
	return string(h.AppendSparse(nil))
}

// TestMetricsAgainstTruth feeds a three-hop path's sightings (segment
// delays from several distributions, loss on each segment, duplicates,
// reordering, optionally a clock out of step at B and 1-in-N sampling) and
// checks every metric against a direct computation from the generator's
// truth.
func TestMetricsAgainstTruth(t *testing.T) {
	const msd = time.Millisecond
	for _, tc := range []struct {
		name    string
		ab, bc  string
		offsetB time.Duration
		sample  uint32
		count   int
	}{
		{"uniform", "uniform:5ms:15ms", "uniform:10ms:30ms", 0, 1, 20000},
		{"heavy-tail", "pareto:2ms:1.3", "normal:20ms:4ms", 0, 1, 20000},
		{"skewed-B", "uniform:5ms:15ms", "uniform:10ms:30ms", -8 * msd, 1, 20000},
		{"sampled-16", "uniform:5ms:15ms", "pareto:10ms:1.5", 3 * msd, 16, 160000},
		{"sampled-256", "normal:10ms:3ms", "uniform:10ms:30ms", 0, 256, 400000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dab, err := gen.ParseDist(tc.ab)
			if err != nil {
				t.Fatal(err)
			}
			dbc, err := gen.ParseDist(tc.bc)
			if err != nil {
				t.Fatal(err)
			}
			pkts, err := gen.BuildPath(gen.PathConfig{
				Seed: 11, Start: time.Unix(0, t0), Hops: 3, Flows: 3, Count: tc.count, Rate: 4000,
				Delay: []gen.Dist{dab, dbc}, MaxDelay: 200 * msd, Loss: []float64{0.02, 0.04}, Dup: 0.01,
				Offset: []time.Duration{0, tc.offsetB, 0},
			})
			if err != nil {
				t.Fatal(err)
			}
			cfg := &conf.Config{Interval: time.Second, Classes: []conf.Class{{Name: "abc", OneWay: &conf.OneWay{
				Hops: hops("A", "B", "C"), MaxTransit: time.Second, Timeout: 2 * time.Second, DupWindow: msd,
				Sample: tc.sample,
				Pairs: []conf.HopPair{
					{From: 0, To: 1, Slices: durs(10 * ms)},
					{From: 1, To: 2, Slices: durs(10 * ms)},
					{From: 0, To: 2, Slices: durs(10*ms, 20*ms)},
				},
			}}}}
			sink := &metricsSink{stats: map[refKey]PairStats{}, m: map[refKey]Metrics{}}
			r, err := New(cfg, sink, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for f := range 3 {
				if err := r.AddFlow(uint32(f), 0); err != nil {
					t.Fatal(err)
				}
			}
			// What the probes send: only the selected packets, decided
			// at each hop from the signature alone.
			var sights []Sighting
			selected := 0
			for _, p := range pkts {
				for h := 0; h < p.Reach; h++ {
					if selection.Selected(p.Sig, tc.sample) {
						sights = append(sights, Sighting{Flow: uint32(p.Flow), Hop: uint8(h), Sig: p.Sig, TS: p.TS[h]})
					}
				}
				if selection.Selected(p.Sig, tc.sample) {
					selected++
					if p.DupTS != 0 {
						sights = append(sights, Sighting{Flow: uint32(p.Flow), Hop: 2, Sig: p.Sig, TS: p.DupTS})
					}
				}
			}
			slices.SortStableFunc(sights, func(a, b Sighting) int { return cmp.Compare(a.TS, b.TS) })
			for _, s := range sights {
				r.Add(s)
			}
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			if c := r.Counters(); c.Missed != 0 || c.Clashes != 0 || c.Late != 0 {
				t.Errorf("counters %+v: sampling must never make a missed packet", c)
			}
			if tc.sample > 1 {
				p := 1 / float64(tc.sample)
				if d := math.Abs(float64(selected) - float64(len(pkts))*p); d > 4.5*math.Sqrt(float64(len(pkts))*p*(1-p)) {
					t.Errorf("%d of %d packets selected at 1/%d", selected, len(pkts), tc.sample)
				}
			}

			// The reference, from the truth.
			pairs := [][2]int{{0, 1}, {1, 2}, {0, 2}}
			want := map[refKey]*ref{}
			at := func(k refKey) *ref {
				if want[k] == nil {
					want[k] = &ref{}
				}
				return want[k]
			}
			slot := func(ts int64) int64 { return ts - ((ts%int64(time.Second))+int64(time.Second))%int64(time.Second) }
			for _, p := range pkts {
				if tc.sample > 1 && !selection.Selected(p.Sig, tc.sample) {
					continue
				}
				for pi, pr := range pairs {
					i, k := pr[0], pr[1]
					// tmon measures a pair's delay on every packet seen at
					// both of its hops (RFC 5644: a segment's figures stand
					// on their own); one seen at hop_from and lost before
					// hop_to is lost for the pair.
					if p.Reach <= i {
						continue
					}
					e := refPkt{from: p.TS[i], delivered: p.Reach > k}
					if e.delivered {
						e.to = p.TS[k]
						for j := i + 1; j < k; j++ {
							e.viol = e.viol || p.TS[j] < p.TS[i] || p.TS[j] > p.TS[k]
						}
					}
					w := at(refKey{uint32(p.Flow), pi, slot(e.from)})
					w.pkts = append(w.pkts, e)
					if p.DupTS != 0 && k == 2 {
						at(refKey{uint32(p.Flow), pi, slot(p.DupTS)}).dups++
					}
				}
			}
			var negTotal, violTotal, reoTotal, periodsTotal uint64
			for k, w := range want {
				m, ok := sink.m[k]
				if !ok {
					t.Errorf("%+v: no metrics", k)
					continue
				}
				checkRef(t, k, w, m, sink.stats[k], tc.sample)
				negTotal += m.NegDelay
				violTotal += m.ComposeViol
				reoTotal += m.Reordered
				periodsTotal += m.LossPeriods
			}
			if len(sink.m) != len(want) {
				t.Errorf("%d metrics rows, truth has %d", len(sink.m), len(want))
			}
			if tc.offsetB != 0 && tc.offsetB < 0 && (negTotal == 0 || violTotal == 0) {
				t.Errorf("clock of B %v behind: %d negative delays, %d composition violations; want some", tc.offsetB, negTotal, violTotal)
			}
			if tc.offsetB == 0 && violTotal != 0 {
				t.Errorf("clocks in step: %d composition violations", violTotal)
			}
			if reoTotal == 0 || periodsTotal == 0 {
				t.Errorf("the traffic had no reordering (%d) or no loss (%d): the test proves little", reoTotal, periodsTotal)
			}
			t.Logf("%d packets, %d selected, %d rows checked; negative delays %d, composition violations %d, reordered %d, loss periods %d",
				len(pkts), selected, len(want), negTotal, violTotal, reoTotal, periodsTotal)
		})
	}
}

func checkRef(t *testing.T, k refKey, w *ref, m Metrics, st PairStats, sample uint32) {
	t.Helper()
	slices.SortStableFunc(w.pkts, func(a, b refPkt) int { return cmp.Compare(a.from, b.from) })
	var delays, pdv, ipdv, periods, dists []int64
	var count, lost, neg, viol uint64
	minD := int64(math.MaxInt64)
	for _, p := range w.pkts {
		if p.delivered {
			minD = min(minD, p.to-p.from)
		}
	}
	run, lastLost := int64(0), -1
	for i, p := range w.pkts {
		if !p.delivered {
			lost++
			run++
			if lastLost >= 0 {
				dists = append(dists, int64(i-lastLost))
			}
			lastLost = i
			continue
		}
		if run > 0 {
			periods = append(periods, run)
			run = 0
		}
		count++
		d := p.to - p.from
		delays = append(delays, d)
		pdv = append(pdv, d-minD)
		if d < 0 {
			neg++
		}
		if p.viol {
			viol++
		}
		if i > 0 && w.pkts[i-1].delivered {
			ipdv = append(ipdv, d-(w.pkts[i-1].to-w.pkts[i-1].from))
		}
	}
	if run > 0 {
		periods = append(periods, run)
	}
	// Reordering by brute force: arrival order, and for each packet the
	// earliest earlier arrival that was sent after it.
	var arr []refPkt
	for _, p := range w.pkts {
		if p.delivered {
			arr = append(arr, p)
		}
	}
	slices.SortStableFunc(arr, func(a, b refPkt) int {
		if c := cmp.Compare(a.to, b.to); c != 0 {
			return c
		}
		return cmp.Compare(a.from, b.from)
	})
	var reo, extMax, extSum uint64
	for j := range arr {
		for i := 0; i < j; i++ {
			if arr[i].from > arr[j].from {
				reo++
				e := uint64(j - i)
				extSum += e
				extMax = max(extMax, e)
				break
			}
		}
	}

	type check struct {
		name      string
		got, want any
	}
	mx := func(v []int64) int64 { return slices.Max(append(v, math.MinInt64)) }
	mn := func(v []int64) int64 { return slices.Min(append(v, math.MaxInt64)) }
	checks := []check{
		{"sample_n", m.SampleN, max(sample, 1)},
		{"count", m.Count, count}, {"lost", m.Lost, lost}, {"stats count", st.Count, count},
		{"duplicate", m.Duplicate, w.dups},
		{"neg_delay", m.NegDelay, neg}, {"compose_viol", m.ComposeViol, viol},
		{"reordered", m.Reordered, reo}, {"reorder_extent_max", m.ReorderExtentMax, extMax}, {"reorder_extent_sum", m.ReorderExtentSum, extSum},
		{"loss_periods", m.LossPeriods, uint64(len(periods))},
		{"loss_distance_count", m.LossDistanceCount, uint64(len(dists))},
		{"ipdv_count", m.IPDVCount, uint64(len(ipdv))},
		{"delay_hist", string(m.DelayHist), sparseOf(delays)},
		{"pdv_hist", string(m.PDVHist), sparseOf(pdv)},
		{"ipdv_hist", string(m.IPDVHist), sparseOf(ipdv)},
		{"loss_period_hist", string(m.LossPeriodHist), sparseOf(periods)},
		{"loss_distance_hist", string(m.LossDistanceHist), sparseOf(dists)},
		{"loss_wait_ns", m.LossWait, int64(2 * time.Second)},
	}
	if len(periods) > 0 {
		checks = append(checks, check{"loss_period_max", m.LossPeriodMax, uint64(mx(periods))})
	}
	if len(dists) > 0 {
		checks = append(checks, check{"loss_distance_min", m.LossDistanceMin, uint64(mn(dists))})
	}
	if len(ipdv) > 0 {
		checks = append(checks, check{"ipdv_min", m.IPDVMin, mn(ipdv)}, check{"ipdv_max", m.IPDVMax, mx(ipdv)})
	}
	if len(pdv) > 0 {
		checks = append(checks, check{"pdv_max", m.PDVMax, mx(pdv)})
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("flow %d pair %d interval %d: %s %v, truth %v", k.flow, k.pair, k.start, c.name, c.got, c.want)
		}
	}
	checkQuantiles(t, "delay", m.Delay, delays)
	checkQuantiles(t, "pdv", m.PDV, pdv)
	checkQuantiles(t, "ipdv", m.IPDV, ipdv)

	// Estimates scale by N, with a binomial interval.
	n := float64(max(sample, 1))
	if est, ci := m.Estimate(count); est != float64(count)*n || (sample <= 1) != (ci == 0) {
		t.Errorf("estimate of %d at 1/%v: %v ± %v", count, n, est, ci)
	}
	if r, lo, hi, ok := m.LossRatio(); ok && (r != float64(lost)/float64(count+lost) || lo > r || hi < r || (sample <= 1) != (lo == hi)) {
		t.Errorf("loss ratio %v [%v, %v] at 1/%v, truth %v", r, lo, hi, n, float64(lost)/float64(count+lost))
	}
}

// TestWilson checks the loss ratio interval against the Wilson score
// intervals published by Newcombe (Statistics in Medicine 17, 1998,
// table II, method 3), given there to 4 decimals.
func TestWilson(t *testing.T) {
	for _, tc := range []struct {
		k, n   uint64
		lo, hi float64
	}{
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0, 0.1611},
		{1, 29, 0.0061, 0.1718},
	} {
		lo, hi := Wilson(tc.k, tc.n)
		if math.Abs(lo-tc.lo) > 5e-5 || math.Abs(hi-tc.hi) > 5e-5 {
			t.Errorf("Wilson(%d, %d) = [%.5f, %.5f], want [%.4f, %.4f]", tc.k, tc.n, lo, hi, tc.lo, tc.hi)
		}
		m := Metrics{SampleN: 16, Lost: tc.k, Count: tc.n - tc.k}
		if r, rlo, rhi, ok := m.LossRatio(); !ok || rlo != lo || rhi != hi || r != float64(tc.k)/float64(tc.n) {
			t.Errorf("LossRatio of %d/%d: %v [%v, %v] %v", tc.k, tc.n, r, rlo, rhi, ok)
		}
	}
	// All lost: the interval ends at 1; a census has no interval.
	if lo, hi := Wilson(20, 20); hi != 1 || math.Abs(lo-(1-0.1611)) > 5e-5 {
		t.Errorf("Wilson(20, 20) = [%v, %v]", lo, hi)
	}
	m := Metrics{SampleN: 1, Lost: 3, Count: 7}
	if r, lo, hi, ok := m.LossRatio(); !ok || lo != r || hi != r {
		t.Errorf("census: %v [%v, %v]", r, lo, hi)
	}
	if _, _, _, ok := (&Metrics{SampleN: 4}).LossRatio(); ok {
		t.Error("nothing sent: ok")
	}
}
