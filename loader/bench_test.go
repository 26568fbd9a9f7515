package loader

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time (user + system) of the whole process: SQLite
// runs in it, so rows per CPU second stay comparable on a loaded machine
// (MariaDB's own CPU is not in it).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A day of demo-sized spool (examples/demo.xml: 10 s intervals; here 4 flows,
// two hop pairs, up to 4 packets per flow, pair and interval, per-packet
// records on, each interval committed as a set with its manifest): about
// 50 000 small files, so it measures the cost per file. TMON_BENCH_INTERVALS
// shortens it.
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
		daySpoolDir, daySpoolFx = benchSpool(b, genConfig{Collector: "c1", Start: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
			Interval: 10 * time.Second, N: n, Flows: 4, MaxPkts: 4, Seed: 9, Current: true, Sets: true})
	})
	return daySpoolDir, daySpoolFx
}

// A busy link's per-packet spool: 16 flows, up to 8 000 packets per flow,
// hop pair and 10 s interval (about 65 000 owd_packet rows per interval,
// 6 500 packets/s), 16 intervals (TMON_BENCH_PP_INTERVALS): about a million
// rows in a few large files, so it measures the cost per row.
var (
	ppSpoolOnce sync.Once
	ppSpoolDir  string
	ppSpoolFx   *fixture
)

func perPacketSpool(b *testing.B) (string, *fixture) {
	ppSpoolOnce.Do(func() {
		n := 16
		if s := os.Getenv("TMON_BENCH_PP_INTERVALS"); s != "" {
			n, _ = strconv.Atoi(s)
		}
		ppSpoolDir, ppSpoolFx = benchSpool(b, genConfig{Collector: "c1", Start: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
			Interval: 10 * time.Second, N: n, Flows: 16, MaxPkts: 8000, Seed: 11, Current: true, Sets: true})
	})
	return ppSpoolDir, ppSpoolFx
}

func benchSpool(b *testing.B, cfg genConfig) (string, *fixture) {
	dir, err := os.MkdirTemp("", "tmon-bench-spool")
	if err != nil {
		b.Fatal(err)
	}
	dir = filepath.Join(dir, "c1")
	return dir, genSpool(b, dir, cfg)
}

func benchLoad(b *testing.B, spool func(*testing.B) (string, *fixture), db func() testDB) {
	b.StopTimer() // generating the spool is not loading it
	src, fx := spool(b)
	var rows int
	var busy, cpu, commit time.Duration
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
		start, cpu0 := time.Now(), processCPU()
		st, err := l.RunOnce(context.Background())
		busy += time.Since(start)
		cpu += processCPU() - cpu0
		b.StopTimer()
		l.Close()
		if err != nil {
			b.Fatal(err)
		}
		if st.Files != fx.files {
			b.Fatalf("loaded %d files, want %d", st.Files, fx.files)
		}
		rows += st.Rows
		commit += st.Committing
	}
	b.ReportMetric(float64(rows)/busy.Seconds(), "rows/s")
	b.ReportMetric(float64(rows)/cpu.Seconds(), "rows/cpu-s")
	// The database's side alone (SQLite in the process, or the server):
	// the rate the loader would reach were parsing never late.
	b.ReportMetric(float64(rows)/commit.Seconds(), "rows/commit-s")
	b.ReportMetric(float64(b.N*fx.files)/busy.Seconds(), "files/s")
	b.ReportMetric(float64(fx.files), "files/op")
	b.ReportMetric(float64(fx.rows), "rows/op")
}

func BenchmarkLoadDaySQLite(b *testing.B) {
	benchLoad(b, daySpool, func() testDB { return sqliteDB(b) })
}

func BenchmarkLoadDayMariaDB(b *testing.B) {
	benchLoad(b, daySpool, func() testDB { return mysqlDB(b) })
}

func BenchmarkLoadPerPacketSQLite(b *testing.B) {
	benchLoad(b, perPacketSpool, func() testDB { return sqliteDB(b) })
}

func BenchmarkLoadPerPacketMariaDB(b *testing.B) {
	benchLoad(b, perPacketSpool, func() testDB { return mysqlDB(b) })
}
