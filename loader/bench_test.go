package loader

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// A day of demo-sized spool (examples/demo.xml: 10 s intervals; here 4 flows,
// two hop pairs, up to 4 packets per flow, pair and interval, per-packet
// records on): about 43 000 files. TMON_BENCH_INTERVALS shortens it.
var (
	daySpoolOnce sync.Once
	daySpoolDir  string
	daySpoolFx   *fixture
)

func daySpool(b *testing.B) (string, *fixture) {
	daySpoolOnce.Do(func() {
		n := 8640
		if s := os.Getenv("TMON_BENCH_INTERVALS"); s != "" {
			n, _ = strconv.Atoi(s)
		}
		dir, err := os.MkdirTemp("", "tmon-bench-spool")
		if err != nil {
			b.Fatal(err)
		}
		daySpoolDir = filepath.Join(dir, "c1")
		daySpoolFx = genSpool(b, daySpoolDir, genConfig{Collector: "c1", Start: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
			Interval: 10 * time.Second, N: n, Flows: 4, MaxPkts: 4, Seed: 9, Current: true})
	})
	return daySpoolDir, daySpoolFx
}

func benchLoad(b *testing.B, db func() testDB) {
	b.StopTimer() // generating the spool is not loading it
	src, fx := daySpool(b)
	var rows int
	var busy time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		d := db()
		dir := filepath.Join(b.TempDir(), "c1")
		copyDir(b, src, dir)
		log, _ := newTestLog(b)
		l, err := New(Config{DB: d.spec, Spools: []Spool{{"c1", dir}}, PerPacket: true, Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		st, err := l.RunOnce(context.Background())
		busy += time.Since(start)
		b.StopTimer()
		l.Close()
		if err != nil {
			b.Fatal(err)
		}
		if st.Files != fx.files {
			b.Fatalf("loaded %d files, want %d", st.Files, fx.files)
		}
		rows += st.Rows
	}
	b.ReportMetric(float64(rows)/busy.Seconds(), "rows/s")
	b.ReportMetric(float64(b.N*fx.files)/busy.Seconds(), "files/s")
	b.ReportMetric(float64(fx.files), "files/op")
	b.ReportMetric(float64(fx.rows), "rows/op")
}

func BenchmarkLoadDaySQLite(b *testing.B) {
	benchLoad(b, func() testDB { return sqliteDB(b) })
}

func BenchmarkLoadDayMariaDB(b *testing.B) {
	benchLoad(b, func() testDB { return mysqlDB(b) })
}
