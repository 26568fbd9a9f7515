package loader

import (
	"database/sql"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/hist"
)

// The per-class tables hold, per class, interval and hop pair, the merge of
// every flow's row, each figure once with redundant collectors. The oracle
// is computed here from a single collector's per-flow rows, with SQL sums,
// minima and maxima, math/big for the sums of squares and package hist for
// the histograms: none of the loader's merge code.
//
// Two collectors received the same flows: c1 lost the files of one minute,
// c2 is complete. c1 is loaded first, alone, in small batches (its rows add
// to the class rows batch by batch); then c2, whose flows are also c1's
// (the class rows follow the pick). Then both again, into an empty
// database, in the same runs. Every figure of the class rows
// must then equal those of the complete spool loaded alone, not twice them.
// Last, the class tables are dropped and the loader builds them again from
// the per-flow rows (a database of an older loader).
func TestClassAggregatesExact(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		root := t.TempDir()
		day := time.Date(2026, 11, 22, 23, 52, 0, 0, time.UTC) // crosses a UTC midnight
		full := genSpool(t, filepath.Join(root, "full"), genConfig{
			Collector: "c1", Start: day, Interval: 10 * time.Second, N: 90, Flows: 5, MaxPkts: 6, Seed: 3, Current: true,
		})
		alone := sqliteDB(t)
		copyDir(t, full.dir, filepath.Join(root, "alone"))
		load(t, alone, Config{Spools: []Spool{{"c1", filepath.Join(root, "alone")}}})
		ho := alone.open(t)
		want := classOracle(t, ho)
		if got := classRows(t, ho); !equalClass(t, "one collector", got, want) {
			return
		}
		// The per-collector class rows: each collector's flows merged,
		// against the oracle from that collector's per-flow rows.
		eachColl := func(what string, h *sql.DB, colls ...string) bool {
			ok := true
			for _, c := range colls {
				ok = equalClass(t, what+": collector "+c, classRows(t, h, c), classOracle(t, h, c)) && ok
			}
			return ok
		}
		if !eachColl("one collector", ho, "c1") {
			return
		}

		c1, c2 := filepath.Join(root, "c1"), filepath.Join(root, "c2")
		copyDir(t, full.dir, c1)
		copyDir(t, full.dir, c2)
		// The gap is in the hour and the day that start at 00:00, where
		// the minute, the hour and the day rows share their start_ns and
		// each level picks on its own: c1 for the minute, c2 for the hour
		// and the day.
		gap := day.Add(10 * time.Minute)
		removed := 0
		for _, typ := range []string{"owd_stats", "owd_metrics", "owd_hist"} {
			files, _ := filepath.Glob(filepath.Join(c1, typ, typ+"-"+gap.Format("20060102T1504")+"*.tsv"))
			for _, f := range files {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
				removed++
			}
		}
		if removed == 0 {
			t.Fatalf("no file of minute %s to remove", gap)
		}
		h := db.open(t)
		load(t, db, Config{Spools: []Spool{{"c1", c1}}, BatchFiles: 7})
		// c1 alone: its own per-flow rows are the oracle.
		if !equalClass(t, "c1 with a gap, in batches", classRows(t, h), classOracle(t, h)) || !eachColl("c1 with a gap, in batches", h, "c1") {
			return
		}
		load(t, db, Config{Spools: []Spool{{"c1", c1}, {"c2", c2}}, BatchFiles: 7})
		if doubled := query(t, h, "SELECT SUM(count) FROM owd_stats_1d"); doubled[0] == query(t, ho, "SELECT SUM(count) FROM owd_stats_1d")[0] {
			t.Fatalf("the fixture does not double the per-flow sums (%s)", doubled[0])
		}
		if !equalClass(t, "c1 and c2", classRows(t, h), want) || !eachColl("c1 and c2", h, "c1", "c2") {
			return
		}
		// c2 is the complete spool: its own class rows are those of the
		// spool loaded alone; c1's (with the gap) are not.
		if !equalClass(t, "c1 and c2: collector c2 against the spool alone", classRows(t, h, "c2"), want) {
			return
		}
		if g := classRows(t, h, "c1"); slices.Equal(g["owd_stats_1m"], want["owd_stats_1m"]) {
			t.Errorf("c1's class rows (with a gap) equal the complete spool's: the gap did not show")
		}
		// Which collectors: c2 alone in the gap minute, c1 (equal counts,
		// first by name) elsewhere.
		got := query(t, h, "SELECT DISTINCT collectors, start_ns = ? FROM owd_stats_class_1m", gap.UnixNano())
		if strings.Join(got, ",") != "c1|0,c2|1" {
			t.Errorf("owd_stats_class_1m collectors (collectors|is gap minute): %v, want c1 outside the gap, c2 in it", got)
		}

		// Both collectors in one run and one batch (each level picks on its
		// own rows: the minute 00:00 is c1's, its hour and day c2's).
		db.reset(t)
		h = db.open(t)
		c1b, c2b := filepath.Join(root, "c1b"), filepath.Join(root, "c2b")
		copyDir(t, full.dir, c1b)
		copyDir(t, full.dir, c2b)
		for _, typ := range []string{"owd_stats", "owd_metrics", "owd_hist"} {
			files, _ := filepath.Glob(filepath.Join(c1b, typ, typ+"-"+gap.Format("20060102T1504")+"*.tsv"))
			for _, f := range files {
				os.Remove(f)
			}
		}
		load(t, db, Config{Spools: []Spool{{"c1", c1b}, {"c2", c2b}}, BatchFiles: 5000})
		if !equalClass(t, "c1 and c2 together", classRows(t, h), want) || !eachColl("c1 and c2 together", h, "c1", "c2") {
			return
		}
		got = query(t, h, "SELECT DISTINCT collectors, start_ns = ? FROM owd_stats_class_1m", gap.UnixNano())
		if strings.Join(got, ",") != "c1|0,c2|1" {
			t.Errorf("together: owd_stats_class_1m collectors (collectors|is gap minute): %v, want c1 outside the gap, c2 in it", got)
		}

		for _, ct := range append(classSchema(), collClassSchema()...) {
			if _, err := h.Exec("DROP TABLE " + ct.t.Name); err != nil {
				t.Fatal(err)
			}
		}
		_, tl := load(t, db, Config{Spools: []Spool{{"c1", c1b}, {"c2", c2b}}})
		for _, msg := range []string{"per-class rows built", "per-collector class rows built"} {
			if !strings.Contains(tl.String(), msg) {
				t.Errorf("no log of the %s:\n%s", msg, tl)
			}
		}
		equalClass(t, "rebuilt from the per-flow rows", classRows(t, h), want)
		eachColl("rebuilt from the per-flow rows", h, "c1", "c2")
		equalClass(t, "rebuilt: collector c2 against the spool alone", classRows(t, h, "c2"), want)
	})
}

// classCmp is one table's rows as text, in key order.
type classCmp map[string][]string

// Columns compared: keys, then the merged figures.
const (
	classStatsCols = "start_ns, %s, hop_from, hop_to, samples, count, sum_ns, min_ns, max_ns, lost_sum, lost_min, lost_max, missed_sum, " +
		"duplicate_sum, reordered_sum, clashes_sum, dropped_sum, clock_err_ns, clock_err_unknown, clock_not_ok"
	classMetricsCols = "start_ns, %s, hop_from, hop_to, samples, sample_n_min, sample_n_max, count, lost, count_est, lost_est, " +
		"pdv_max_ns, ipdv_count, ipdv_min_ns, ipdv_max_ns, loss_periods, loss_period_max, loss_distance_count, loss_distance_min, " +
		"reordered, reorder_extent_max, reorder_extent_sum, duplicate, neg_delay, compose_viol"
	classHists = "delay_hist, pdv_hist, ipdv_hist, loss_period_hist, loss_distance_hist"
)

// classOracle computes the class rows from the per-flow rows of a database
// loaded from one collector.
//
// With coll, the rows of that collector's flows only: the oracle of the
// per-collector class rows (owd_*_class_collector_*), from a database with
// several collectors.
func classOracle(t *testing.T, h *sql.DB, coll ...string) classCmp {
	t.Helper()
	out := classCmp{}
	join := " t JOIN flows f ON f.id = t.flow_id"
	if len(coll) > 0 {
		join += " AND f.collector = '" + coll[0] + "'"
	}
	for _, l := range levels {
		from := " FROM %s" + join + " GROUP BY t.start_ns, f.class, t.hop_from, t.hop_to%s"
		sums := strings.NewReplacer("samples", "SUM(samples)", "count", "SUM(count)", "sum_ns", "SUM(sum_ns)", "min_ns", "MIN(min_ns)",
			"max_ns", "MAX(max_ns)", "lost_sum", "SUM(lost_sum)", "lost_min", "MIN(lost_min)", "lost_max", "MAX(lost_max)",
			"missed_sum", "SUM(missed_sum)", "duplicate_sum", "SUM(duplicate_sum)", "reordered_sum", "SUM(reordered_sum)",
			"clashes_sum", "SUM(clashes_sum)", "dropped_sum", "SUM(dropped_sum)", "clock_err_ns", "MAX(clock_err_ns)",
			"clock_err_unknown", "SUM(clock_err_unknown)", "clock_not_ok", "SUM(clock_not_ok)")
		cols := sums.Replace(fmt.Sprintf(classStatsCols, "f.class"))
		cols = strings.ReplaceAll(cols, "start_ns, f.class, hop_from, hop_to", "t.start_ns, f.class, t.hop_from, t.hop_to")
		out["owd_stats_"+l.Suffix] = query(t, h, "SELECT "+cols+fmt.Sprintf(from, "owd_stats_"+l.Suffix, ""))
		out["owd_hist_"+l.Suffix] = query(t, h, "SELECT t.start_ns, f.class, t.hop_from, t.hop_to, t.slice, t.lo_ns, t.hi_ns, SUM(t.count)"+
			fmt.Sprintf(from, "owd_hist_"+l.Suffix, ", t.slice, t.lo_ns, t.hi_ns"))
		m := strings.NewReplacer("samples", "SUM(samples)", "sample_n_min", "MIN(sample_n_min)", "sample_n_max", "MAX(sample_n_max)",
			"count_est", "SUM(count_est)", "lost_est", "SUM(lost_est)", "count", "SUM(count)", "lost", "SUM(lost)",
			"pdv_max_ns", "MAX(pdv_max_ns)", "ipdv_count", "SUM(ipdv_count)", "ipdv_min_ns", "MIN(ipdv_min_ns)", "ipdv_max_ns", "MAX(ipdv_max_ns)",
			"loss_periods", "SUM(loss_periods)", "loss_period_max", "MAX(loss_period_max)", "loss_distance_count", "SUM(loss_distance_count)",
			"loss_distance_min", "MIN(loss_distance_min)", "reordered", "SUM(reordered)", "reorder_extent_max", "MAX(reorder_extent_max)",
			"reorder_extent_sum", "SUM(reorder_extent_sum)", "duplicate", "SUM(duplicate)", "neg_delay", "SUM(neg_delay)", "compose_viol", "SUM(compose_viol)")
		cols = m.Replace(fmt.Sprintf(classMetricsCols, "f.class"))
		cols = strings.ReplaceAll(cols, "start_ns, f.class, hop_from, hop_to", "t.start_ns, f.class, t.hop_from, t.hop_to")
		out["owd_metrics_"+l.Suffix] = query(t, h, "SELECT "+cols+fmt.Sprintf(from, "owd_metrics_"+l.Suffix, ""))

		// Exact sums of squares and merged histograms, in Go.
		sq := map[string]*big.Int{}
		var keys []string
		eachRow(t, h, "SELECT t.start_ns, f.class, t.hop_from, t.hop_to, t.sumsq_ns2 FROM owd_stats_"+l.Suffix+join, func(v []sql.NullString) {
			k := v[0].String + "|" + v[1].String + "|" + v[2].String + "|" + v[3].String
			if sq[k] == nil {
				sq[k] = new(big.Int)
				keys = append(keys, k)
			}
			if v[4].Valid {
				x, _ := new(big.Int).SetString(v[4].String, 10)
				sq[k].Add(sq[k], x)
			}
		})
		for _, k := range keys {
			out["sumsq_"+l.Suffix] = append(out["sumsq_"+l.Suffix], k+"|"+sq[k].String())
		}
		slices.Sort(out["sumsq_"+l.Suffix])
		hs := map[string][][]hist.Bucket{}
		keys = nil
		eachRow(t, h, "SELECT t.start_ns, f.class, t.hop_from, t.hop_to, "+classHists+" FROM owd_metrics_"+l.Suffix+join, func(v []sql.NullString) {
			k := v[0].String + "|" + v[1].String + "|" + v[2].String + "|" + v[3].String
			if hs[k] == nil {
				hs[k] = make([][]hist.Bucket, 5)
				keys = append(keys, k)
			}
			for i := range 5 {
				m, err := hist.MergeSparse(hs[k][i], []byte(v[4+i].String))
				if err != nil {
					t.Fatal(err)
				}
				hs[k][i] = m
			}
		})
		for _, k := range keys {
			out["hists_"+l.Suffix] = append(out["hists_"+l.Suffix], k+"|"+fmt.Sprint(hs[k]))
		}
		slices.Sort(out["hists_"+l.Suffix])
	}
	return out
}

// classRows reads the same figures from the per-class tables; with coll,
// from that collector's rows of the per-collector class tables.
func classRows(t *testing.T, h *sql.DB, coll ...string) classCmp {
	t.Helper()
	out := classCmp{}
	tab, cond := "_class_", " WHERE samples > 0"
	if len(coll) > 0 {
		tab, cond = "_class_collector_", " WHERE samples > 0 AND collector = '"+coll[0]+"'"
	}
	for _, l := range levels {
		// Rows written empty (no samples, a slice of no count) count nothing.
		out["owd_stats_"+l.Suffix] = query(t, h, "SELECT "+fmt.Sprintf(classStatsCols, "class")+" FROM owd_stats"+tab+l.Suffix+cond+" ORDER BY 1, 2, 3, 4")
		out["owd_hist_"+l.Suffix] = query(t, h, "SELECT start_ns, class, hop_from, hop_to, slice, lo_ns, hi_ns, count FROM owd_hist"+tab+l.Suffix+
			strings.Replace(cond, "samples > 0", "1 = 1", 1))
		out["owd_metrics_"+l.Suffix] = query(t, h, "SELECT "+fmt.Sprintf(classMetricsCols, "class")+" FROM owd_metrics"+tab+l.Suffix+cond+" ORDER BY 1, 2, 3, 4")
		out["sumsq_"+l.Suffix] = query(t, h, "SELECT start_ns, class, hop_from, hop_to, sumsq_ns2 FROM owd_stats"+tab+l.Suffix+cond)
		eachRow(t, h, "SELECT start_ns, class, hop_from, hop_to, "+classHists+" FROM owd_metrics"+tab+l.Suffix+cond, func(v []sql.NullString) {
			bs := make([][]hist.Bucket, 5)
			for i := range 5 {
				m, err := hist.MergeSparse(nil, []byte(v[4+i].String))
				if err != nil {
					t.Fatal(err)
				}
				bs[i] = m
			}
			out["hists_"+l.Suffix] = append(out["hists_"+l.Suffix], v[0].String+"|"+v[1].String+"|"+v[2].String+"|"+v[3].String+"|"+fmt.Sprint(bs))
		})
		slices.Sort(out["hists_"+l.Suffix])
	}
	return out
}

// equalClass reports every table whose rows differ (the first differing
// row of each).
func equalClass(t *testing.T, what string, got, want classCmp) bool {
	t.Helper()
	ok := true
	for name, w := range want {
		if len(w) == 0 {
			t.Errorf("%s: %s: the oracle has no rows", what, name)
			ok = false
		}
		g := got[name]
		if slices.Equal(g, w) {
			continue
		}
		ok = false
		for i := range max(len(g), len(w)) {
			var a, b string
			if i < len(g) {
				a = g[i]
			}
			if i < len(w) {
				b = w[i]
			}
			if a != b {
				t.Errorf("%s: %s: %d rows, want %d; row %d:\n got %s\nwant %s", what, name, len(g), len(w), i, a, b)
				break
			}
		}
	}
	return ok
}

// eachRow calls f with every row of q.
func eachRow(t *testing.T, h *sql.DB, q string, f func([]sql.NullString)) {
	t.Helper()
	rows, err := h.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		v := make([]sql.NullString, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			t.Fatal(err)
		}
		f(v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
