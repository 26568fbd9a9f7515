package loader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Config is what a loader loads and where to. Only cmd/tmon-loader reads
// flags; it fills this.
type Config struct {
	// DB names the database: "sqlite:PATH" (default "sqlite:tmon.db") or
	// "mysql:USER:PASS@tcp(HOST:PORT)/DB" (a go-sql-driver/mysql DSN).
	DB string
	// Spools are the collectors' spool directories: complete files are
	// loaded, then archived under <Dir>/archive.
	Spools []Spool
	// Reload are directories of archived files (*.tsv.gz, any depth) to load
	// again, typically into an empty database; they are not moved.
	Reload []Spool
	// Every is the period of the daemon mode; 0 loads once and returns.
	Every time.Duration
	// LockWait is how long to wait when another loader holds the database
	// lock; 0 gives up at once with ErrLocked.
	LockWait time.Duration
	// Retention is the age after which rows are removed, per table class:
	// "1m", "1h", "1d" (aggregates) and "rec" (individual records). A class
	// not in the map is kept forever.
	Retention map[string]time.Duration
	// PerPacket loads per-packet one-way records (owd_packet,
	// owd_incomplete). When false their files are recorded and archived
	// without their rows, which a reload can still bring in.
	PerPacket bool
	// BatchFiles and BatchRows bound the files and spool rows committed in one
	// transaction; defaults 500 and 100000.
	BatchFiles int
	BatchRows  int
	// Logger receives progress and problems; default slog.Default().
	Logger *slog.Logger
	// Now is the clock for retention and loaded_files.loaded_ns; default time.Now.
	Now func() time.Time
}

// DefaultDB is the database used when Config.DB is empty: no server needed.
const DefaultDB = "sqlite:tmon.db"

// Loader loads spool files into one database. It is not safe for concurrent
// use; concurrent loaders (processes) exclude each other with a database lock.
type Loader struct {
	cfg Config
	db  *sql.DB
	d   dialect
	log *slog.Logger
	tot totals // of every run, for Metrics
}

// Stats are the figures of one run.
type Stats struct {
	Files    int // files loaded
	Rows     int // spool rows loaded
	Bad      int // malformed lines (kept in bad_lines)
	Archived int // files moved to the archive
	Refused  int // incomplete or unreadable files (and manifests), left in the spool
	Waiting  int // files of interval sets not committed yet, left in the spool
	Elapsed  time.Duration
	// Committing is the time spent writing batches (transaction to
	// commit): the database's share of Elapsed, while the next batch is
	// parsed meanwhile.
	Committing time.Duration
}

// New checks cfg and opens the database handle; it does not connect yet, so
// that a daemon starts even while the database is away.
func New(cfg Config) (*Loader, error) {
	if cfg.DB == "" {
		cfg.DB = DefaultDB
	}
	if cfg.BatchFiles <= 0 {
		cfg.BatchFiles = 500
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 100000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Spools)+len(cfg.Reload) == 0 {
		return nil, errors.New("loader: no spool directory to load")
	}
	for class := range cfg.Retention {
		if class != "1m" && class != "1h" && class != "1d" && class != "rec" {
			return nil, fmt.Errorf("loader: retention class %q: want 1m, 1h, 1d or rec", class)
		}
	}
	seen := map[string]string{}
	for _, s := range append(append([]Spool(nil), cfg.Spools...), cfg.Reload...) {
		if s.Collector == "" {
			return nil, fmt.Errorf("loader: spool %s: no collector name", s.Dir)
		}
	}
	for _, s := range cfg.Spools {
		if dir, ok := seen[s.Collector]; ok {
			return nil, fmt.Errorf("loader: collector %q names two spools, %s and %s", s.Collector, dir, s.Dir)
		}
		seen[s.Collector] = s.Dir
	}
	db, d, err := openDB(cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if my, ok := d.(*mysqlDialect); ok {
		my.log = cfg.Logger
	}
	return &Loader{cfg: cfg, db: db, d: d, log: cfg.Logger}, nil
}

// Close closes the database handle.
func (l *Loader) Close() error { return l.db.Close() }

// Run loads once, or with Config.Every set, loads every Every until ctx is
// done. In the daemon mode a failed run (database away, lock held) is logged
// and retried; nothing is lost because files leave the spool only after the
// commit that recorded them.
func (l *Loader) Run(ctx context.Context) error {
	if l.cfg.Every <= 0 {
		st, err := l.RunOnce(ctx)
		l.tot.add(st, err)
		return err
	}
	for {
		st, err := l.RunOnce(ctx)
		l.tot.add(st, err)
		wait := l.cfg.Every
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrLocked):
			l.log.Info("another loader is running; trying again later", "err", err, "in", wait)
		case err != nil:
			wait = min(wait, 30*time.Second)
			l.log.Error("load failed; files stay in the spool, retrying", "err", err, "in", wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// RunOnce takes the database lock, creates missing tables, loads every
// complete file not loaded yet, archives loaded files and applies retention.
func (l *Loader) RunOnce(ctx context.Context) (Stats, error) {
	start := time.Now()
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("loader: connect %s: %w", l.d.Name(), err)
	}
	defer conn.Close()
	unlock, err := l.d.Lock(ctx, conn, l.cfg.LockWait)
	if err != nil {
		return Stats{}, fmt.Errorf("loader: %w", err)
	}
	defer unlock()
	if err := l.createSchema(ctx, conn); err != nil {
		return Stats{}, err
	}
	if err := l.backfillClass(ctx, conn); err != nil {
		return Stats{}, err
	}
	if err := l.backfillCollClass(ctx, conn); err != nil {
		return Stats{}, err
	}
	r := &run{Loader: l, conn: conn, flows: newFlowMap(l.log), start: start}
	if err := r.flows.load(ctx, conn); err != nil {
		return Stats{}, fmt.Errorf("loader: %w", err)
	}
	err = r.loadAll(ctx)
	r.stats.Elapsed = time.Since(start)
	if err != nil {
		return r.stats, fmt.Errorf("loader: %w", err)
	}
	if err := l.expire(ctx, conn); err != nil {
		return r.stats, fmt.Errorf("loader: %w", err)
	}
	if r.stats.Files > 0 || r.stats.Archived > 0 || r.stats.Refused > 0 || r.stats.Waiting > 0 {
		l.log.Info("load done", "files", r.stats.Files, "rows", r.stats.Rows, "bad_lines", r.stats.Bad,
			"archived", r.stats.Archived, "refused", r.stats.Refused, "waiting", r.stats.Waiting,
			"elapsed", r.stats.Elapsed.Round(time.Millisecond),
			"rows_per_s", rate(r.stats.Rows, r.stats.Elapsed))
	}
	return r.stats, nil
}

func rate(n int, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// createSchema creates the tables that do not exist yet, and adds the
// columns that a table created by an older loader lacks (the spool gains
// columns; docs/loader.md): such a column is NULL in the rows already there,
// which is what NULL means here, "not known".
func (l *Loader) createSchema(ctx context.Context, q querier) error {
	for _, t := range allTables() {
		for _, stmt := range l.d.CreateTable(t) {
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("loader: create table %s: %w", t.Name, err)
			}
		}
		have, err := tableColumns(ctx, q, l.d, t)
		if err != nil {
			return err
		}
		for _, c := range t.Columns {
			if have[c.Name] {
				continue
			}
			if !c.Null {
				return fmt.Errorf("loader: table %s lacks column %s, which cannot be added to existing rows (NOT NULL): load into a new database", t.Name, c.Name)
			}
			stmt := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", l.d.Quote(t.Name), l.d.Quote(c.Name), l.d.ColumnType(c))
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("loader: add column %s.%s: %w", t.Name, c.Name, err)
			}
			l.log.Info("column added to a table of an older loader", "table", t.Name, "column", c.Name)
		}
		if t.OldKey != nil {
			start := time.Now()
			done, err := l.d.Rekey(ctx, q, t)
			if err != nil {
				return fmt.Errorf("loader: %w", err)
			}
			if done {
				l.log.Info("primary key of a table of an older loader changed", "table", t.Name,
					"from", strings.Join(t.OldKey, ","), "to", strings.Join(t.Key, ","), "elapsed", time.Since(start).Round(time.Millisecond))
			}
		}
	}
	return l.createViews(ctx, q)
}

// MissingColumns lists, as "table.column", the columns of this version's
// schema that the tables of db lack: a database last written by an older
// loader, which adds them at its next run (createSchema). A table absent
// altogether is not listed: readers already treat a table the loader has
// not made yet as empty. dialectName is "sqlite" or "mysql". It only
// reads, so a report's read-only account can call it.
func MissingColumns(ctx context.Context, db *sql.DB, dialectName string) ([]string, error) {
	var d dialect = &sqliteDialect{}
	if dialectName == "mysql" {
		d = &mysqlDialect{}
	}
	var missing []string
	for _, t := range allTables() {
		have, err := tableColumns(ctx, db, d, t)
		if err != nil {
			// Only an absent table is passed over; any other error (a
			// server gone) is the caller's to report.
			if isNoTable(err) {
				continue
			}
			return nil, err
		}
		for _, c := range t.Columns {
			if !have[c.Name] {
				missing = append(missing, t.Name+"."+c.Name)
			}
		}
	}
	return missing, nil
}

// isNoTable tells an error that says the table does not exist (SQLite:
// "no such table"; MySQL/MariaDB: error 1146).
func isNoTable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1146
	}
	return strings.Contains(err.Error(), "no such table")
}

// tableColumns returns the names of t's columns in the database.
func tableColumns(ctx context.Context, q querier, d dialect, t *Table) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf("SELECT * FROM %s WHERE 1 = 0", d.Quote(t.Name)))
	if err != nil {
		return nil, fmt.Errorf("loader: columns of %s: %w", t.Name, err)
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("loader: columns of %s: %w", t.Name, err)
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	return have, rows.Err()
}

// expire applies the retention of each table class.
func (l *Loader) expire(ctx context.Context, q querier) error {
	if len(l.cfg.Retention) == 0 {
		return nil
	}
	now := l.cfg.Now().UnixNano()
	for _, t := range allTables() {
		age, ok := l.cfg.Retention[t.Class]
		if !ok || t.Time == "" || age <= 0 {
			continue
		}
		// Whole days only, so that both dialects remove the same rows.
		cutoff := floorTo(now-int64(age), dayNs)
		what, err := l.d.Expire(ctx, q, t, cutoff)
		if err != nil {
			return err
		}
		if what != "" {
			l.log.Info("retention", "table", t.Name, "older_than", time.Unix(0, cutoff).UTC().Format(time.DateOnly), "removed", what)
		}
	}
	return nil
}
