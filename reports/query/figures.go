package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tmon-project/tmon/hist"
	"github.com/tmon-project/tmon/loader"
	"github.com/tmon-project/tmon/reconcile"
)

// Figures are the merged figures of a group of rows (a hop pair over the
// period, or one time step of a chart): counters summed, extremes combined,
// histograms merged bucket by bucket, so that quantiles are exact to their
// error bound.
type Figures struct {
	Rows                  int   // owd_stats rows merged
	Samples               int64 // spool rows merged into them (collector intervals)
	Count                 int64 // delays measured
	Lost, Missed, Dropped int64
	Duplicate, Reordered  int64
	SumNs                 int64
	MinNs, MaxNs          int64 // valid when Count > 0
	ClockNotOK            int64 // merged spool rows with clock_ok 0
	ClockErrUnknown       int64 // merged spool rows without a clock bound
	ClockErrNs            int64 // largest clock error bound (-1: none known)
	SampleNMax            int64 // 1 in N packets measured (1: all)
	NegDelay, ComposeViol int64
	LossPeriods           int64
	Collectors            []string // whose rows these are
	// The rows' histograms merged bucket by bucket as they are read
	// (hist.MergeSparse: exactly what merging the full histograms gives),
	// expanded into a hist.Hist only when asked for: a full histogram is
	// 60 KiB, a chart has thousands of groups, and a group of a class-wide
	// chart merges a hundred flows' rows. A malformed form makes its kind
	// unusable (histErr), never a wrong merge.
	hists      [nHist][]hist.Bucket
	histErr    [nHist]error
	hasMetrics bool
}

// Histogram kinds of owd_metrics.
const (
	DelayHist = iota
	PDVHist
	IPDVHist
	LossPeriodHist
	nHist

	allHists  = 1<<nHist - 1
	statsOnly = -1
)

func newFigures() *Figures { return &Figures{ClockErrNs: -1} }

var histPool = sync.Pool{New: func() any { return new(hist.Hist) }}

// withHist calls fn with the merged histogram of the given kind (a pooled
// one: fn must not keep it). Delay extremes are the exact ones of owd_stats.
func (f *Figures) withHist(kind int, fn func(h *hist.Hist)) error {
	h := histPool.Get().(*hist.Hist)
	defer histPool.Put(h)
	h.Reset()
	if err := f.histErr[kind]; err != nil {
		return err
	}
	h.AddBuckets(f.hists[kind])
	if kind == DelayHist && f.Count > 0 {
		h.SetRange(f.MinNs, f.MaxNs)
	}
	fn(h)
	return nil
}

// Quantiles returns the nearest-rank quantiles qs of a histogram; ok is
// false when it is empty.
func (f *Figures) Quantiles(kind int, qs ...float64) (out []Quantile, ok bool) {
	_ = f.withHist(kind, func(h *hist.Hist) {
		if h.Count() == 0 {
			return
		}
		ok = true
		for _, q := range qs {
			v, e := h.Quantile(q)
			out = append(out, Quantile{v, e})
		}
	})
	return out, ok
}

// Bucket is one bucket of a histogram: [Lo, Hi] and its count.
type Bucket struct {
	Lo, Hi int64
	N      uint64
}

// Buckets returns the non-empty buckets of a merged histogram.
func (f *Figures) Buckets(kind int) []Bucket {
	var out []Bucket
	_ = f.withHist(kind, func(h *hist.Hist) {
		h.Each(func(k int32, n uint64) {
			lo, hi := hist.Bounds(k)
			out = append(out, Bucket{lo, hi, n})
		})
	})
	return out
}

// Quantile is a value with the bound of its error: the exact quantile of the
// delays lies in [V−Err, V+Err].
type Quantile struct{ V, Err int64 }

// LossRatio is lost / (count + lost) with its 95 % interval: the Wilson
// score interval under sampling (as the collector computes it), the ratio
// itself for a census. ok is false when nothing was sent.
func (f *Figures) LossRatio() (r, lo, hi float64, ok bool) {
	sent := f.Count + f.Lost
	if sent <= 0 {
		return 0, 0, 0, false
	}
	r = float64(f.Lost) / float64(sent)
	if f.SampleNMax > 1 {
		lo, hi = reconcile.Wilson(uint64(f.Lost), uint64(sent))
		return r, lo, hi, true
	}
	return r, r, r, true
}

// Mean is the mean delay (ns).
func (f *Figures) Mean() (float64, bool) {
	if f.Count == 0 {
		return 0, false
	}
	return float64(f.SumNs) / float64(f.Count), true
}

// Health marks a pair for the overview: "bad" (loss above 1 %, or packets
// sent and none measured), "warn" (clock not within budget or unknown,
// negative delays, composition violations, any loss, duplicates), "ok".
func (f *Figures) Health() string {
	r, _, _, ok := f.LossRatio()
	switch {
	case ok && (r > 0.01 || f.Count == 0):
		return "bad"
	case f.ClockNotOK > 0 || f.ClockErrUnknown > 0 || f.NegDelay > 0 || f.ComposeViol > 0 || f.Lost > 0 || f.Duplicate > 0:
		return "warn"
	}
	return "ok"
}

// source is Selection.source, reading a single collector's rows directly
// when the database holds one collector only: the pick would choose every
// row anyway, and its window function costs a sort of the period's rows.
func (d *DB) source(ctx context.Context, s Selection, table string, l Level, from, to int64) (string, []any) {
	if s.Collector == "" {
		s.Collector = d.onlyCollector(ctx)
	}
	return s.source(table, l, from, to)
}

// onlyCollector returns the collector when the flows of the database are
// all one collector's, else "" (cached a few seconds: a loader may add one).
func (d *DB) onlyCollector(ctx context.Context) string {
	only, _, _ := d.shape(ctx)
	return only
}

// shape returns the single collector of the database ("" when several) and
// which per-class tables it has (a database of an older loader has not,
// until a loader of this version runs on it). Cached a few seconds: a
// loader may add a collector or the tables.
func (d *DB) shape(ctx context.Context) (only string, perClass, perCollClass bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.onlyAt) < 10*time.Second {
		return d.only, d.perClass, d.perCollClass
	}
	var lo, hi sql.NullString
	if err := d.db.QueryRowContext(ctx, "SELECT MIN(collector), MAX(collector) FROM flows").Scan(&lo, &hi); err != nil {
		return "", false, false // the pick view then: slower, never wrong
	}
	// Usable once built: a loader upgrading a database builds them in a
	// transaction per level, the day level last.
	has := func(table string) (bool, error) {
		var one int64
		err := d.db.QueryRowContext(ctx, "SELECT 1 FROM "+table+" LIMIT 1").Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return err == nil, err
	}
	flowRows, err := has("owd_stats_1d")
	classRows, err2 := has("owd_stats_class_1d")
	d.perClass = err == nil && err2 == nil && (classRows || !flowRows)
	collRows, err2 := has("owd_stats_class_collector_1d")
	d.perCollClass = err == nil && err2 == nil && (collRows || !flowRows)
	d.only, d.onlyAt = "", time.Now()
	if lo.Valid && lo.String == hi.String {
		d.only = lo.String
	}
	return d.only, d.perClass, d.perCollClass
}

// Per-class tables a query reads (classTables).
const (
	perFlow     = ""                // the per-flow rows
	classPicked = "class"           // owd_*_class_*: every collector, each figure once
	classOfColl = "class_collector" // owd_*_class_collector_*: one collector's rows
)

// classTables says which per-class tables a query of the selection grouped
// by g can read (docs/loader.md "Per-class aggregates"): the rows of every
// flow of a class merged, one row a step instead of one a flow; each
// figure once (the picks of every collector), or with a collector
// selected among several, that collector's rows merged. None for one
// flow or a grouping by flow.
func (d *DB) classTables(ctx context.Context, s Selection, g groupBy) string {
	if d.flowRows || s.Flow != "" || strings.Contains(g.cols, "p.flow_key") {
		return perFlow
	}
	only, picked, ofColl := d.shape(ctx)
	switch {
	case picked && (s.Collector == "" || s.Collector == only):
		return classPicked
	case ofColl && s.Collector != "":
		return classOfColl
	}
	return perFlow
}

// classSource is the FROM and WHERE of a query on a per-class table (alias
// t; its class column is t.class, its collectors t.collectors or its
// collector t.collector) of kind tables (classTables) over [from, to) at
// level l. Rows the loader emptied when a pick changed (no samples) are left
// out.
func (s Selection) classSource(table, tables string, l Level, from, to int64) (string, []any) {
	var b strings.Builder
	fmt.Fprintf(&b, " FROM %s_%s_%s t WHERE t.start_ns >= ? AND t.start_ns < ?", table, tables, l.Suffix)
	args := []any{from, to}
	if table != "owd_hist" {
		b.WriteString(" AND t.samples > 0")
	}
	if tables == classOfColl {
		b.WriteString(" AND t.collector = ?")
		args = append(args, s.Collector)
	}
	if s.Class != "" {
		b.WriteString(" AND t.class = ?")
		args = append(args, s.Class)
	}
	if s.Pair() {
		b.WriteString(" AND t.hop_from = ? AND t.hop_to = ?")
		args = append(args, s.HopFrom, s.HopTo)
	}
	return b.String(), args
}

// perClassCols rewrites a grouping's columns for a per-class table.
func perClassCols(cols string) string { return strings.ReplaceAll(cols, "p.class", "t.class") }

// source is the FROM and WHERE of a query on an aggregated table (alias t)
// over [from, to) at level l: the pick view's rows (each figure once) or, with
// a collector selected, that collector's rows. p names the flow's class,
// flow_key and collector in both cases.
func (s Selection) source(table string, l Level, from, to int64) (string, []any) {
	var b strings.Builder
	var args []any
	switch {
	case s.Collector == "" && s.Flow != "":
		// One flow: the pick of the view (loader.PickOrder) among that
		// flow's rows only (the flow's rows found first, by flow_id: see
		// the case below); the view would rank every flow of the period
		// before the flow is chosen.
		pair := ""
		args = append(args, s.Class, s.Flow, from, to)
		if s.Pair() {
			pair = " AND s.hop_from = ? AND s.hop_to = ?"
			args = append(args, s.HopFrom, s.HopTo)
		}
		fmt.Fprintf(&b, " FROM %s_%s t JOIN (SELECT s.start_ns, s.flow_id, s.hop_from, s.hop_to, f.collector, f.class, f.flow_key,"+
			" ROW_NUMBER() OVER (PARTITION BY s.start_ns, s.hop_from, s.hop_to ORDER BY %s) AS pick_rank"+
			" FROM flows f CROSS JOIN owd_stats_%s s ON s.flow_id = f.id WHERE f.class = ? AND f.flow_key = ? AND s.start_ns >= ? AND s.start_ns < ?%s) p"+
			" ON p.start_ns = t.start_ns AND p.flow_id = t.flow_id AND p.hop_from = t.hop_from AND p.hop_to = t.hop_to"+
			" WHERE p.pick_rank = 1 AND t.start_ns >= ? AND t.start_ns < ?", table, l.Suffix, loader.PickOrder, l.Suffix, pair)
		args = append(args, from, to)
	case s.Collector == "":
		fmt.Fprintf(&b, " FROM %s_%s t JOIN owd_pick_%s p ON p.start_ns = t.start_ns AND p.flow_id = t.flow_id AND p.hop_from = t.hop_from AND p.hop_to = t.hop_to"+
			" WHERE p.start_ns >= ? AND p.start_ns < ? AND t.start_ns >= ? AND t.start_ns < ?", table, l.Suffix, l.Suffix)
		args = append(args, from, to, from, to)
	case s.Flow != "":
		// The flow first: SQLite (no statistics) would otherwise scan the
		// period's rows of every flow by start_ns (CROSS JOIN keeps the
		// order in SQLite; MySQL reads it as an inner join).
		fmt.Fprintf(&b, " FROM flows p CROSS JOIN %s_%s t ON t.flow_id = p.id WHERE p.collector = ? AND t.start_ns >= ? AND t.start_ns < ?", table, l.Suffix)
		args = append(args, s.Collector, from, to)
	default:
		fmt.Fprintf(&b, " FROM %s_%s t JOIN flows p ON p.id = t.flow_id WHERE p.collector = ? AND t.start_ns >= ? AND t.start_ns < ?", table, l.Suffix)
		args = append(args, s.Collector, from, to)
	}
	if s.Class != "" {
		b.WriteString(" AND p.class = ?")
		args = append(args, s.Class)
	}
	if s.Flow != "" {
		b.WriteString(" AND p.flow_key = ?")
		args = append(args, s.Flow)
	}
	if s.Pair() {
		b.WriteString(" AND t.hop_from = ? AND t.hop_to = ?")
		args = append(args, s.HopFrom, s.HopTo)
	}
	return b.String(), args
}

// groupBy says how rows are grouped: the SQL expressions of the key (over
// t and p) and how many of them.
type groupBy struct {
	cols string
	n    int
}

var (
	byPair     = groupBy{"p.class, t.hop_from, t.hop_to", 3}
	byFlowPair = groupBy{"p.class, p.flow_key, t.hop_from, t.hop_to", 4}
	byTime     = groupBy{"t.start_ns", 1}
)

// collect merges the owd_stats and owd_metrics rows of the spans into one
// Figures per group key (the key columns joined by "\x00").
// hists names the histograms to read (1<<DelayHist | …): each is a long
// text, and a chart of a year reads tens of thousands of rows; statsOnly
// skips owd_metrics altogether.
func (d *DB) collect(ctx context.Context, s Selection, spans []span, g groupBy, hists int) (map[string]*Figures, error) {
	out := map[string]*Figures{}
	get := func(k string) *Figures {
		f := out[k]
		if f == nil {
			f = newFigures()
			out[k] = f
		}
		return f
	}
	keyOf := func(vals []sql.NullString) string {
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = v.String
		}
		return strings.Join(parts, "\x00")
	}
	tables := d.classTables(ctx, s, g)
	cols, coll := g.cols, "p.collector"
	src := func(table string, sp span) (string, []any) {
		if tables != perFlow {
			return s.classSource(table, tables, sp.level, sp.from, sp.to)
		}
		return d.source(ctx, s, table, sp.level, sp.from, sp.to)
	}
	switch tables {
	case classPicked:
		cols, coll = perClassCols(cols), "t.collectors"
	case classOfColl:
		cols, coll = perClassCols(cols), "t.collector"
	}
	for _, sp := range spans {
		from, args := src("owd_stats", sp)
		// Summed in SQL per group and collector: a chart of 100 flows
		// reads one row a step, not one a flow.
		q := "SELECT " + cols + ", " + coll + `, COUNT(*), SUM(t.samples), SUM(t.count), SUM(COALESCE(t.sum_ns, 0)),
			MIN(CASE WHEN t.count > 0 THEN t.min_ns END), MAX(CASE WHEN t.count > 0 THEN t.max_ns END),
			SUM(COALESCE(t.lost_sum, 0)), SUM(COALESCE(t.missed_sum, 0)), SUM(COALESCE(t.dropped_sum, 0)),
			SUM(COALESCE(t.duplicate_sum, 0)), SUM(COALESCE(t.reordered_sum, 0)), SUM(COALESCE(t.clock_not_ok, 0)), SUM(COALESCE(t.clock_err_unknown, 0)), MAX(t.clock_err_ns)` +
			from + " GROUP BY " + cols + ", " + coll
		err := d.rows(ctx, q, args, func(r *sql.Rows) error {
			key := make([]sql.NullString, g.n)
			var coll string
			var nrows, samples, count, sum, lost, missed, dropped, dup, reord, notOK, unknown int64
			var mn, mx, cerr sql.NullInt64
			dest := []any{}
			for i := range key {
				dest = append(dest, &key[i])
			}
			dest = append(dest, &coll, &nrows, &samples, &count, &sum, &mn, &mx, &lost, &missed, &dropped, &dup, &reord, &notOK, &unknown, &cerr)
			if err := r.Scan(dest...); err != nil {
				return err
			}
			f := get(keyOf(key))
			f.Rows += int(nrows)
			f.Samples += samples
			if count > 0 && mn.Valid && mx.Valid {
				if f.Count == 0 || mn.Int64 < f.MinNs {
					f.MinNs = mn.Int64
				}
				if f.Count == 0 || mx.Int64 > f.MaxNs {
					f.MaxNs = mx.Int64
				}
			}
			f.Count += count
			f.SumNs += sum
			f.Lost += lost
			f.Missed += missed
			f.Dropped += dropped
			f.Duplicate += dup
			f.Reordered += reord
			f.ClockNotOK += notOK
			f.ClockErrUnknown += unknown
			if cerr.Valid && cerr.Int64 > f.ClockErrNs {
				f.ClockErrNs = cerr.Int64
			}
			// A per-class row names the collectors it merges.
			for _, c := range strings.Split(coll, ",") {
				if c != "" && !contains(f.Collectors, c) {
					f.Collectors = append(f.Collectors, c)
					sort.Strings(f.Collectors)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if hists < 0 {
			continue // owd_stats only
		}
		from, args = src("owd_metrics", sp)
		hcols := ""
		for kind, name := range []string{"delay_hist", "pdv_hist", "ipdv_hist", "loss_period_hist"} {
			if hists&(1<<kind) != 0 {
				hcols += ", t." + name
			} else {
				hcols += ", ''"
			}
		}
		q = "SELECT " + cols + `, COALESCE(t.sample_n_max, 1), COALESCE(t.neg_delay, 0), COALESCE(t.compose_viol, 0), COALESCE(t.loss_periods, 0)` + hcols + from
		err = d.rows(ctx, q, args, func(r *sql.Rows) error {
			key := make([]sql.NullString, g.n)
			var n, neg, viol, lp int64
			var hs [nHist]sql.RawBytes
			dest := []any{}
			for i := range key {
				dest = append(dest, &key[i])
			}
			dest = append(dest, &n, &neg, &viol, &lp, &hs[0], &hs[1], &hs[2], &hs[3])
			if err := r.Scan(dest...); err != nil {
				return err
			}
			f := get(keyOf(key))
			f.hasMetrics = true
			f.SampleNMax = max(f.SampleNMax, n)
			f.NegDelay += neg
			f.ComposeViol += viol
			f.LossPeriods += lp
			for kind, h := range hs {
				if len(h) == 0 || f.histErr[kind] != nil {
					continue
				}
				// Merged now: RawBytes is only valid until the next row.
				m, err := hist.MergeSparse(f.hists[kind], h)
				if err != nil {
					f.histErr[kind] = err
					continue
				}
				f.hists[kind] = m
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
