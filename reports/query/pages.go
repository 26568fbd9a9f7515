package query

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// PairRow is one line of the overview: a hop pair of a class (and of one
// flow when a class is selected) over the period.
type PairRow struct {
	Class, Flow    string
	HopFrom, HopTo string
	*Figures
}

// Overview returns every measured hop pair over the period, worst first
// (health, then loss ratio, then p99).
func (d *DB) Overview(ctx context.Context, s Selection) ([]PairRow, error) {
	g := byPair
	if s.Class != "" {
		g = byFlowPair
	}
	groups, err := d.collect(ctx, s, cover(s.From, s.To), g, 1<<DelayHist|1<<PDVHist)
	if err != nil {
		return nil, err
	}
	var out []PairRow
	for k, f := range groups {
		parts := strings.Split(k, "\x00")
		r := PairRow{Class: parts[0], Figures: f}
		if g.n == 4 {
			r.Flow, parts = parts[1], parts[1:]
		}
		r.HopFrom, r.HopTo = parts[1], parts[2]
		out = append(out, r)
	}
	rank := map[string]int{"bad": 0, "warn": 1, "ok": 2}
	p99 := func(f *Figures) int64 {
		q, ok := f.Quantiles(DelayHist, 0.99)
		if !ok {
			return 0
		}
		return q[0].V
	}
	cache := map[*Figures]int64{}
	for _, r := range out {
		cache[r.Figures] = p99(r.Figures)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ha, hb := rank[a.Health()], rank[b.Health()]; ha != hb {
			return ha < hb
		}
		ra, _, _, _ := a.LossRatio()
		rb, _, _, _ := b.LossRatio()
		if ra != rb {
			return ra > rb
		}
		if cache[a.Figures] != cache[b.Figures] {
			return cache[a.Figures] > cache[b.Figures]
		}
		return a.Class+a.Flow+a.HopFrom+a.HopTo < b.Class+b.Flow+b.HopFrom+b.HopTo
	})
	return out, nil
}

// Total returns the figures of the whole selection merged (a hop pair
// selected: that pair over the period).
func (d *DB) Total(ctx context.Context, s Selection) (*Figures, error) {
	groups, err := d.collect(ctx, s, cover(s.From, s.To), groupBy{"'all'", 1}, allHists)
	if err != nil {
		return nil, err
	}
	if f := groups["all"]; f != nil {
		return f, nil
	}
	return newFigures(), nil
}

// Step is one time step of a chart at the selection's resolution.
type Step struct {
	T time.Time
	*Figures
}

// Series returns the figures of every resolution step of the period that
// has rows, in time order (a chart's x axis).
func (d *DB) Series(ctx context.Context, s Selection) ([]Step, error) {
	return d.series(ctx, s, 1<<DelayHist)
}

// SeriesStats is Series from owd_stats only: counters, extremes and clock
// columns, no histograms (no quantiles).
func (d *DB) SeriesStats(ctx context.Context, s Selection) ([]Step, error) {
	return d.series(ctx, s, statsOnly)
}

func (d *DB) series(ctx context.Context, s Selection, hists int) ([]Step, error) {
	l := s.Resolution()
	groups, err := d.collect(ctx, s, []span{{l, s.From.UnixNano(), s.To.UnixNano()}}, byTime, hists)
	if err != nil {
		return nil, err
	}
	out := make([]Step, 0, len(groups))
	for k, f := range groups {
		var ns int64
		fmt.Sscan(k, &ns)
		out = append(out, Step{time.Unix(0, ns).UTC(), f})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].T.Before(out[j].T) })
	return out, nil
}

// Slice is one bucket of the configured delay histogram (owd_hist).
type Slice struct {
	Slice  int64
	Lo, Hi int64 // ns; Open* when open-ended
	OpenLo bool
	OpenHi bool
	Count  int64
}

// Slices returns the delay histogram on the configured slices over the
// period (a hop pair should be selected; otherwise the pairs add up).
// Slices whose edges changed (a new configuration) stay apart.
func (d *DB) Slices(ctx context.Context, s Selection) ([]Slice, error) {
	sum := map[[3]int64]int64{}
	tables := d.classTables(ctx, s, byPair)
	for _, sp := range cover(s.From, s.To) {
		from, args := d.source(ctx, s, "owd_hist", sp.level, sp.from, sp.to)
		if tables != perFlow {
			from, args = s.classSource("owd_hist", tables, sp.level, sp.from, sp.to)
		}
		err := d.rows(ctx, "SELECT t.slice, t.lo_ns, t.hi_ns, t.count"+from, args, func(r *sql.Rows) error {
			var k [3]int64
			var n int64
			if err := r.Scan(&k[0], &k[1], &k[2], &n); err != nil {
				return err
			}
			sum[k] += n
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]Slice, 0, len(sum))
	for k, n := range sum {
		out = append(out, Slice{Slice: k[0], Lo: k[1], Hi: k[2], OpenLo: k[1] == minInt64, OpenHi: k[2] == maxInt64, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Lo != out[j].Lo {
			return out[i].Lo < out[j].Lo
		}
		return out[i].Hi < out[j].Hi
	})
	return out, nil
}

const (
	minInt64 = -1 << 63
	maxInt64 = 1<<63 - 1
)

// Event is one row of the events table.
type Event struct {
	T                       time.Time
	Collector, Source, Kind string
	Detail                  string
}

// EventFilter narrows the events page; empty fields match everything.
type EventFilter struct {
	Source, Kind string // Kind matches a prefix ("clock." matches clock.sync)
	Limit        int    // 0: 5000
}

// Events returns the events of the period (and collector), newest first.
func (d *DB) Events(ctx context.Context, s Selection, f EventFilter) ([]Event, error) {
	q := "SELECT time_ns, collector, source, kind, detail FROM events WHERE time_ns >= ? AND time_ns < ?"
	args := []any{s.From.UnixNano(), s.To.UnixNano()}
	if s.Collector != "" {
		q += " AND collector = ?"
		args = append(args, s.Collector)
	}
	if f.Source != "" {
		q += " AND source = ?"
		args = append(args, f.Source)
	}
	if f.Kind != "" {
		q += " AND kind LIKE ?"
		args = append(args, strings.NewReplacer("%", `\%`, "_", `\_`).Replace(f.Kind)+"%")
	}
	if f.Limit <= 0 {
		f.Limit = 5000
	}
	q += fmt.Sprintf(" ORDER BY time_ns DESC LIMIT %d", f.Limit)
	var out []Event
	err := d.rows(ctx, q, args, func(r *sql.Rows) error {
		var e Event
		var ns int64
		if err := r.Scan(&ns, &e.Collector, &e.Source, &e.Kind, &e.Detail); err != nil {
			return err
		}
		e.T = time.Unix(0, ns).UTC()
		out = append(out, e)
		return nil
	})
	return out, err
}

// Options are the values the selectors offer.
type Options struct {
	Collectors, Classes []string
	Flows               []string    // of the selected class
	Pairs               [][2]string // of the selected class (every class without one)
	First, Last         time.Time   // the data's extent (days)
}

// Options lists what can be selected.
func (d *DB) Options(ctx context.Context, s Selection) (Options, error) {
	var o Options
	str := func(q string, args []any, dst *[]string) error {
		return d.rows(ctx, q, args, func(r *sql.Rows) error {
			var v sql.NullString
			if err := r.Scan(&v); err != nil {
				return err
			}
			*dst = append(*dst, v.String)
			return nil
		})
	}
	if err := str("SELECT DISTINCT collector FROM flows ORDER BY collector", nil, &o.Collectors); err != nil {
		return o, err
	}
	if err := str("SELECT DISTINCT class FROM flows ORDER BY class", nil, &o.Classes); err != nil {
		return o, err
	}
	if s.Class != "" {
		if err := str("SELECT DISTINCT flow_key FROM flows WHERE class = ? AND flow_key IS NOT NULL ORDER BY flow_key LIMIT 1000", []any{s.Class}, &o.Flows); err != nil {
			return o, err
		}
	}
	// The hop pairs ever measured (of the class): from the per-class day
	// rows, one a day and pair, rather than every flow's.
	q := "SELECT DISTINCT t.hop_from, t.hop_to FROM owd_stats_1d t JOIN flows p ON p.id = t.flow_id"
	class := "p.class"
	if _, perClass, _ := d.shape(ctx); perClass && !d.flowRows {
		q, class = "SELECT DISTINCT t.hop_from, t.hop_to FROM owd_stats_class_1d t", "t.class"
	}
	var args []any
	if s.Class != "" {
		q += " WHERE " + class + " = ?"
		args = append(args, s.Class)
	}
	err := d.rows(ctx, q+" ORDER BY 1, 2", args, func(r *sql.Rows) error {
		var a, b string
		if err := r.Scan(&a, &b); err != nil {
			return err
		}
		o.Pairs = append(o.Pairs, [2]string{a, b})
		return nil
	})
	if err != nil {
		return o, err
	}
	var lo, hi sql.NullInt64
	if err := d.db.QueryRowContext(ctx, "SELECT MIN(start_ns), MAX(start_ns) FROM owd_stats_1d").Scan(&lo, &hi); err != nil {
		return o, fmt.Errorf("query: %w", err)
	}
	if lo.Valid {
		o.First, o.Last = time.Unix(0, lo.Int64).UTC(), time.Unix(0, hi.Int64).UTC().Add(24*time.Hour)
	}
	return o, nil
}
