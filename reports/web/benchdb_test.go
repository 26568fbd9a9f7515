package web_test

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/hist"
	"github.com/tmon-project/tmon/loader"
)

// The page benchmark's database (BenchmarkPages): 100 flows of one class
// (hop pair A → B) measured by collector c1 with a year of 1-day and
// 1-hour rows and TMON_BENCH_MINUTE_DAYS days of 1-minute rows (default 7,
// a common 1-minute retention; `make bench-year` sets 365: a year of
// 1-minute rows, 52.6 M rows in each 1-minute per-flow table, 210 M in
// owd_hist_1m), plus a redundant collector c2 that measured the same 100
// flows for the last 7 days only (at every level), so that the pages pick
// one collector's figures where both have them.
//
// It is built without the loader's per-row work: a template database made
// by the loader holds one step of every table (the per-flow rows written
// here, the loader's per-class rows computed from them by a loader run),
// and each table of the benchmark's database is that step copied to every
// step of its range in SQL (INSERT … SELECT over a recursive list of
// times), a day of steps per transaction. It is kept between runs in
// $TMON_BENCH_CACHE (default: the user's cache directory, tmon-bench): each
// table records the step it was filled up to and the schema (CREATE
// statement) it was filled with, so an interrupted build resumes, and a
// table whose schema changed (or a new table) is filled again alone.
const (
	benchFlows  = 100
	benchEnd    = "2026-12-01T00:00:00Z"
	benchC2Days = 7
	// benchVersion changes when the generated rows change (not the schema:
	// that is compared table by table).
	benchVersion = "v3"
)

func benchMinuteDays() int {
	if n, err := strconv.Atoi(os.Getenv("TMON_BENCH_MINUTE_DAYS")); err == nil && n > 0 {
		return n
	}
	return 7
}

func benchCacheDir(b *testing.B) string {
	dir := os.Getenv("TMON_BENCH_CACHE")
	if dir == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			c = os.TempDir()
		}
		dir = filepath.Join(c, "tmon-bench")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	return dir
}

// benchDB returns the path of the benchmark's database, built or completed
// first if needed.
func benchDB(b *testing.B) string {
	b.Helper()
	days := benchMinuteDays()
	path := filepath.Join(benchCacheDir(b), fmt.Sprintf("tmon-report-bench-%s-%df-%dd.db", benchVersion, benchFlows, days))
	start := time.Now()
	tmpl := benchTemplate(b)
	n, err := fillBenchDB(path, tmpl, days, b.Logf)
	if err != nil {
		b.Fatal(err)
	}
	if n > 0 {
		b.Logf("filled %d tables of %s in %v", n, path, time.Since(start).Round(time.Second))
	}
	return path
}

// benchTemplate makes the template database: the loader's schema, the
// flows, one step of per-flow rows at every level (at the year's start),
// the loader's per-class rows of that step, one event.
func benchTemplate(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	path := filepath.Join(dir, "template.db")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := loader.Config{DB: "sqlite:" + path, Spools: []loader.Spool{{Collector: "c1", Dir: filepath.Join(dir, "c1")}}, Logger: log}
	run := func() {
		l, err := loader.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		if _, err := l.RunOnce(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "c1"), 0o755)
	run() // the schema and views
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	t0 := benchYearStart()
	for f := 1; f <= 2*benchFlows; f++ {
		coll, addr := "c1", f
		if f > benchFlows {
			coll, addr = "c2", f-benchFlows
		}
		if _, err := db.Exec("INSERT INTO flows (id, collector, class, flow_key, first_ns) VALUES (?, ?, 'bench', ?, ?)",
			f, coll, fmt.Sprintf("ip.src=10.1.0.%d", addr), t0.UnixNano()); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// One histogram of 20 ms ± 2 ms delays per packet count: realistic
	// bucket counts (~30 buckets) for the parse cost.
	histOf := func(n int) string {
		var h hist.Hist
		for range min(n, 2000) {
			h.Add(18e6 + rng.Int64N(4e6))
		}
		return string(h.AppendSparse(nil))
	}
	for _, step := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		perRow := int(step / time.Minute * 6000) // 100 packets a second
		if err := fillLevel(db, levelSuffix(step), step, t0, t0.Add(step), perRow, histOf(perRow)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.Exec("INSERT INTO events (time_ns, file_id, line, collector, source, kind, detail) VALUES (?, 1, 1, 'c1', 'probe:pa', 'clock.sync', 'clock synchronised: offset 120µs, root distance 2ms (ntp, stratum 2)')",
		benchEndTime().Add(-time.Hour).UnixNano()); err != nil {
		b.Fatal(err)
	}
	db.Close()
	run() // the per-class rows, from the per-flow rows
	return path
}

func benchEndTime() time.Time {
	end, _ := time.Parse(time.RFC3339, benchEnd)
	return end
}

func benchYearStart() time.Time { return benchEndTime().Add(-365 * 24 * time.Hour) }

func levelSuffix(step time.Duration) string {
	return map[time.Duration]string{time.Minute: "1m", time.Hour: "1h", 24 * time.Hour: "1d"}[step]
}

// fillBenchDB creates at path what the template has and path lacks, and
// fills every table whose rows are not all there; it returns how many
// tables it filled.
func fillBenchDB(path, tmpl string, minuteDays int, logf func(string, ...any)) (int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=cache_size(-262144)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "ATTACH DATABASE ? AS tm", "file:"+tmpl+"?mode=ro"); err != nil {
		return 0, fmt.Errorf("attach template: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS main.bench_fill (name TEXT PRIMARY KEY, schema TEXT NOT NULL, done_ns INTEGER NOT NULL)"); err != nil {
		return 0, err
	}
	type object struct{ typ, name, table, sql string }
	var objs []object
	err = queryRows(ctx, conn, "SELECT type, name, tbl_name, sql FROM tm.sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid", nil, func(r *sql.Rows) error {
		var o object
		if err := r.Scan(&o.typ, &o.name, &o.table, &o.sql); err != nil {
			return err
		}
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		return 0, err
	}
	current := func(name string) (string, error) {
		var s string
		err := conn.QueryRowContext(ctx, "SELECT sql FROM main.sqlite_master WHERE name = ?", name).Scan(&s)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		return s, err
	}
	// Tables first: a changed one is dropped (its indexes with it) and
	// filled again; views are recreated when their text changed.
	for _, o := range objs {
		cur, err := current(o.name)
		if err != nil {
			return 0, err
		}
		if cur == o.sql {
			continue
		}
		if cur != "" {
			if _, err := conn.ExecContext(ctx, fmt.Sprintf("DROP %s main.%q", strings.ToUpper(o.typ), o.name)); err != nil {
				return 0, fmt.Errorf("drop %s: %w", o.name, err)
			}
		}
		if _, err := conn.ExecContext(ctx, o.sql); err != nil {
			return 0, fmt.Errorf("create %s: %w", o.name, err)
		}
		if o.typ == "table" {
			if _, err := conn.ExecContext(ctx, "DELETE FROM main.bench_fill WHERE name = ?", o.name); err != nil {
				return 0, err
			}
		}
	}
	if os.Getenv("TMON_BENCH_FILL") == "0" {
		// Measure the database as it is (a build still under way): say
		// what is not complete.
		return 0, queryRows(ctx, conn, "SELECT name, done_ns FROM main.bench_fill WHERE done_ns < ?", []any{int64(1<<63 - 1)}, func(r *sql.Rows) error {
			var name string
			var done int64
			if err := r.Scan(&name, &done); err != nil {
				return err
			}
			logf("TMON_BENCH_FILL=0: %s holds its rows up to %s only", name, time.Unix(0, done).UTC().Format(time.RFC3339))
			return nil
		})
	}
	end := benchEndTime()
	filled := 0
	// owd_hist_1m last: with 4 slices it has 4 times the rows of the other
	// 1-minute tables (210 M for a year).
	last := func(o object) int {
		if o.name == "owd_hist_1m" {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(objs, func(a, b object) int { return cmp.Compare(last(a), last(b)) })
	// First every table but the last two days of the 1-minute ones, then
	// the rest of those: a build cut short serves every page already.
	for _, recentOnly := range []bool{true, false} {
		for _, o := range objs {
			if o.typ != "table" {
				continue
			}
			n, err := fillBenchTable(ctx, conn, o.name, o.sql, end, minuteDays, recentOnly, logf)
			if err != nil {
				return filled, fmt.Errorf("fill %s: %w", o.name, err)
			}
			filled += n
		}
	}
	return filled, nil
}

// fillBenchTable copies the template's rows of one table to every step of
// its range, a day of steps per transaction, recording its progress; with
// recentOnly, only the last two days of a 1-minute table.
func fillBenchTable(ctx context.Context, conn *sql.Conn, name, schema string, end time.Time, minuteDays int, recentOnly bool, logf func(string, ...any)) (int, error) {
	var done int64
	var had string
	err := conn.QueryRowContext(ctx, "SELECT schema, done_ns FROM main.bench_fill WHERE name = ?", name).Scan(&had, &done)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	var cols []string
	if err := queryRows(ctx, conn, "SELECT name FROM pragma_table_info(?, 'tm')", []any{name}, func(r *sql.Rows) error {
		var c string
		cols = append(cols, c)
		return r.Scan(&cols[len(cols)-1])
	}); err != nil {
		return 0, err
	}
	var step time.Duration
	for _, s := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour} {
		if strings.HasSuffix(name, "_"+levelSuffix(s)) {
			step = s
		}
	}
	timeCol := -1
	for i, c := range cols {
		if c == "start_ns" || c == "time_ns" {
			timeCol = i
		}
	}
	const complete = int64(1<<63 - 1)
	if done == complete {
		return 0, nil
	}
	copyAll := func() error {
		_, err := conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO main.%q SELECT * FROM tm.%q", name, name))
		return err
	}
	mark := func(q execer, t int64) error {
		_, err := q.ExecContext(ctx, "INSERT INTO main.bench_fill (name, schema, done_ns) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET schema = excluded.schema, done_ns = excluded.done_ns",
			name, schema, t)
		return err
	}
	if step == 0 || timeCol < 0 {
		// Not a per-step table: copied as is (flows, events, bookkeeping).
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("DELETE FROM main.%q", name)); err != nil {
			tx.Rollback()
			return 0, err
		}
		if err := copyAll(); err != nil {
			tx.Rollback()
			return 0, err
		}
		if err := mark(tx, complete); err != nil {
			tx.Rollback()
			return 0, err
		}
		return 1, tx.Commit()
	}
	from := benchYearStart()
	if step == time.Minute {
		from = end.Add(-time.Duration(minuteDays) * 24 * time.Hour)
	}
	c2From := end.Add(-benchC2Days * 24 * time.Hour).UnixNano()
	// Which template rows a step gets: c2's (flows > benchFlows, or
	// collector c2) only in its last days.
	filter := "1"
	for _, c := range cols {
		switch c {
		case "flow_id":
			filter = fmt.Sprintf("(s.flow_id <= %d OR t.t >= %d)", benchFlows, c2From)
		case "collector":
			filter = fmt.Sprintf("(s.collector <> 'c2' OR t.t >= %d)", c2From)
		}
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = fmt.Sprintf("s.%q", c)
	}
	sel[timeCol] = "t.t"
	var t0 sql.NullInt64
	if err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT MIN(%q) FROM tm.%q", cols[timeCol], name)).Scan(&t0); err != nil {
		return 0, err
	}
	if !t0.Valid {
		// A table the benchmark has no rows for (counters, round trips).
		return 0, mark(conn, complete)
	}
	q := fmt.Sprintf(`WITH RECURSIVE t(t) AS (SELECT ? UNION ALL SELECT t + %d FROM t WHERE t + %d < ?)
INSERT INTO main.%q SELECT %s FROM t CROSS JOIN tm.%q s WHERE s.%q = %d AND %s`, step.Nanoseconds(), step.Nanoseconds(),
		name, strings.Join(sel, ", "), name, cols[timeCol], t0.Int64, filter)
	if had != schema || done < from.UnixNano() {
		done = from.UnixNano()
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("DELETE FROM main.%q", name)); err != nil {
			return 0, err
		}
		if _, err := conn.ExecContext(ctx, "DELETE FROM main.bench_fill WHERE name = ?", name+"#recent"); err != nil {
			return 0, err
		}
		if err := mark(conn, done); err != nil {
			return 0, err
		}
	} else if done > from.UnixNano() {
		logf("%s: resuming at %s", name, time.Unix(0, done).UTC().Format(time.RFC3339))
	}
	chunk := max(24*time.Hour, step).Nanoseconds()
	start := time.Now()
	// fill copies [lo, hi), recording progress under key; reaching hi
	// records complete.
	fill := func(key string, lo, hi int64) error {
		for t := lo; t < hi; t += chunk {
			next := min(t+chunk, hi)
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, q, t, next); err != nil {
				tx.Rollback()
				return err
			}
			mk := next
			if next == hi {
				mk = complete
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO main.bench_fill (name, schema, done_ns) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET schema = excluded.schema, done_ns = excluded.done_ns",
				key, schema, mk); err != nil {
				tx.Rollback()
				return err
			}
			if err := tx.Commit(); err != nil {
				return err
			}
			if d := time.Unix(0, next).UTC(); d.Day() == 1 && d.Hour() == 0 && step == time.Minute {
				logf("%s: filled to %s (%v)", name, d.Format("2006-01-02"), time.Since(start).Round(time.Second))
			}
		}
		return nil
	}
	stop := end.UnixNano()
	if step == time.Minute && minuteDays > 2 {
		// The last two days first (the days the pages read), under a key
		// of their own, so that a build cut short still serves them.
		stop = end.Add(-48 * time.Hour).UnixNano()
		var rd int64
		err := conn.QueryRowContext(ctx, "SELECT done_ns FROM main.bench_fill WHERE name = ? AND schema = ?", name+"#recent", schema).Scan(&rd)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		if rd != complete {
			if _, err := conn.ExecContext(ctx, fmt.Sprintf("DELETE FROM main.%q WHERE %q >= ?", name, cols[timeCol]), max(rd, stop)); err != nil {
				return 0, err
			}
			if err := fill(name+"#recent", max(rd, stop), end.UnixNano()); err != nil {
				return 0, err
			}
		}
	}
	if recentOnly && stop < end.UnixNano() {
		return 1, nil
	}
	if err := fill(name, done, stop); err != nil {
		return 0, err
	}
	return 1, mark(conn, complete)
}

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func queryRows(ctx context.Context, conn *sql.Conn, q string, args []any, each func(*sql.Rows) error) error {
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// fillLevel inserts one row per flow and step into owd_stats_, owd_metrics_
// and owd_hist_ (4 slices) of the level; columns not named get 0 (or NULL
// when nullable).
func fillLevel(db *sql.DB, suffix string, step time.Duration, from, end time.Time, perRow int, h string) error {
	values := func(table string) (cols []string, row func(t int64, f int) []any, err error) {
		rows, err := db.Query("SELECT name, type, \"notnull\" FROM pragma_table_info(?)", table)
		if err != nil {
			return nil, nil, err
		}
		type col struct {
			name, typ string
			notnull   bool
		}
		var cs []col
		for rows.Next() {
			var c col
			if err := rows.Scan(&c.name, &c.typ, &c.notnull); err != nil {
				return nil, nil, err
			}
			cs = append(cs, c)
			cols = append(cols, `"`+c.name+`"`)
		}
		rows.Close()
		lost := int64(perRow / 100)
		return cols, func(t int64, f int) []any {
			out := make([]any, len(cs))
			for i, c := range cs {
				switch {
				case c.name == "start_ns":
					out[i] = t
				case c.name == "flow_id":
					out[i] = f
				case c.name == "hop_from":
					out[i] = "A"
				case c.name == "hop_to":
					out[i] = "B"
				case c.name == "count":
					out[i] = perRow
				case c.name == "samples":
					out[i] = int64(step / (5 * time.Second))
				case c.name == "sum_ns":
					out[i] = int64(perRow) * 20e6
				case c.name == "sumsq_ns2":
					out[i] = strconv.FormatInt(int64(perRow)*400e12, 10)
				case c.name == "min_ns":
					out[i] = 18e6
				case c.name == "max_ns":
					out[i] = 22e6 - 1
				case c.name == "lost_sum" || c.name == "lost":
					out[i] = lost
				case c.name == "sample_n_min" || c.name == "sample_n_max":
					out[i] = 1
				case strings.HasSuffix(c.name, "_hist"):
					out[i] = h
				case strings.HasSuffix(c.name, "_sumsq"):
					out[i] = "0"
				case c.typ == "REAL":
					out[i] = 0.01
				case c.typ == "TEXT":
					out[i] = "0"
				case !c.notnull:
					out[i] = nil
				default:
					out[i] = 0
				}
			}
			return out
		}, nil
	}
	flows := 2 * benchFlows
	for _, table := range []string{"owd_stats_" + suffix, "owd_metrics_" + suffix} {
		cols, row, err := values(table)
		if err != nil {
			return err
		}
		for t := from; t.Before(end); t = t.Add(step) {
			for f := 1; f <= flows; f++ {
				if err := insertRow(db, table, cols, row(t.UnixNano(), f)); err != nil {
					return err
				}
			}
		}
	}
	edges := []int64{-1 << 63, 19e6, 20e6, 21e6, 1<<63 - 1}
	for t := from; t.Before(end); t = t.Add(step) {
		for f := 1; f <= flows; f++ {
			for s := range 4 {
				if err := insertRow(db, "owd_hist_"+suffix, []string{"start_ns", "flow_id", "hop_from", "hop_to", "slice", "lo_ns", "hi_ns", "count"},
					[]any{t.UnixNano(), f, "A", "B", s, edges[s], edges[s+1], perRow / 4}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func insertRow(db *sql.DB, table string, cols []string, vals []any) error {
	q := "INSERT INTO " + table + " (" + strings.Join(cols, ",") + ") VALUES (" + strings.Repeat("?,", len(cols)-1) + "?)"
	if _, err := db.Exec(q, vals...); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}
