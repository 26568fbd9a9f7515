package query

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tmon-project/tmon/hist"
	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/internal/testenv"
	"github.com/tmon-project/tmon/loader"
	"github.com/tmon-project/tmon/reports/internal/fixture"
)

var (
	fxOnce sync.Once
	fx     *fixture.Fixture
	fxErr  error
	fxDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fxDir != "" && os.Getenv("TMON_KEEP_FIXTURE") == "" {
		os.RemoveAll(fxDir)
	}
	os.Exit(code)
}

// theFixture runs the generated traffic through two collectors once for
// the package.
func theFixture(t *testing.T) *fixture.Fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("runs probes and collectors")
	}
	fxOnce.Do(func() {
		fxDir, fxErr = os.MkdirTemp("", "tmon-report-query")
		if fxErr == nil {
			fx, fxErr = fixture.Build(fxDir)
		}
	})
	if fxErr != nil {
		t.Fatal(fxErr)
	}
	return fx
}

// dbs loads the fixture's spools into a fresh SQLite file and into the
// MariaDB report test database, and opens each read-only (MariaDB through
// the read-only account).
func eachDB(t *testing.T, spools []loader.Spool, f func(t *testing.T, db *DB)) {
	fx := theFixture(t)
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tmon.db")
		if err := fx.Load("sqlite:"+path, spools...); err != nil {
			t.Fatal(err)
		}
		db, err := Open("sqlite:" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		f(t, db)
	})
	t.Run("mysql", func(t *testing.T) {
		load, ro, err := fixture.MySQLDSNs("_report")
		if err != nil {
			t.Fatal(err)
		}
		if err := fixture.ResetMySQL(load); err != nil {
			testenv.Skipf(t, "MariaDB not usable at %s (%v): run .ci/mariadb.sh", load, err)
		}
		if err := fx.Load("mysql:"+load, spools...); err != nil {
			t.Fatal(err)
		}
		db, err := Open("mysql:" + ro)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		f(t, db)
	})
}

// truth is what the generator says happened on A → B.
type truth struct {
	count, lost, dups int64
	delays            []int64 // sorted
	perMinute         map[int64]int64
	byTA              map[int64]int64
}

func fxTruth(fx *fixture.Fixture) truth {
	tr := truth{perMinute: map[int64]int64{}, byTA: map[int64]int64{}}
	for _, r := range fx.Truth {
		if r.Lost {
			tr.lost++
			continue
		}
		tr.count++
		if r.DupTB != 0 {
			tr.dups++
		}
		tr.delays = append(tr.delays, r.Delay)
		tr.perMinute[r.TA/60e9*60e9]++
		tr.byTA[r.TA] = r.Delay
	}
	slices.Sort(tr.delays)
	return tr
}

// exact is the nearest-rank quantile of sorted values.
func exact(sorted []int64, q float64) int64 {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(1, min(r, len(sorted)))-1]
}

func daySel(fx *fixture.Fixture, period string) Selection {
	s, err := Parse(map[string][]string{"period": {"custom"},
		"from": {fx.Start.UTC().Truncate(24 * time.Hour).Format(time.RFC3339)},
		"to":   {fx.Start.UTC().Truncate(24 * time.Hour).Add(map[string]time.Duration{"day": 24 * time.Hour, "week": 7 * 24 * time.Hour, "year": 365 * 24 * time.Hour}[period]).Format(time.RFC3339)},
	}, time.Now())
	if err != nil {
		panic(err)
	}
	return s
}

// checkFigures compares a pair's figures over the whole run with the truth.
func checkFigures(t *testing.T, what string, f *Figures, tr truth) {
	t.Helper()
	if f.Count != tr.count || f.Lost != tr.lost || f.Duplicate != tr.dups || f.Missed != 0 {
		t.Errorf("%s: count %d lost %d dup %d missed %d; truth count %d lost %d dup %d (each collector alone has every packet: twice the truth is a double count)",
			what, f.Count, f.Lost, f.Duplicate, f.Missed, tr.count, tr.lost, tr.dups)
	}
	if f.MinNs != tr.delays[0] || f.MaxNs != tr.delays[len(tr.delays)-1] {
		t.Errorf("%s: min %d max %d, truth %d %d", what, f.MinNs, f.MaxNs, tr.delays[0], tr.delays[len(tr.delays)-1])
	}
	qs := []float64{0.5, 0.9, 0.99, 1}
	got, ok := f.Quantiles(DelayHist, qs...)
	if !ok {
		t.Fatalf("%s: no delay histogram", what)
	}
	for i, q := range qs {
		x := exact(tr.delays, q)
		if d := got[i].V - x; d > got[i].Err || -d > got[i].Err || got[i].Err > x/100 {
			t.Errorf("%s: p%v = %d ± %d, exact %d", what, q*100, got[i].V, got[i].Err, x)
		}
	}
	r, lo, hi, ok := f.LossRatio()
	if want := float64(tr.lost) / float64(tr.lost+tr.count); !ok || math.Abs(r-want) > 1e-12 || lo != r || hi != r {
		t.Errorf("%s: loss ratio %v [%v, %v], truth %v (census: no interval)", what, r, lo, hi, want)
	}
}

// Overview, Total and Series against the truth, with both collectors loaded
// (every figure must be counted once), at minute and hour resolution.
func TestFiguresAgainstTruth(t *testing.T) {
	fx := theFixture(t)
	tr := fxTruth(fx)
	eachDB(t, nil, func(t *testing.T, db *DB) {
		ctx := context.Background()
		for _, period := range []string{"day", "week", "year"} {
			s := daySel(fx, period)
			rows, err := db.Overview(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].Class != fixture.Class || rows[0].HopFrom != fixture.HopFrom || rows[0].HopTo != fixture.HopTo {
				t.Fatalf("%s: overview rows %+v, want one (site, A, B)", period, rows)
			}
			checkFigures(t, period+" overview", rows[0].Figures, tr)
			if h := rows[0].Health(); h != "warn" {
				t.Errorf("%s: health %s, want warn (1 %% loss is below the bad mark, above 0)", period, h)
			}
			s.Class, s.HopFrom, s.HopTo = fixture.Class, fixture.HopFrom, fixture.HopTo
			steps, err := db.Series(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, st := range steps {
				sum += st.Count
				if s.Resolution() == Minute && st.Count != tr.perMinute[st.T.UnixNano()] {
					t.Errorf("%s: minute %s: %d delays, truth %d", period, st.T.Format(time.TimeOnly), st.Count, tr.perMinute[st.T.UnixNano()])
				}
			}
			if sum != tr.count {
				t.Errorf("%s (%s rows): the series sums to %d delays, truth %d", period, s.Resolution().Suffix, sum, tr.count)
			}
			if s.Resolution() == Minute && len(steps) != len(tr.perMinute) {
				t.Errorf("%s: %d steps, truth has %d minutes", period, len(steps), len(tr.perMinute))
			}
		}
		// One collector selected: its own rows, the same figures.
		s := daySel(fx, "day")
		s.Collector = "c2"
		f, err := db.Total(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		checkFigures(t, "c2 alone", f, tr)
		if len(f.Collectors) != 1 || f.Collectors[0] != "c2" {
			t.Errorf("collectors %v, want c2", f.Collectors)
		}
	})
}

// The configured slices and the per-packet rows against the truth.
func TestSlicesAndPacketsAgainstTruth(t *testing.T) {
	fx := theFixture(t)
	tr := fxTruth(fx)
	want := map[int]int64{}
	for _, d := range tr.delays {
		want[sort.Search(len(fixture.Slices), func(i int) bool { return fixture.Slices[i] > d })]++
	}
	eachDB(t, nil, func(t *testing.T, db *DB) {
		ctx := context.Background()
		s := daySel(fx, "day")
		s.Class, s.HopFrom, s.HopTo = fixture.Class, fixture.HopFrom, fixture.HopTo
		sl, err := db.Slices(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(sl) == 0 {
			t.Fatal("no slices")
		}
		got := map[int]int64{}
		for _, x := range sl {
			i := 0
			if !x.OpenLo {
				i = sort.Search(len(fixture.Slices), func(j int) bool { return fixture.Slices[j] > x.Lo })
			}
			got[i] += x.Count
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("slices %v, truth %v", got, want)
		}
		pk, coll, trunc, err := db.Packets(ctx, s, 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(pk)) != tr.count || trunc || coll != "c1" {
			t.Errorf("packets: %d from %s (truncated %v), truth %d from either collector (c1 first by name)", len(pk), coll, trunc, tr.count)
		}
		bad := 0
		for _, p := range pk {
			// No fragments in the fixture: no first-fragment delay.
			if d, ok := tr.byTA[p.TFrom.UnixNano()]; !ok || d != p.DelayNs || p.FirstDelayNs != nil {
				bad++
			}
		}
		if bad != 0 {
			t.Errorf("%d packets whose time at A or delay is not the truth's", bad)
		}
	})
}

// A gap in one collector: the pick takes the other's rows there, so the
// figures stay whole and counted once.
func TestCollectorGap(t *testing.T) {
	fx := theFixture(t)
	tr := fxTruth(fx)
	// c1 without its second minute's interval files.
	gapDir := filepath.Join(fx.Dir, "c1-gap")
	if err := os.CopyFS(gapDir, os.DirFS(fx.Spools[0].Dir)); err != nil {
		t.Fatal(err)
	}
	second := fx.Start.UTC().Truncate(time.Minute).Add(time.Minute)
	removed := 0
	for _, typ := range []string{"owd_stats", "owd_metrics", "owd_hist", "owd_packet", "owd_incomplete"} {
		files, _ := filepath.Glob(filepath.Join(gapDir, typ, typ+"-"+second.Format("20060102T1504")+"*.tsv"))
		for _, f := range files {
			os.Remove(f)
			removed++
		}
	}
	if removed == 0 {
		t.Fatal("nothing removed")
	}
	eachDB(t, []loader.Spool{{Collector: "c1", Dir: gapDir}, fx.Spools[1]}, func(t *testing.T, db *DB) {
		s := daySel(fx, "day")
		f, err := db.Total(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		checkFigures(t, "c1 with a gap + c2", f, tr)
		for _, period := range []string{"day", "year"} {
			c := daySel(fx, period)
			c.Class, c.HopFrom, c.HopTo = fixture.Class, fixture.HopFrom, fixture.HopTo
			samePerClass(t, db, c)
			// One collector among the two: its per-collector class rows.
			for _, coll := range []string{"c1", "c2"} {
				c.Collector = coll
				if got := db.classTables(context.Background(), c, byPair); got != classOfColl {
					t.Fatalf("collector %s: reads %q, want the per-collector class rows", coll, got)
				}
				samePerClass(t, db, c)
			}
		}
		// Flow by flow (the pick among one flow's rows): c2 fills c1's
		// gap, each flow once, so the flows add up to the truth.
		var flowSum, flowLost int64
		keys := flowKeys(t, db)
		for _, key := range keys {
			c := daySel(fx, "day")
			c.Class, c.Flow, c.HopFrom, c.HopTo = fixture.Class, key, fixture.HopFrom, fixture.HopTo
			f, err := db.Total(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			flowSum += f.Count
			flowLost += f.Lost
		}
		if flowSum != tr.count || flowLost != tr.lost || len(keys) < 2 {
			t.Errorf("%d flows: %d delays, %d lost; truth %d, %d", len(keys), flowSum, flowLost, tr.count, tr.lost)
		}
		// c2 alone is complete: its class figures are the truth; c1's lack
		// a minute.
		c := daySel(fx, "day")
		c.Class, c.HopFrom, c.HopTo, c.Collector = fixture.Class, fixture.HopFrom, fixture.HopTo, "c2"
		f2, err := db.Total(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		checkFigures(t, "class of collector c2", f2, tr)
		if fmt.Sprint(f2.Collectors) != "[c2]" {
			t.Errorf("collector c2: collectors %v", f2.Collectors)
		}
		c.Collector = "c1"
		f1, err := db.Total(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if f1.Count >= tr.count || f1.Count == 0 || fmt.Sprint(f1.Collectors) != "[c1]" {
			t.Errorf("class of collector c1 (a minute missing): count %d (truth %d), collectors %v", f1.Count, tr.count, f1.Collectors)
		}
		// The whole day comes from the day rows: c2's is the complete one.
		if fmt.Sprint(f.Collectors) != "[c2]" {
			t.Errorf("day: collectors %v, want [c2] (c1's day lacks a minute)", f.Collectors)
		}
		steps, err := db.Series(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range steps {
			want := "[c1]"
			if st.T.Equal(second) {
				want = "[c2]"
			}
			if fmt.Sprint(st.Collectors) != want {
				t.Errorf("minute %s: collectors %v, want %s", st.T.Format(time.TimeOnly), st.Collectors, want)
			}
		}
	})
}

var _ = gen.TruthRow{}

// samePerClass checks that the whole-class queries of s give from the
// loader's per-class rows exactly the figures merged from the per-flow rows
// (the pick views, or with a collector selected its own rows): counts,
// extremes, clock columns, collectors and every histogram bucket, for the
// overview, total, series, slices and path.
func samePerClass(t *testing.T, db *DB, s Selection) {
	t.Helper()
	ctx := context.Background()
	if db.classTables(ctx, s, byPair) == perFlow {
		t.Fatal("the per-class rows are not used: nothing compared")
	}
	text := func(f *Figures) string {
		g := *f
		g.Rows = 0 // rows merged: one a class, one a flow
		g.hists = [nHist][]hist.Bucket{}
		out := fmt.Sprintf("%+v", g)
		for k := range nHist {
			out += fmt.Sprint(f.Buckets(k))
		}
		return out
	}
	both := func(what string, run func() (string, error)) {
		t.Helper()
		db.flowRows = false
		a, err := run()
		if err != nil {
			t.Fatal(err)
		}
		db.flowRows = true
		b, err := run()
		db.flowRows = false
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("%s: per-class rows\n%s\nper-flow rows\n%s", what, a, b)
		}
	}
	both("total", func() (string, error) {
		f, err := db.Total(ctx, s)
		if err != nil {
			return "", err
		}
		return text(f), nil
	})
	both("series", func() (string, error) {
		steps, err := db.Series(ctx, s)
		var b strings.Builder
		for _, st := range steps {
			fmt.Fprintf(&b, "%s %s\n", st.T.Format(time.RFC3339), text(st.Figures))
		}
		return b.String(), err
	})
	both("overview", func() (string, error) {
		o := s
		o.Class, o.HopFrom, o.HopTo = "", "", ""
		rows, err := db.Overview(ctx, o)
		var b strings.Builder
		for _, r := range rows {
			fmt.Fprintf(&b, "%s %s>%s %s\n", r.Class, r.HopFrom, r.HopTo, text(r.Figures))
		}
		return b.String(), err
	})
	both("slices", func() (string, error) {
		sl, err := db.Slices(ctx, s)
		return fmt.Sprint(sl), err
	})
	both("path", func() (string, error) {
		p, err := db.Path(ctx, s)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, sg := range append(p.Segments, p.Other...) {
			fmt.Fprintf(&b, "%s>%s %s\n", sg.HopFrom, sg.HopTo, text(sg.Figures))
		}
		return b.String(), nil
	})
}
