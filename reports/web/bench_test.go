package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tmon-project/tmon/reports/query"
	"github.com/tmon-project/tmon/reports/web"
)

// BenchmarkPages renders every page (queries and HTML, as served) for a
// year at day resolution and for a day at minute resolution (the database:
// benchdb_test.go): the overview of the 100 flows, the hop pair page of one
// flow and of the whole class (each figure once: c1 and c2 both measured
// the last week), the class with one collector (c1) selected among the two,
// the path, the events and the probes.
func BenchmarkPages(b *testing.B) {
	path := benchDB(b)
	db, err := query.Open("sqlite:" + path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	benchPages(b, db)
}

// BenchmarkPagesMariaDB is BenchmarkPages on MariaDB/MySQL: the same rows
// in the database of $TMON_BENCH_MYSQL_DSN (the loading account; its tables
// are replaced), read through $TMON_BENCH_MYSQL_RO_DSN (default: the
// same). Skipped without the variable.
func BenchmarkPagesMariaDB(b *testing.B) {
	dsn := os.Getenv("TMON_BENCH_MYSQL_DSN")
	if dsn == "" {
		b.Skip("TMON_BENCH_MYSQL_DSN not set (a MariaDB database of its own, the loading account)")
	}
	benchMySQL(b, dsn)
	ro := os.Getenv("TMON_BENCH_MYSQL_RO_DSN")
	if ro == "" {
		ro = dsn
	}
	db, err := query.Open("mysql:" + ro)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	benchPages(b, db)
}

func benchPages(b *testing.B, db *query.DB) {
	end := benchEndTime()
	srv := web.New(db, func() time.Time { return end.Add(-time.Minute) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, period := range []string{"year", "day"} {
		for _, pg := range []struct {
			path string
			q    string
		}{
			{"/", ""},
			{"/pair", "class=bench&flow=ip.src%3D10.1.0.7&pair=A%3EB"},
			{"/pair", "class=bench&pair=A%3EB"},
			{"/pair", "class=bench&pair=A%3EB&collector=c1"},
			{"/path", "class=bench"},
			{"/events", ""},
			{"/probes", ""},
		} {
			v, _ := url.ParseQuery(pg.q)
			v.Set("period", period)
			name := strings.TrimPrefix(pg.path, "/")
			if v.Get("flow") != "" {
				name += "-flow"
			}
			if c := v.Get("collector"); c != "" {
				name += "-" + c
			}
			name += "/" + period
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
