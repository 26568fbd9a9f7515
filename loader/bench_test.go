package loader

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// serverCPU reads the CPU time of a local MariaDB server from /proc, per
// thread: a benchmark that shares the server with other clients counts
// only its own sessions' threads (the server's background threads, which
// flush pages for every client, are in the whole process's figure). ok is
// false when the server is not local or not readable: no server metric.
type serverCPU struct {
	db  *sql.DB
	pid string
}

func newServerCPU(b *testing.B, d testDB) *serverCPU {
	if d.name != "mysql" {
		return nil
	}
	db := d.open(b)
	var pidFile string
	if err := db.QueryRow("SELECT @@pid_file").Scan(&pidFile); err != nil {
		return nil
	}
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		return nil
	}
	return &serverCPU{db: db, pid: strings.TrimSpace(string(pid))}
}

// threads returns the CPU time of every thread of the server by thread id.
func (s *serverCPU) threads() map[string]time.Duration {
	out := map[string]time.Duration{}
	dir := "/proc/" + s.pid + "/task"
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		stat, err := os.ReadFile(filepath.Join(dir, e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command, which is in parentheses: utime and
		// stime are the 14th and 15th of the whole line, in clock ticks
		// (100 per second on Linux).
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[e.Name()] = time.Duration(u+st) * 10 * time.Millisecond
	}
	return out
}

// sessions returns the server threads of the connections to the
// benchmark's database (the loader's, still open in its pool).
func (s *serverCPU) sessions(b *testing.B) []string {
	rows, err := s.db.Query("SELECT TID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var tid int64
		if err := rows.Scan(&tid); err != nil {
			b.Fatal(err)
		}
		out = append(out, strconv.FormatInt(tid, 10))
	}
	return out
}

func sumCPU(m map[string]time.Duration) time.Duration {
	var t time.Duration
	for _, d := range m {
		t += d
	}
	return t
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
	var busy, cpu, commit, session, server time.Duration
	var srv *serverCPU
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		d := db()
		if i == 0 {
			srv = newServerCPU(b, d)
		}
		dir := filepath.Join(b.TempDir(), "c1")
		copyDir(b, src, dir)
		log, _ := newTestLog(b)
		l, err := New(Config{DB: d.spec, Spools: []Spool{{"c1", dir}}, PerPacket: true, Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		var thr0 map[string]time.Duration
		if srv != nil {
			thr0 = srv.threads()
		}
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU()
		st, err := l.RunOnce(context.Background())
		busy += time.Since(start)
		cpu += processCPU() - cpu0
		b.StopTimer()
		if srv != nil && err == nil {
			thr := srv.threads()
			for _, tid := range srv.sessions(b) {
				session += thr[tid] - thr0[tid]
			}
			server += sumCPU(thr) - sumCPU(thr0)
		}
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
	if session > 0 {
		// The server's CPU (a local MariaDB): the loader's sessions, and
		// the whole server (its page flushing included, and whatever
		// other clients made it do meanwhile).
		b.ReportMetric(float64(rows)/session.Seconds(), "rows/session-cpu-s")
		b.ReportMetric(float64(rows)/server.Seconds(), "rows/server-cpu-s")
	}
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
