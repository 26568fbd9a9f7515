package spool

import (
	"strconv"

	"github.com/tmon-project/tmon/reconcile"
)

// TypeMetrics is the file type of the IPPM metrics (docs/spool.md,
// owd_metrics): one row per row of owd_stats.
const TypeMetrics = "owd_metrics"

// ColsMetrics are the columns of owd_metrics, in order.
var ColsMetrics = metricsCols()

var quantileNames = [4]string{"p50", "p90", "p99", "p999"}

func quantileCols(kind string) []string {
	var c []string
	for _, q := range quantileNames {
		c = append(c, kind+"_"+q+"_ns", kind+"_"+q+"_err_ns")
	}
	return c
}

func metricsCols() []string {
	c := []string{"interval_start", "interval_s", "class", "flow", "hop_from", "hop_to",
		"sample_n", "count", "lost", "count_est", "count_est_ci95", "lost_est", "lost_est_ci95",
		"loss_ratio", "loss_ratio_ci95", "loss_ratio_lo", "loss_ratio_hi", "loss_wait_ns"}
	c = append(c, quantileCols("delay")...)
	c = append(c, "delay_hist")
	c = append(c, quantileCols("pdv")...)
	c = append(c, "pdv_max_ns", "pdv_hist", "ipdv_count", "ipdv_min_ns", "ipdv_max_ns")
	c = append(c, quantileCols("ipdv")...)
	c = append(c, "ipdv_hist",
		"loss_periods", "loss_period_max", "loss_period_hist",
		"loss_distance_count", "loss_distance_min", "loss_distance_hist",
		"reordered", "reorder_ratio", "reorder_extent_max", "reorder_extent_sum",
		"duplicate", "dup_ratio", "neg_delay", "compose_viol")
	return c
}

// appendMetrics appends one owd_metrics row (LF included) after pre, the
// six key columns with their trailing TAB.
func appendMetrics(b, pre []byte, m *reconcile.Metrics) []byte {
	tab := func() { b = append(b, '\t') }
	u := func(v uint64) { b = strconv.AppendUint(b, v, 10); tab() }
	i := func(v int64) { b = strconv.AppendInt(b, v, 10); tab() }
	f := func(v float64, prec int) { b = strconv.AppendFloat(b, v, 'f', prec, 64); tab() }
	g := func(v float64, ok bool) {
		if ok {
			b = strconv.AppendFloat(b, v, 'g', 6, 64)
		}
		tab()
	}
	q := func(qs *reconcile.Quantiles, ok bool) {
		for k := range qs.V {
			if ok {
				b = strconv.AppendInt(b, qs.V[k], 10)
			}
			tab()
			if ok {
				b = strconv.AppendInt(b, qs.Err[k], 10)
			}
			tab()
		}
	}
	h := func(s []byte) { b = append(b, s...); tab() }

	b = append(b, pre...)
	u(uint64(max(m.SampleN, 1)))
	u(m.Count)
	u(m.Lost)
	est, ci := m.Estimate(m.Count)
	f(est, 0)
	f(ci, 1)
	est, ci = m.Estimate(m.Lost)
	f(est, 0)
	f(ci, 1)
	r, lo, hi, ok := m.LossRatio()
	g(r, ok)
	g((hi-lo)/2, ok)
	g(lo, ok)
	g(hi, ok)
	i(m.LossWait)
	q(&m.Delay, m.Count > 0)
	h(m.DelayHist)
	q(&m.PDV, m.Count > 0)
	if m.Count > 0 {
		b = strconv.AppendInt(b, m.PDVMax, 10)
	}
	tab()
	h(m.PDVHist)
	u(m.IPDVCount)
	if m.IPDVCount > 0 {
		i(m.IPDVMin)
		i(m.IPDVMax)
	} else {
		b = append(b, "\t\t"...)
	}
	q(&m.IPDV, m.IPDVCount > 0)
	h(m.IPDVHist)
	u(m.LossPeriods)
	u(m.LossPeriodMax)
	h(m.LossPeriodHist)
	u(m.LossDistanceCount)
	if m.LossDistanceCount > 0 {
		b = strconv.AppendUint(b, m.LossDistanceMin, 10)
	}
	tab()
	h(m.LossDistanceHist)
	u(m.Reordered)
	g(float64(m.Reordered)/float64(m.Count), m.Count > 0)
	u(m.ReorderExtentMax)
	u(m.ReorderExtentSum)
	u(m.Duplicate)
	g(float64(m.Duplicate)/float64(m.Count+m.Lost), m.Count+m.Lost > 0)
	u(m.NegDelay)
	b = strconv.AppendUint(b, m.ComposeViol, 10)
	return append(b, '\n')
}
