package web_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tmon-project/tmon/hist"
	"github.com/tmon-project/tmon/loader"
	"github.com/tmon-project/tmon/reports/query"
	"github.com/tmon-project/tmon/reports/web"
)

// The page benchmark's database: 100 flows of one class (hop pair A → B)
// with a year of 1-day and 1-hour rows, and 1-minute rows for the last
// TMON_BENCH_MINUTE_DAYS days (default 7, a common 1-minute retention; 365
// gives the full year of minute rows, ~52 M rows per table, which takes
// hours to build and tens of GB). Built once into the temporary directory
// and reused.
const (
	benchFlows = 100
	benchEnd   = "2026-12-01T00:00:00Z"
)

func benchMinuteDays() int {
	if n, err := strconv.Atoi(os.Getenv("TMON_BENCH_MINUTE_DAYS")); err == nil && n > 0 {
		return n
	}
	return 7
}

func benchDB(b *testing.B) string {
	b.Helper()
	days := benchMinuteDays()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("tmon-report-bench-v2-%df-%dd.db", benchFlows, days))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	// The per-flow rows (v1, the same rows as a load would write), then
	// the loader's per-class rows built from them by a loader run, as it
	// does for a database of an older loader.
	v1 := benchDBFlows(b)
	start := time.Now()
	tmp := path + ".build"
	for _, s := range []string{"", "-wal", "-shm", ".lock"} {
		os.Remove(tmp + s)
	}
	if err := copyFile(v1, tmp); err != nil {
		b.Fatal(err)
	}
	l, err := loader.New(loader.Config{DB: "sqlite:" + tmp, Spools: []loader.Spool{{Collector: "c1", Dir: b.TempDir()}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := l.RunOnce(context.Background()); err != nil {
		b.Fatal(err)
	}
	l.Close()
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	for _, s := range []string{"-wal", "-shm", ".lock"} {
		os.Remove(tmp + s)
	}
	b.Logf("built %s in %v", path, time.Since(start).Round(time.Second))
	return path
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// benchDBFlows builds the per-flow rows of the benchmark's database.
func benchDBFlows(b *testing.B) string {
	b.Helper()
	days := benchMinuteDays()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("tmon-report-bench-v1-%df-%dd.db", benchFlows, days))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	start := time.Now()
	tmp := path + ".build"
	for _, s := range []string{"", "-wal", "-shm", ".lock"} {
		os.Remove(tmp + s)
	}
	// The loader creates the schema and views (an empty spool).
	empty := b.TempDir()
	l, err := loader.New(loader.Config{DB: "sqlite:" + tmp, Spools: []loader.Spool{{Collector: "c1", Dir: empty}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := l.RunOnce(context.Background()); err != nil {
		b.Fatal(err)
	}
	l.Close()
	db, err := sql.Open("sqlite", "file:"+tmp+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	end, _ := time.Parse(time.RFC3339, benchEnd)
	yearStart := end.Add(-365 * 24 * time.Hour)
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for f := 1; f <= benchFlows; f++ {
		if _, err := tx.Exec("INSERT INTO flows (id, collector, class, flow_key, first_ns) VALUES (?, 'c1', 'bench', ?, ?)", f, fmt.Sprintf("ip.src=10.1.0.%d", f), yearStart.UnixNano()); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
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
	for _, lv := range []struct {
		suffix string
		step   time.Duration
		from   time.Time
	}{
		{"1d", 24 * time.Hour, yearStart},
		{"1h", time.Hour, yearStart},
		{"1m", time.Minute, end.Add(-time.Duration(days) * 24 * time.Hour)},
	} {
		perRow := int(lv.step / time.Minute * 6000) // 100 packets a second
		h := histOf(perRow)
		if err := fillLevel(db, lv.suffix, lv.step, lv.from, end, perRow, h); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.Exec("INSERT INTO events (time_ns, file_id, line, collector, source, kind, detail) VALUES (?, 1, 1, 'c1', 'probe:pa', 'clock.sync', 'clock synchronised: offset 120µs, root distance 2ms (ntp, stratum 2)')", end.Add(-time.Hour).UnixNano()); err != nil {
		b.Fatal(err)
	}
	db.Close()
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	os.Remove(tmp + ".lock")
	b.Logf("built %s in %v", path, time.Since(start).Round(time.Second))
	return path
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
	for _, table := range []string{"owd_stats_" + suffix, "owd_metrics_" + suffix} {
		cols, row, err := values(table)
		if err != nil {
			return err
		}
		if err := bulk(db, table, cols, func(emit func([]any) error) error {
			for t := from; t.Before(end); t = t.Add(step) {
				for f := 1; f <= benchFlows; f++ {
					if err := emit(row(t.UnixNano(), f)); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	edges := []int64{-1 << 63, 19e6, 20e6, 21e6, 1<<63 - 1}
	return bulk(db, "owd_hist_"+suffix, []string{"start_ns", "flow_id", "hop_from", "hop_to", "slice", "lo_ns", "hi_ns", "count"}, func(emit func([]any) error) error {
		for t := from; t.Before(end); t = t.Add(step) {
			for f := 1; f <= benchFlows; f++ {
				for s := range 4 {
					if err := emit([]any{t.UnixNano(), f, "A", "B", s, edges[s], edges[s+1], perRow / 4}); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

// bulk inserts rows in multi-row statements, 100 000 rows a transaction.
func bulk(db *sql.DB, table string, cols []string, gen func(emit func([]any) error) error) error {
	per := max(1, 30000/len(cols)) // rows a statement (SQLite: ≤ 32 766 parameters)
	stmtFor := func(n int) string {
		ph := "(" + strings.Repeat("?,", len(cols)-1) + "?)"
		return "INSERT INTO " + table + " (" + strings.Join(cols, ",") + ") VALUES " + strings.Repeat(ph+",", n-1) + ph
	}
	full := stmtFor(per)
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	var args []any
	n, inTx := 0, 0
	flush := func(q string) error {
		if _, err := tx.Exec(q, args...); err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
		args, n = args[:0], 0
		if inTx >= 100000 {
			if err := tx.Commit(); err != nil {
				return err
			}
			inTx = 0
			tx, err = db.Begin()
			return err
		}
		return nil
	}
	err = gen(func(r []any) error {
		args = append(args, r...)
		n++
		inTx++
		if n == per {
			return flush(full)
		}
		return nil
	})
	if err == nil && n > 0 {
		err = flush(stmtFor(n))
	}
	if err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// BenchmarkPages renders every page (queries and HTML, as served) for a
// year at day resolution and for a day at minute resolution, over all 100
// flows (the overview) and over one flow (the hop pair page).
func BenchmarkPages(b *testing.B) {
	path := benchDB(b)
	db, err := query.Open("sqlite:" + path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	end, _ := time.Parse(time.RFC3339, benchEnd)
	srv := web.New(db, func() time.Time { return end.Add(-time.Minute) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, period := range []string{"year", "day"} {
		for _, pg := range []struct {
			path string
			q    string
		}{
			{"/", ""},
			{"/pair", "class=bench&flow=ip.src%3D10.1.0.7&pair=A%3EB"},
			{"/pair", "class=bench&pair=A%3EB"},
			{"/path", "class=bench"},
			{"/events", ""},
			{"/probes", ""},
		} {
			v, _ := url.ParseQuery(pg.q)
			v.Set("period", period)
			name := fmt.Sprintf("%s%s/%s", strings.TrimPrefix(pg.path, "/"), map[bool]string{true: "-flow", false: ""}[v.Get("flow") != ""], period)
			if pg.path == "/" {
				name = "overview/" + period
			}
			b.Run(name, func(b *testing.B) {
				sel, err := db.Selection(context.Background(), v, end.Add(-time.Minute))
				if err != nil {
					b.Fatal(err)
				}
				// CPU time as well as wall time: on a shared, loaded
				// machine the wall time measures the neighbours.
				c0 := cpuTime()
				for b.Loop() {
					if err := srv.Render(context.Background(), io.Discard, pg.path, sel, v, false); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((cpuTime()-c0).Milliseconds())/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
