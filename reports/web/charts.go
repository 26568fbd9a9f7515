package web

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/tmon-project/tmon/reports/query"
)

// Chart is one chart, defined once: the page embeds it as JSON and
// assets/tmon.js draws it with uPlot, in the browser as in the PDF (which
// is the same page printed by headless chromium).
type Chart struct {
	ID     string    `json:"id"`
	Title  string    `json:"title"`
	Kind   string    `json:"kind"` // time (x: Unix seconds), bars (x: index, XLabels), scatter (time, points only)
	YLabel string    `json:"ylabel"`
	X      []float64 `json:"x"`
	// XLabels name the bars of a bars chart.
	XLabels []string `json:"xlabels,omitempty"`
	Series  []Series `json:"series"`
	// Bands fill between two series (indexes into Series, upper first).
	Bands [][2]int `json:"bands,omitempty"`
	// Marks are events drawn as vertical lines at their time (time charts).
	Marks []Mark `json:"marks,omitempty"`
	Note  string `json:"note,omitempty"`
}

// Series is one line (or the bars) of a chart; nil values are gaps.
type Series struct {
	Label string     `json:"label"`
	Color string     `json:"color"`
	Data  []*float64 `json:"data"`
	Fill  string     `json:"fill,omitempty"`
	Width float64    `json:"width,omitempty"`
}

// Mark is an event on a time chart.
type Mark struct {
	T     float64 `json:"t"`
	Label string  `json:"label"`
	Href  string  `json:"href,omitempty"`
}

func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func ms(ns int64) *float64 { return num(float64(ns) / 1e6) }

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// delayChart: p50/p90/p99/max of the delay per resolution step, with the
// bands between them.
func delayChart(steps []query.Step, marks []Mark) Chart {
	c := Chart{ID: "delay", Title: "One-way delay percentiles", Kind: "time", YLabel: "ms", Marks: marks}
	names := []string{"p50", "p90", "p99", "max"}
	colors := []string{"#1f77b4", "#2ca02c", "#ff7f0e", "#d62728"}
	data := make([][]*float64, 4)
	for _, st := range steps {
		c.X = append(c.X, unix(st.T))
		q, ok := st.Quantiles(query.DelayHist, 0.5, 0.9, 0.99)
		for i := range 3 {
			if ok {
				data[i] = append(data[i], ms(q[i].V))
			} else {
				data[i] = append(data[i], nil)
			}
		}
		if st.Count > 0 {
			data[3] = append(data[3], ms(st.MaxNs))
		} else {
			data[3] = append(data[3], nil)
		}
	}
	for i := range names {
		c.Series = append(c.Series, Series{Label: names[i], Color: colors[i], Data: data[i]})
	}
	c.Bands = [][2]int{{3, 2}, {2, 1}, {1, 0}}
	return c
}

// lossChart: loss % per step with its 95 % interval.
func lossChart(steps []query.Step, marks []Mark) Chart {
	c := Chart{ID: "loss", Title: "Loss", Kind: "time", YLabel: "%", Marks: marks}
	var r, lo, hi []*float64
	for _, st := range steps {
		c.X = append(c.X, unix(st.T))
		x, l, h, ok := st.LossRatio()
		if !ok {
			r, lo, hi = append(r, nil), append(lo, nil), append(hi, nil)
			continue
		}
		r, lo, hi = append(r, num(100*x)), append(lo, num(100*l)), append(hi, num(100*h))
	}
	c.Series = []Series{{Label: "loss %", Color: "#d62728", Data: r}, {Label: "95 % high", Color: "#f4a6a6", Data: hi, Width: 1}, {Label: "95 % low", Color: "#f4a6a6", Data: lo, Width: 1}}
	c.Bands = [][2]int{{1, 2}}
	return c
}

// countChart: delays measured and packets lost per step.
func countChart(steps []query.Step, marks []Mark) Chart {
	c := Chart{ID: "count", Title: "Packets measured and lost", Kind: "time", YLabel: "packets", Marks: marks}
	var n, l, m []*float64
	for _, st := range steps {
		c.X = append(c.X, unix(st.T))
		n, l, m = append(n, num(float64(st.Count))), append(l, num(float64(st.Lost))), append(m, num(float64(st.Missed)))
	}
	c.Series = []Series{{Label: "measured", Color: "#1f77b4", Data: n}, {Label: "lost", Color: "#d62728", Data: l}, {Label: "missed", Color: "#9467bd", Data: m}}
	return c
}

// sliceChart: the delay histogram on the configured slices.
func sliceChart(sl []query.Slice) Chart {
	c := Chart{ID: "slices", Title: "Delay histogram (configured slices)", Kind: "bars", YLabel: "packets"}
	var d []*float64
	for i, s := range sl {
		c.X = append(c.X, float64(i))
		switch {
		case s.OpenLo:
			c.XLabels = append(c.XLabels, fmt.Sprintf("< %s", fmtMs(s.Hi)))
		case s.OpenHi:
			c.XLabels = append(c.XLabels, fmt.Sprintf("≥ %s", fmtMs(s.Lo)))
		default:
			c.XLabels = append(c.XLabels, fmt.Sprintf("%s–%s", fmtMs(s.Lo), fmtMs(s.Hi)))
		}
		d = append(d, num(float64(s.Count)))
	}
	c.Series = []Series{{Label: "packets", Color: "#1f77b4", Data: d, Fill: "rgba(31,119,180,0.6)"}}
	return c
}

// bucketChart: a log-linear histogram (delay, PDV, IPDV), one bar per
// non-empty bucket, labelled by its lower edge.
func bucketChart(id, title, unit string, bs []query.Bucket, scale float64) Chart {
	c := Chart{ID: id, Title: title, Kind: "bars", YLabel: "packets"}
	var d []*float64
	for i, b := range bs {
		c.X = append(c.X, float64(i))
		c.XLabels = append(c.XLabels, fmt.Sprintf("%.4g %s", float64(b.Lo)/scale, unit))
		d = append(d, num(float64(b.N)))
	}
	c.Series = []Series{{Label: "count", Color: "#2ca02c", Data: d, Fill: "rgba(44,160,44,0.6)"}}
	return c
}

// scatterChart: per-packet delays over time.
func scatterChart(pk []query.Packet) Chart {
	c := Chart{ID: "packets", Title: "Per-packet delay", Kind: "scatter", YLabel: "ms"}
	var d, first []*float64
	frag := false
	for _, p := range pk {
		c.X = append(c.X, unix(p.TFrom))
		d = append(d, ms(p.DelayNs))
		if p.FirstDelayNs != nil {
			first = append(first, ms(*p.FirstDelayNs))
			frag = true
		} else {
			first = append(first, nil)
		}
	}
	c.Series = []Series{{Label: "delay", Color: "#1f77b4", Data: d}}
	if frag {
		// Reassembled datagrams: the delay of their first fragments
		// beside that of their last (the delay series).
		c.Series = append(c.Series, Series{Label: "first fragment", Color: "#ff7f0e", Data: first})
	}
	return c
}

// clockErrChart: the largest clock error bound the collector applied per
// step (owd_stats.clock_err_ns).
func clockErrChart(steps []query.Step, marks []Mark) Chart {
	c := Chart{ID: "clockerr", Title: "Clock error bound of the delays (collector)", Kind: "time", YLabel: "ms", Marks: marks}
	var d, bad []*float64
	for _, st := range steps {
		c.X = append(c.X, unix(st.T))
		if st.ClockErrNs >= 0 {
			d = append(d, ms(st.ClockErrNs))
		} else {
			d = append(d, nil)
		}
		bad = append(bad, num(float64(st.ClockNotOK)))
	}
	c.Series = []Series{{Label: "clock_err", Color: "#8c564b", Data: d}}
	_ = bad
	return c
}

// segmentChart: p50 of each segment of a path over time, side by side.
func segmentChart(names []string, series [][]query.Step) Chart {
	c := Chart{ID: "segments", Title: "Median delay per segment", Kind: "time", YLabel: "ms"}
	colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"}
	idx := map[float64]int{}
	for _, steps := range series {
		for _, st := range steps {
			idx[unix(st.T)] = 0
		}
	}
	for t := range idx {
		c.X = append(c.X, t)
	}
	sort.Float64s(c.X)
	for i, t := range c.X {
		idx[t] = i
	}
	for k, steps := range series {
		d := make([]*float64, len(c.X))
		for _, st := range steps {
			if q, ok := st.Quantiles(query.DelayHist, 0.5); ok {
				d[idx[unix(st.T)]] = ms(q[0].V)
			}
		}
		c.Series = append(c.Series, Series{Label: names[k], Color: colors[k%len(colors)], Data: d})
	}
	return c
}

func fmtMs(ns int64) string { return fmt.Sprintf("%.4g ms", float64(ns)/1e6) }
