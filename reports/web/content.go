package web

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/tmon-project/tmon/reports/query"
)

// overviewRow is a PairRow with what the table shows computed once.
type overviewRow struct {
	query.PairRow
	Q       []query.Quantile // p50, p90, p99 of the delay
	PDV99   []query.Quantile
	Loss    float64
	LossLo  float64
	LossHi  float64
	HasLoss bool
	Health  string
}

func newRow(r query.PairRow) overviewRow {
	o := overviewRow{PairRow: r, Health: r.Health()}
	o.Q, _ = r.Quantiles(query.DelayHist, 0.5, 0.9, 0.99)
	o.PDV99, _ = r.Quantiles(query.PDVHist, 0.99)
	o.Loss, o.LossLo, o.LossHi, o.HasLoss = r.LossRatio()
	return o
}

func (s *Server) overview(ctx context.Context, p *page) error {
	rows, err := s.db.Overview(ctx, p.Sel)
	if err != nil {
		return err
	}
	out := make([]overviewRow, len(rows))
	for i, r := range rows {
		out[i] = newRow(r)
	}
	p.Data = out
	return nil
}

// pairData is the hop pair page (also a section of the report).
type pairData struct {
	Sel    query.Selection
	Row    overviewRow
	Charts []string // ids, in display order
	Events []query.Event
	Prefix string
}

// eventMarks are the events of the period as chart marks (at most 200,
// newest first: the chart would be unreadable beyond).
func eventMarks(evs []query.Event, sel query.Selection) []Mark {
	var out []Mark
	for i, e := range evs {
		if i == 200 {
			break
		}
		out = append(out, Mark{T: unix(e.T), Label: e.Kind, Href: "#ev-" + fmt.Sprint(i)})
	}
	return out
}

// pair fills the hop pair page; prefix makes chart ids unique in the report.
func (s *Server) pair(ctx context.Context, p *page, prefix string) error {
	sel := p.Sel
	if !sel.Pair() {
		if len(p.Opt.Pairs) != 1 {
			p.Data = &pairData{Sel: sel}
			return nil
		}
		sel.HopFrom, sel.HopTo = p.Opt.Pairs[0][0], p.Opt.Pairs[0][1]
	}
	d, err := s.pairSection(ctx, p, sel, prefix)
	if err != nil {
		return err
	}
	p.Data = d
	return nil
}

func (s *Server) pairSection(ctx context.Context, p *page, sel query.Selection, prefix string) (*pairData, error) {
	d := &pairData{Sel: sel, Prefix: prefix}
	total, err := s.db.Total(ctx, sel)
	if err != nil {
		return nil, err
	}
	d.Row = newRow(query.PairRow{Class: sel.Class, Flow: sel.Flow, HopFrom: sel.HopFrom, HopTo: sel.HopTo, Figures: total})
	steps, err := s.db.Series(ctx, sel)
	if err != nil {
		return nil, err
	}
	evs, err := s.db.Events(ctx, sel, query.EventFilter{Limit: 200})
	if err != nil {
		return nil, err
	}
	d.Events = evs
	marks := eventMarks(evs, sel)
	slices, err := s.db.Slices(ctx, sel)
	if err != nil {
		return nil, err
	}
	add := func(c Chart) {
		c.ID = prefix + c.ID
		d.Charts = append(d.Charts, p.chart(c))
	}
	add(delayChart(steps, marks))
	add(lossChart(steps, marks))
	add(countChart(steps, marks))
	add(sliceChart(slices))
	add(bucketChart("loghist", "Delay histogram (log-linear buckets, ≤ 0.8 % wide)", "ms", total.Buckets(query.DelayHist), 1e6))
	add(bucketChart("pdv", "PDV distribution (delay − minimum of its interval)", "ms", total.Buckets(query.PDVHist), 1e6))
	add(bucketChart("ipdv", "IPDV distribution (delay − previous packet's delay)", "ms", total.Buckets(query.IPDVHist), 1e6))
	add(bucketChart("lossperiods", "Loss periods (consecutive packets lost)", "pkts", total.Buckets(query.LossPeriodHist), 1))
	add(clockErrChart(steps, marks))
	return d, nil
}

// pathData is the path page.
type pathData struct {
	Path     *query.Path
	Segments []overviewRow
	E2E      *overviewRow
	Other    []overviewRow
	// Composition (RFC 5644): the segments' means add up to the end-to-end
	// mean for packets seen at every hop; loss composes as 1 − Π(1 − lᵢ).
	SumMeans, E2EMean     float64
	ComposedLoss, E2ELoss float64
	HasE2E                bool
}

func (s *Server) path(ctx context.Context, p *page) error {
	if p.Sel.Class == "" {
		if len(p.Opt.Classes) == 1 {
			p.Sel.Class = p.Opt.Classes[0]
		} else {
			p.Data = (*pathData)(nil)
			return nil
		}
	}
	path, err := s.db.Path(ctx, p.Sel)
	if err != nil {
		return err
	}
	d := &pathData{Path: path}
	keep := 1.0
	var names []string
	var series [][]query.Step
	for _, sg := range path.Segments {
		r := newRow(query.PairRow{Class: p.Sel.Class, HopFrom: sg.HopFrom, HopTo: sg.HopTo, Figures: sg.Figures})
		d.Segments = append(d.Segments, r)
		m, _ := sg.Mean()
		d.SumMeans += m
		if r.HasLoss {
			keep *= 1 - r.Loss
		}
		sel := p.Sel
		sel.HopFrom, sel.HopTo = sg.HopFrom, sg.HopTo
		st, err := s.db.Series(ctx, sel)
		if err != nil {
			return err
		}
		names = append(names, sg.HopFrom+"→"+sg.HopTo)
		series = append(series, st)
	}
	d.ComposedLoss = 1 - keep
	if path.EndToEnd != nil {
		r := newRow(query.PairRow{Class: p.Sel.Class, HopFrom: path.EndToEnd.HopFrom, HopTo: path.EndToEnd.HopTo, Figures: path.EndToEnd.Figures})
		d.E2E, d.HasE2E = &r, true
		d.E2EMean, _ = path.EndToEnd.Mean()
		d.E2ELoss = r.Loss
	}
	for _, sg := range path.Other {
		d.Other = append(d.Other, newRow(query.PairRow{Class: p.Sel.Class, HopFrom: sg.HopFrom, HopTo: sg.HopTo, Figures: sg.Figures}))
	}
	if len(series) > 0 {
		p.chart(segmentChart(names, series))
	}
	p.Data = d
	return nil
}

// eventsData is the events page.
type eventsData struct {
	Filter query.EventFilter
	Events []query.Event
	Kinds  []string
}

func (s *Server) events(ctx context.Context, p *page) error {
	f := query.EventFilter{Source: p.Params.Get("source"), Kind: p.Params.Get("kind"), Limit: 2000}
	evs, err := s.db.Events(ctx, p.Sel, f)
	if err != nil {
		return err
	}
	p.Data = &eventsData{Filter: f, Events: evs}
	return nil
}

// eventLink is the pair page (or the overview) around an event's time.
func eventLink(sel query.Selection, t time.Time) string {
	sel.Period, sel.From, sel.To = "custom", t.Add(-30*time.Minute).Truncate(time.Minute), t.Add(31*time.Minute).Truncate(time.Minute)
	if sel.Pair() {
		return link("/pair", sel) + "#chart-delay"
	}
	return link("/", sel)
}

func init() { funcs["eventlink"] = eventLink }

// probesData is the probes page.
type probesData struct {
	Probes []*query.Probe
}

func (s *Server) probes(ctx context.Context, p *page) error {
	ps, err := s.db.Probes(ctx, p.Sel)
	if err != nil {
		return err
	}
	steps, err := s.db.SeriesStats(ctx, p.Sel)
	if err != nil {
		return err
	}
	evs, err := s.db.Events(ctx, p.Sel, query.EventFilter{Kind: "clock.", Limit: 200})
	if err != nil {
		return err
	}
	p.chart(clockErrChart(steps, eventMarks(evs, p.Sel)))
	for _, pr := range ps {
		c := Chart{ID: "clock-" + pr.Name, Title: "Clock offset and error bound reported by " + pr.Name, Kind: "time", YLabel: "ms"}
		var off, bound []*float64
		for _, cp := range pr.Clock {
			if !cp.Known {
				continue
			}
			c.X = append(c.X, unix(cp.T))
			off = append(off, ms(int64(cp.Offset)))
			b := cp.Offset
			if b < 0 {
				b = -b
			}
			bound = append(bound, ms(int64(b+cp.RootDistance)))
		}
		c.Series = []Series{{Label: "offset", Color: "#1f77b4", Data: off}, {Label: "|offset| + root distance", Color: "#d62728", Data: bound}}
		p.chart(c)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	p.Data = &probesData{Probes: ps}
	return nil
}

// packetsData is the per-packet page.
type packetsData struct {
	N         int
	Collector string
	Truncated bool
	Ready     bool
}

// PacketLimit bounds the points of the scatter (the page stays fast).
const PacketLimit = 50000

func (s *Server) packets(ctx context.Context, p *page) error {
	d := &packetsData{}
	p.Data = d
	if p.Sel.Class == "" || !p.Sel.Pair() {
		return nil
	}
	pk, coll, trunc, err := s.db.Packets(ctx, p.Sel, PacketLimit)
	if err != nil {
		return err
	}
	d.N, d.Collector, d.Truncated, d.Ready = len(pk), coll, trunc, true
	p.chart(scatterChart(pk))
	return nil
}

// reportData is the whole report: overview, every pair, events.
type reportData struct {
	Rows   []overviewRow
	Pairs  []*pairData
	Events []query.Event
	More   int // pairs left out
}

// ReportPairs bounds the pair sections of the report.
const ReportPairs = 30

func (s *Server) report(ctx context.Context, p *page) error {
	rows, err := s.db.Overview(ctx, p.Sel)
	if err != nil {
		return err
	}
	d := &reportData{}
	for i, r := range rows {
		d.Rows = append(d.Rows, newRow(r))
		if i >= ReportPairs {
			d.More++
			continue
		}
		sel := p.Sel
		sel.Class, sel.Flow, sel.HopFrom, sel.HopTo = r.Class, r.Flow, r.HopFrom, r.HopTo
		ps, err := s.pairSection(ctx, p, sel, fmt.Sprintf("p%d-", i))
		if err != nil {
			return err
		}
		d.Pairs = append(d.Pairs, ps)
	}
	d.Events, err = s.db.Events(ctx, p.Sel, query.EventFilter{Limit: 500})
	if err != nil {
		return err
	}
	p.Data = d
	return nil
}
