package query

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/tmon-project/tmon/loader"
	_ "modernc.org/sqlite" // registers driver "sqlite" (pure Go)
)

// DefaultDB is the loader's default database.
const DefaultDB = loader.DefaultDB

// DB is a read-only handle on the loader's database.
type DB struct {
	mu       sync.Mutex
	only     string // the single collector of the database, "" when several
	perClass bool   // the database has the per-class tables
	// perCollClass: it has the per-class tables of each collector.
	perCollClass bool
	// flowRows makes every query read the per-flow rows (tests compare
	// both ways).
	flowRows bool
	onlyAt   time.Time
	db       *sql.DB
	Dialect  string // "sqlite" or "mysql"
	Spec     string // what Open was given, password hidden
}

// Open opens spec ("sqlite:PATH" or "mysql:DSN") for reading. SQLite is
// opened read-only (mode=ro and query_only); MySQL should be given the
// read-only account (docs/loader.md "Database accounts"), and its sessions
// are set read-only too.
func Open(spec string) (*DB, error) {
	kind, rest, ok := strings.Cut(spec, ":")
	if !ok || rest == "" {
		return nil, fmt.Errorf("database %q: want sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB", spec)
	}
	switch kind {
	case "sqlite":
		if _, err := os.Stat(rest); err != nil {
			return nil, fmt.Errorf("database %s: %w (load a spool first: tmon-loader -spool DIR -db %s)", rest, err, spec)
		}
		dsn := "file:" + (&url.URL{Path: rest}).EscapedPath() + "?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)" +
			// A class-wide chart reads ~10⁵ rows scattered over the file:
			// a 64 MiB page cache (per connection) rather than the 2 MiB
			// default re-reading pages. No mmap: a file shrunk under it
			// would kill the process (SIGBUS). Sorts and materialised
			// subqueries (the pick's window) in memory, not temporary
			// files: a quarter less CPU for a page of one flow.
			"&_pragma=cache_size(-65536)&_pragma=temp_store(memory)"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", rest, err)
		}
		return &DB{db: db, Dialect: "sqlite", Spec: spec}, nil
	case "mysql":
		cfg, err := mysql.ParseDSN(rest)
		if err != nil {
			return nil, fmt.Errorf("mysql dsn: %w", err)
		}
		if cfg.DBName == "" {
			return nil, fmt.Errorf("mysql dsn: no database name (…/DBNAME)")
		}
		cfg.InterpolateParams = true
		if cfg.Timeout == 0 {
			cfg.Timeout = 10 * time.Second
		}
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		// Belt and braces beside the read-only account.
		cfg.Params["tx_read_only"] = "1"
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("mysql: %w", err)
		}
		cfg.Passwd = "****"
		return &DB{db: sql.OpenDB(conn), Dialect: "mysql", Spec: "mysql:" + cfg.FormatDSN()}, nil
	}
	return nil, fmt.Errorf("database %q: unknown kind %q (want sqlite or mysql)", spec, kind)
}

// Close closes the handle.
func (d *DB) Close() error { return d.db.Close() }

// Ping checks that the database answers and holds the loader's tables.
func (d *DB) Ping(ctx context.Context) error {
	var n int64
	if err := d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM flows").Scan(&n); err != nil {
		return fmt.Errorf("database %s: %w (has tmon-loader loaded it?)", d.Spec, err)
	}
	if err := d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM owd_pick_1d WHERE start_ns < 0").Scan(&n); err != nil {
		return fmt.Errorf("database %s: %w (loaded by an older tmon-loader: run the loader once to create the views)", d.Spec, err)
	}
	// A page reading a column the database lacks would fail with an SQL
	// error in the middle of a night: say it once, at the start, with
	// what to do.
	missing, err := loader.MissingColumns(ctx, d.db, d.Dialect)
	if err != nil {
		return fmt.Errorf("database %s: %w", d.Spec, err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("database %s was last written by an older tmon-loader: it lacks %s; run this version's tmon-loader on it once (it adds them, rows already there keep NULL: not known)", d.Spec, strings.Join(missing, ", "))
	}
	return nil
}

// rows runs q and calls scan for each row.
func (d *DB) rows(ctx context.Context, q string, args []any, scan func(*sql.Rows) error) error {
	rs, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("query: %w\n%s", err, q)
	}
	defer rs.Close()
	for rs.Next() {
		if err := scan(rs); err != nil {
			return fmt.Errorf("query: %w", err)
		}
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("query: %w", err)
	}
	return nil
}
