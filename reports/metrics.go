package reports

import (
	"fmt"
	"github.com/tmon-project/tmon/reconcile"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/tmon-project/tmon/hist"
)

// Metrics is what the owd_metrics files (docs/spool.md) of one class and
// hop pair say over the whole spool: counts summed, extremes combined, and
// the log-linear histograms merged bucket by bucket across flows and
// intervals, so that quantiles of the whole are exact to their error bound
// rather than an average of per-interval quantiles.
type Metrics struct {
	Rows                   int    // owd_metrics rows merged
	SampleNMin, SampleNMax uint64 // 1 in N packets measured; 1: every packet
	Count, Lost            uint64 // of the selected packets
	CountEst, LostEst      uint64 // N·count summed: estimates of the whole traffic
	// CountVar and LostVar are the binomial variances of the estimates,
	// Σ count·N·(N−1): they add up over intervals.
	CountVar, LostVar  float64
	LossWaitMin        int64 // the loss waiting time (class timeout), ns
	LossWaitMax        int64
	LossPeriods        uint64
	LossPeriodMax      uint64
	Reordered          uint64
	ReorderExtentMax   uint64
	ReorderExtentSum   uint64
	Duplicate          uint64
	NegDelay           uint64
	ComposeViol        uint64
	PDVMax             int64
	IPDVCount          uint64
	IPDVMin, IPDVMax   int64
	Delay, PDV, IPDV   *hist.Hist
	hasPDVMax, hasIPDV bool
}

func newMetrics() *Metrics {
	return &Metrics{Delay: new(hist.Hist), PDV: new(hist.Hist), IPDV: new(hist.Hist)}
}

// Sampled reports whether some interval measured only 1 in N packets: then
// every count is of the selected packets and the totals are estimates.
func (m *Metrics) Sampled() bool { return m.SampleNMax > 1 }

// add merges one owd_metrics row.
func (m *Metrics) add(r map[string]string) error {
	u := func(col string) uint64 {
		v, _ := strconv.ParseUint(r[col], 10, 64)
		return v
	}
	for _, col := range []string{"sample_n", "count", "lost", "loss_periods", "loss_period_max", "reordered",
		"reorder_extent_max", "reorder_extent_sum", "duplicate", "neg_delay", "compose_viol", "ipdv_count"} {
		if _, err := uintCol(r, col); err != nil {
			return err
		}
	}
	n := max(u("sample_n"), 1)
	if m.Rows == 0 || n < m.SampleNMin {
		m.SampleNMin = n
	}
	m.SampleNMax = max(m.SampleNMax, n)
	count, lost := u("count"), u("lost")
	m.Count += count
	m.Lost += lost
	m.CountEst += count * n
	m.LostEst += lost * n
	m.CountVar += float64(count) * float64(n) * float64(n-1)
	m.LostVar += float64(lost) * float64(n) * float64(n-1)
	if r["loss_wait_ns"] != "" {
		w, err := intCol(r, "loss_wait_ns")
		if err != nil {
			return err
		}
		if m.Rows == 0 || w < m.LossWaitMin {
			m.LossWaitMin = w
		}
		m.LossWaitMax = max(m.LossWaitMax, w)
	}
	m.LossPeriods += u("loss_periods")
	m.LossPeriodMax = max(m.LossPeriodMax, u("loss_period_max"))
	m.Reordered += u("reordered")
	m.ReorderExtentMax = max(m.ReorderExtentMax, u("reorder_extent_max"))
	m.ReorderExtentSum += u("reorder_extent_sum")
	m.Duplicate += u("duplicate")
	m.NegDelay += u("neg_delay")
	m.ComposeViol += u("compose_viol")
	if r["pdv_max_ns"] != "" {
		v, err := intCol(r, "pdv_max_ns")
		if err != nil {
			return err
		}
		m.PDVMax = max(m.PDVMax, v)
		m.hasPDVMax = true
	}
	if c := u("ipdv_count"); c > 0 {
		lo, e1 := intCol(r, "ipdv_min_ns")
		hi, e2 := intCol(r, "ipdv_max_ns")
		if e1 != nil || e2 != nil {
			return fmt.Errorf("bad IPDV extremes")
		}
		if !m.hasIPDV || lo < m.IPDVMin {
			m.IPDVMin = lo
		}
		if !m.hasIPDV || hi > m.IPDVMax {
			m.IPDVMax = hi
		}
		m.IPDVCount += c
		m.hasIPDV = true
	}
	for col, h := range map[string]*hist.Hist{"delay_hist": m.Delay, "pdv_hist": m.PDV, "ipdv_hist": m.IPDV} {
		if err := h.AddSparse(r[col]); err != nil {
			return fmt.Errorf("column %s: %w", col, err)
		}
	}
	m.Rows++
	return nil
}

// finish restores the exact extremes the histograms' sparse form lacks:
// the delay's from owd_stats, PDV's from its definition (every interval's
// fastest packet has PDV 0) and pdv_max_ns, IPDV's from its columns.
func (m *Metrics) finish(p *Pair) {
	if p.Count > 0 {
		m.Delay.SetRange(p.Min, p.Max)
	}
	if m.hasPDVMax {
		m.PDV.SetRange(0, m.PDVMax)
	}
	if m.hasIPDV {
		m.IPDV.SetRange(m.IPDVMin, m.IPDVMax)
	}
}

// LossRatio is lost / (count + lost) over the spool, with the half-width of
// its 95 % Wilson interval under sampling (0 for a census); ok is false
// when no packet was sent.
func (m *Metrics) LossRatio() (r, ci95 float64, ok bool) {
	sent := m.Count + m.Lost
	if sent == 0 {
		return 0, 0, false
	}
	r = float64(m.Lost) / float64(sent)
	if m.Sampled() {
		lo, hi := reconcile.Wilson(uint64(m.Lost), uint64(sent))
		ci95 = (hi - lo) / 2
	}
	return r, ci95, true
}

// quantileLabels are the delay quantiles printed, with their q.
var quantileLabels = []struct {
	label string
	q     float64
}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p99.9", 0.999}}

// writeMetrics prints the IPPM figures of a pair (owd_metrics).
func writeMetrics(w io.Writer, p *Pair) {
	m := p.M
	if m == nil {
		return
	}
	est := ""
	if m.Sampled() {
		est = " (estimates: 1 in N packets measured)"
	}
	fmt.Fprintf(w, "  IPPM metrics     from %d owd_metrics row(s)%s\n", m.Rows, est)
	if m.Delay.Count() > 0 {
		var parts []string
		for _, q := range quantileLabels {
			v, e := m.Delay.Quantile(q.q)
			parts = append(parts, fmt.Sprintf("%s %v ±%v", q.label, ns(v), ns(e)))
		}
		fmt.Fprintf(w, "  delay quantiles  %s  (log-linear histogram merged over every interval)\n", strings.Join(parts, "  "))
	}
	if r, ci, ok := m.LossRatio(); ok {
		wait := fmt.Sprintf("%v", ns(m.LossWaitMax))
		if m.LossWaitMin != m.LossWaitMax {
			wait = fmt.Sprintf("%v to %v", ns(m.LossWaitMin), ns(m.LossWaitMax))
		}
		ciText := ""
		if m.Sampled() {
			ciText = fmt.Sprintf(" ±%.3f %%", 100*ci)
		}
		fmt.Fprintf(w, "  loss ratio       %.3f %%%s  (lost: not arrived within %s of the first sighting)\n", 100*r, ciText, wait)
	}
	fmt.Fprintf(w, "  loss periods     %d, longest %d packet(s)  (cut at interval boundaries)\n", m.LossPeriods, m.LossPeriodMax)
	var dv []string
	if m.PDV.Count() > 0 {
		v, e := m.PDV.Quantile(0.99)
		dv = append(dv, fmt.Sprintf("PDV p99 %v ±%v", ns(v), ns(e)))
	}
	if m.IPDV.Count() > 0 {
		v, e := m.IPDV.Quantile(0.99)
		dv = append(dv, fmt.Sprintf("IPDV p99 %v ±%v", ns(v), ns(e)))
	}
	if len(dv) > 0 {
		fmt.Fprintf(w, "  delay variation  %s\n", strings.Join(dv, "   "))
	}
	if m.Reordered > 0 {
		fmt.Fprintf(w, "  reorder extent   max %d, mean %.2f packet(s) over %d reordered\n",
			m.ReorderExtentMax, float64(m.ReorderExtentSum)/float64(m.Reordered), m.Reordered)
	} else {
		fmt.Fprintf(w, "  reorder extent   none reordered\n")
	}
	switch {
	case !m.Sampled():
		fmt.Fprintf(w, "  sampling         every packet (1 in 1): the figures are counts, not estimates\n")
	default:
		n := fmt.Sprintf("1 in %d", m.SampleNMax)
		if m.SampleNMin != m.SampleNMax {
			n = fmt.Sprintf("1 in %d to 1 in %d", m.SampleNMin, m.SampleNMax)
		}
		fmt.Fprintf(w, "  sampling         %s: counts are of the selected packets; estimated %d delivered ±%.0f, %d lost ±%.0f (95 %%)\n",
			n, m.CountEst, 1.96*math.Sqrt(m.CountVar), m.LostEst, 1.96*math.Sqrt(m.LostVar))
	}
	if m.NegDelay > 0 || m.ComposeViol > 0 {
		fmt.Fprintf(w, "  clock suspects   %d negative delay(s), %d composition violation(s)\n", m.NegDelay, m.ComposeViol)
	}
	fmt.Fprintf(w, "  dropped          %d   (given up by a probe's transport: not a network loss)\n", p.Dropped)
}
