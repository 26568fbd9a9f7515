package loader

import (
	"compress/gzip"
	"context"
	"fmt"
	"github.com/tmon-project/tmon/internal/testenv"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// partitionsOf lists "name:rows" of a MySQL table's partitions.
func partitionsOf(t testing.TB, db testDB, table string) []string {
	h := db.open(t)
	names := query(t, h, `SELECT PARTITION_NAME FROM information_schema.PARTITIONS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, table)
	var out []string
	for _, n := range names {
		c := query(t, h, fmt.Sprintf("SELECT COUNT(*) FROM %s PARTITION (%s)", table, n))
		out = append(out, n+":"+c[0])
	}
	return out
}

// MySQL: a partition per day, created before the day's rows, pFuture always
// empty; a late older day splits the partition that covered it; retention
// drops whole partitions. SQLite: retention deletes the same days' rows.
func TestPartitionsAndRetention(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		root := t.TempDir()
		// Crosses midnight 22→23 November.
		a := genSpool(t, filepath.Join(root, "c1"), genConfig{Collector: "c1",
			Start: time.Date(2026, 11, 22, 23, 58, 0, 0, time.UTC), Interval: 10 * time.Second, N: 24, Flows: 3, MaxPkts: 3, Seed: 5, Current: true})
		load(t, db, Config{Spools: []Spool{{"c1", a.dir}}, PerPacket: true})
		if db.name == "mysql" {
			for _, tb := range []string{"owd_stats_1m", "owd_hist_1h", "owd_packet", "events"} {
				got := partitionsOf(t, db, tb)
				if len(got) != 3 || !strings.HasPrefix(got[0], "p20261122:") || !strings.HasPrefix(got[1], "p20261123:") || got[2] != "pFuture:0" {
					t.Errorf("%s partitions %v, want p20261122, p20261123, empty pFuture", tb, got)
				}
			}
		}
		// A late spool of an older day (20 November).
		b := genSpool(t, filepath.Join(root, "c2"), genConfig{Collector: "c2",
			Start: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC), Interval: 60 * time.Second, N: 3, Flows: 2, MaxPkts: 3, Seed: 6})
		load(t, db, Config{Spools: []Spool{{"c1", a.dir}, {"c2", b.dir}}, PerPacket: true})
		checkAggregates(t, db, []*fixture{a, b})
		if db.name == "mysql" {
			got := partitionsOf(t, db, "owd_stats_1d")
			if len(got) != 4 || !strings.HasPrefix(got[0], "p20261120:") || got[0] == "p20261120:0" || got[3] != "pFuture:0" {
				t.Errorf("owd_stats_1d partitions after a late older day: %v", got)
			}
		}

		// Now 30 November: keep 8 days of 1 min (drops the 20th), 1 day of
		// records (drops all but the 29th and after: everything), 1 h and
		// 1 d forever.
		now := func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }
		ret, _ := ParseRetention("1m=9d,rec=1d")
		_, log := load(t, db, Config{Spools: []Spool{{"c1", a.dir}}, Retention: ret, Now: now})
		h := db.open(t)
		cut := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC).UnixNano()
		if got := query(t, h, "SELECT COUNT(*) FROM owd_stats_1m WHERE start_ns < ?", cut); got[0] != "0" {
			t.Errorf("owd_stats_1m keeps %s rows older than the retention", got[0])
		}
		if got := query(t, h, "SELECT COUNT(*) FROM owd_stats_1m"); got[0] == "0" {
			t.Errorf("owd_stats_1m: retention removed too much")
		}
		for _, tb := range []string{"owd_packet", "events", "owd_incomplete"} {
			if got := query(t, h, "SELECT COUNT(*) FROM "+tb); got[0] != "0" {
				t.Errorf("%s keeps %s rows after retention rec=1d", tb, got[0])
			}
		}
		// 1 h and 1 d untouched.
		for _, l := range levels[1:] {
			got := query(t, h, fmt.Sprintf("SELECT %s FROM owd_stats_%s s JOIN flows f ON f.id = s.flow_id", statsCols, l.Suffix))
			if want := expectedStats([]*fixture{a, b}, l.Ns); strings.Join(want, "\n") != strings.Join(got, "\n") {
				t.Errorf("owd_stats_%s changed by retention of other classes", l.Suffix)
			}
		}
		if !strings.Contains(log.String(), "retention") {
			t.Errorf("retention not logged:\n%s", log)
		}
		if db.name == "mysql" {
			got := partitionsOf(t, db, "owd_stats_1m")
			if len(got) != 3 || !strings.HasPrefix(got[0], "p20261122:") {
				t.Errorf("owd_stats_1m partitions after retention: %v, want p20261120 dropped", got)
			}
			if got := partitionsOf(t, db, "events"); strings.Join(got, " ") != "pFuture:0" {
				t.Errorf("events partitions after retention: %v", got)
			}
		}
	})
}

// A file recorded as loaded but still in the spool (the loader died between
// commit and archive) is archived by the next run, not loaded twice.
func TestArchiveAfterCrashBeforeArchive(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		_, fxs, spools := twoSpools(t)
		load(t, db, Config{Spools: spools, PerPacket: true})
		before := dump(t, db.open(t))
		// Put one archived file back, as if never archived.
		arch := archived(t, fxs[0].dir)
		src := filepath.Join(fxs[0].dir, arch[len(arch)/2])
		f, _ := os.Open(src)
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(zr)
		f.Close()
		typ := filepath.Base(filepath.Dir(src))
		back := filepath.Join(fxs[0].dir, typ, strings.TrimSuffix(filepath.Base(src), ".gz"))
		os.WriteFile(back, data, 0o644)
		os.Remove(src)

		st, _ := load(t, db, Config{Spools: spools, PerPacket: true})
		if st.Files != 0 || st.Archived != 1 {
			t.Errorf("rerun: %+v, want 0 loaded, 1 archived", st)
		}
		if _, err := os.Stat(src); err != nil {
			t.Errorf("not archived again: %v", err)
		}
		diffDumps(t, "rerun after crash before archive", before, dump(t, db.open(t)))

		// The same name with other content breaks the spool contract: the
		// file is left in the spool and reported.
		os.WriteFile(back, append(data, []byte("x\n")...), 0o644)
		os.Remove(src)
		_, log := load(t, db, Config{Spools: spools, PerPacket: true})
		if !strings.Contains(log.String(), "file changed after it was loaded") {
			t.Errorf("changed file not reported:\n%s", log)
		}
		if _, err := os.Stat(back); err != nil {
			t.Errorf("changed file moved: %v", err)
		}
	})
}

// proxy is a TCP relay to MariaDB that the test can stop, start and cut,
// to play a database that goes away.
type proxy struct {
	t      testing.TB
	addr   string // where it listens
	target mysql.Config
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func (p *proxy) start() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial(p.target.Net, p.target.Addr)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
}

// stop closes the listener and every relayed connection.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// The database away, before and during a load: the daemon retries and in
// the end the tables are complete, with nothing lost or doubled.
func TestDatabaseAway(t *testing.T) {
	db := mysqlDB(t)
	dsn, _ := testMySQLDSN()
	target, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, addr: "127.0.0.1:0", target: *target}
	p.start()
	p.stop() // the address is known, nothing listens: the database is away
	t.Cleanup(p.stop)
	via := *target
	via.Net, via.Addr = "tcp", p.addr
	away := testDB{"mysql", "mysql:" + via.FormatDSN()}

	_, fxs, spools := twoSpools(t)
	log, tl := newTestLog(t)
	l, err := New(Config{DB: away.spec, Spools: spools, PerPacket: true, BatchFiles: 5, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.RunOnce(context.Background()); err == nil {
		t.Fatalf("loaded with the database away")
	}
	if n := spoolFilesLeft(t, fxs[0].dir); n != fxs[0].files {
		t.Fatalf("%d files left in the spool, want all %d", n, fxs[0].files)
	}

	// Daemon: the database comes back, is cut in the middle of the load,
	// comes back again.
	ctx, cancel := context.WithCancel(context.Background())
	l.cfg.Every = 100 * time.Millisecond
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	time.Sleep(300 * time.Millisecond)
	p.start()
	// The deadline only bounds a failing test: under the race detector on
	// a loaded 2-core machine the whole load took more than a minute.
	// Polled every 50 ms: listing the spool steals the loader's CPU.
	deadline := time.Now().Add(5 * time.Minute)
	for spoolFilesLeft(t, fxs[0].dir) > fxs[0].files/2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	time.Sleep(300 * time.Millisecond)
	p.start()
	for spoolFilesLeft(t, fxs[0].dir)+spoolFilesLeft(t, fxs[1].dir) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("daemon: %v", err)
	}
	if n := spoolFilesLeft(t, fxs[0].dir) + spoolFilesLeft(t, fxs[1].dir); n > 0 {
		t.Fatalf("%d files still in the spools after 5 minutes\n%s", n, tl)
	}
	if !strings.Contains(tl.String(), "retrying") {
		t.Errorf("no retry logged:\n%s", tl)
	}
	checkAggregates(t, db, fxs)
}

// The read-only account can read the tables and cannot write them.
func TestReadOnlyAccount(t *testing.T) {
	db := mysqlDB(t)
	ro := os.Getenv("TMON_TEST_MYSQL_RO_DSN")
	if ro == "" {
		testenv.Skipf(t, "TMON_TEST_MYSQL_RO_DSN not set (.ci/mariadb.sh creates tmon_report)")
	}
	_, _, spools := twoSpools(t)
	load(t, db, Config{Spools: spools})
	h := testDB{"mysql", "mysql:" + ro}.open(t)
	if got := query(t, h, "SELECT COUNT(*) FROM owd_stats_1h"); got[0] == "0" {
		t.Errorf("read-only account reads no rows")
	}
	if _, err := h.Exec("INSERT INTO bad_lines VALUES (1, 1, 'x', 'y')"); err == nil {
		t.Errorf("read-only account could insert")
	}
}

// A table that lost its partitioning (or its pFuture) is repaired, not left
// blocking every later load.
func TestPartitionRepair(t *testing.T) {
	db := mysqlDB(t)
	_, fxs, spools := twoSpools(t)
	load(t, db, Config{Spools: spools[:1], PerPacket: true})
	h := db.open(t)
	if _, err := h.Exec("ALTER TABLE events REMOVE PARTITIONING"); err != nil {
		t.Fatal(err)
	}
	_, log := load(t, db, Config{Spools: spools, PerPacket: true})
	if !strings.Contains(log.String(), "repairing") {
		t.Errorf("repair not logged:\n%s", log)
	}
	if got := partitionsOf(t, db, "events"); len(got) < 2 || got[len(got)-1] != "pFuture:0" {
		t.Errorf("events partitions after repair: %v", got)
	}
	checkAggregates(t, db, fxs)
}
