package loader

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"github.com/tmon-project/tmon/internal/testenv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The MySQL tests use the database of TMON_TEST_MYSQL_DSN (a go-sql-driver
// DSN; .ci/mariadb.sh creates tmon_test and the accounts), or else the local
// socket as root. They drop and recreate the tables of that database, so they
// must not share it with anything else; they skip when it is not reachable.

const defaultMySQLDSN = "root@unix(/run/mysqld/mysqld.sock)/tmon_test"

var (
	mysqlOnce sync.Once
	mysqlDSN  string
	mysqlErr  error
)

func testMySQLDSN() (string, error) {
	mysqlOnce.Do(func() {
		dsn := os.Getenv("TMON_TEST_MYSQL_DSN")
		if dsn == "" {
			dsn = defaultMySQLDSN
		}
		mysqlDSN = dsn
		db, _, err := openMySQL(dsn)
		if err != nil {
			mysqlErr = err
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		mysqlErr = db.PingContext(ctx)
	})
	return mysqlDSN, mysqlErr
}

// testDB is a database under test.
type testDB struct {
	name string
	spec string // Config.DB
}

// sqliteDB returns a fresh SQLite database in a temporary directory.
func sqliteDB(t testing.TB) testDB {
	return testDB{"sqlite", "sqlite:" + filepath.Join(t.TempDir(), "tmon.db")}
}

// mysqlDB returns the MySQL test database, emptied; it skips the test when
// MariaDB is not reachable.
func mysqlDB(t testing.TB) testDB {
	t.Helper()
	dsn, err := testMySQLDSN()
	if err != nil {
		testenv.Skipf(t, "MariaDB not reachable at %q (%v): run .ci/mariadb.sh and set TMON_TEST_MYSQL_DSN", dsn, err)
	}
	db := testDB{"mysql", "mysql:" + dsn}
	db.reset(t)
	return db
}

// eachDB runs f on SQLite and on MySQL (when reachable).
func eachDB(t *testing.T, f func(t *testing.T, db testDB)) {
	t.Run("sqlite", func(t *testing.T) { f(t, sqliteDB(t)) })
	t.Run("mysql", func(t *testing.T) { f(t, mysqlDB(t)) })
}

// open returns a plain handle on the database, for the checks.
func (d testDB) open(t testing.TB) *sql.DB {
	t.Helper()
	db, _, err := openDB(d.spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// reset drops every table (MySQL) or removes the file (SQLite).
func (d testDB) reset(t testing.TB) {
	t.Helper()
	if d.name == "sqlite" {
		p := strings.TrimPrefix(d.spec, "sqlite:")
		for _, s := range []string{"", "-wal", "-shm"} {
			os.Remove(p + s)
		}
		return
	}
	db := d.open(t)
	// A loader a previous test killed may still hold the loader lock
	// until the server notices its connection is gone: wait for it, and
	// end that connection if it outlives the wait (it is a test's own).
	for start := time.Now(); ; {
		var holder sql.NullInt64
		if err := db.QueryRow("SELECT IS_USED_LOCK(CONCAT('tmon-loader:', DATABASE()))").Scan(&holder); err != nil {
			t.Fatalf("loader lock: %v", err)
		}
		if !holder.Valid {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Logf("loader lock still held by connection %d after %v: killing it", holder.Int64, time.Since(start).Round(time.Second))
			db.Exec(fmt.Sprintf("KILL %d", holder.Int64))
			start = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Views first: DROP TABLE refuses a view.
	for _, kind := range []string{"VIEW", "TABLE"} {
		typ := "BASE TABLE"
		if kind == "VIEW" {
			typ = "VIEW"
		}
		rows, err := db.Query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = ?", typ)
		if err != nil {
			t.Fatalf("list tables: %v", err)
		}
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, "`"+n+"`")
		}
		rows.Close()
		if len(names) > 0 {
			if _, err := db.Exec("DROP " + kind + " " + strings.Join(names, ",")); err != nil {
				t.Fatalf("drop %s: %v", kind, err)
			}
		}
	}
}

// testLogger captures the loader's log for assertions (and shows it with -v).
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTestLog(t testing.TB) (*slog.Logger, *testLog) {
	tl := &testLog{}
	var w io.Writer = tl
	if testing.Verbose() {
		w = io.MultiWriter(tl, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), tl
}

// load runs the loader once with cfg completed by the test's defaults.
func load(t testing.TB, db testDB, cfg Config) (Stats, *testLog) {
	t.Helper()
	log, tl := newTestLog(t)
	cfg.DB = db.spec
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, err := l.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("load: %v\nlog:\n%s", err, tl)
	}
	return st, tl
}

// query returns the rows of q as "a|b|c" strings (NULL for NULL), sorted.
func query(t testing.TB, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		s := make([]string, len(vals))
		for i, v := range vals {
			if v.Valid {
				s[i] = v.String
			} else {
				s[i] = "NULL"
			}
		}
		out = append(out, strings.Join(s, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// dump returns every table's content (loaded_ns, a wall-clock time, left
// out): equal dumps mean equal databases.
func dump(t testing.TB, db *sql.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tb := range allTables() {
		var cols []string
		for _, c := range tb.Columns {
			if c.Name != "loaded_ns" {
				cols = append(cols, c.Name)
			}
		}
		out[tb.Name] = query(t, db, fmt.Sprintf("SELECT %s FROM %s", strings.Join(cols, ","), tb.Name))
	}
	return out
}

// diffDumps reports the first differences between two dumps.
func diffDumps(t testing.TB, what string, want, got map[string][]string) {
	t.Helper()
	for name, w := range want {
		g := got[name]
		if strings.Join(w, "\n") == strings.Join(g, "\n") {
			continue
		}
		t.Errorf("%s: table %s differs: want %d rows, got %d", what, name, len(w), len(g))
		diffRows(t, w, g)
	}
}

func diffRows(t testing.TB, want, got []string) {
	t.Helper()
	ws, gs := map[string]bool{}, map[string]bool{}
	for _, w := range want {
		ws[w] = true
	}
	for _, g := range got {
		gs[g] = true
	}
	n := 0
	for _, w := range want {
		if !gs[w] && n < 5 {
			t.Errorf("  missing: %s", w)
			n++
		}
	}
	n = 0
	for _, g := range got {
		if !ws[g] && n < 5 {
			t.Errorf("  extra:   %s", g)
			n++
		}
	}
}

// copyDir copies a spool tree (for runs that must start from the same files).
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// spoolFiles counts the complete spool files left (not archived).
func spoolFilesLeft(t testing.TB, dir string) int {
	t.Helper()
	fs, _, err := listSpool(Spool{Collector: "x", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return len(fs)
}
