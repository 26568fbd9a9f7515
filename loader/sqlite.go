package loader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // registers driver "sqlite" (pure Go, no cgo)
)

// sqliteDialect is the embedded default. No partitions: retention deletes.
// KindExact columns are TEXT holding a decimal integer, summed in Go.
// The loader lock is an flock on PATH.lock: the kernel releases it when the
// process dies, even by SIGKILL, which a lock row in a table would not.
type sqliteDialect struct{ path string }

func openSQLite(path string) (*sql.DB, dialect, error) {
	// WAL lets report readers work during a load; synchronous(FULL) makes a
	// commit durable before the file is archived (exactly-once across a power
	// loss, not only a crash).
	// A 64 MiB page cache holds a batch's pages (100 000 rows by default)
	// until its commit, instead of spilling them to the WAL on the way.
	dsn := "file:" + path + "?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=cache_size(-65536)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, &sqliteDialect{path: path}, nil
}

func (d *sqliteDialect) Name() string              { return "sqlite" }
func (d *sqliteDialect) Quote(ident string) string { return `"` + ident + `"` }

func (d *sqliteDialect) ColumnType(c Column) string {
	var t string
	switch c.Kind {
	case KindInt:
		t = "INTEGER"
	case KindFloat:
		t = "REAL"
	default:
		t = "TEXT"
	}
	if !c.Null {
		t += " NOT NULL"
	}
	return t
}

func (d *sqliteDialect) CreateTable(t *Table) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (", d.Quote(t.Name))
	for _, c := range t.Columns {
		fmt.Fprintf(&b, "%s %s, ", d.Quote(c.Name), d.ColumnType(c))
	}
	fmt.Fprintf(&b, "PRIMARY KEY (%s)", quoteList(d, t.Key))
	for _, u := range t.Unique {
		fmt.Fprintf(&b, ", UNIQUE (%s)", quoteList(d, u))
	}
	b.WriteString(")")
	if t.Class == "rec" {
		// Individual records (short rows, key time, file, line) are
		// stored in their primary key's b-tree, not in a rowid table
		// plus an index of the key: one b-tree less to write per row.
		// Aggregate rows carry histograms of kilobytes: they keep rowids.
		b.WriteString(" WITHOUT ROWID")
	}
	stmts := []string{b.String()}
	for i, ix := range t.Indexes {
		stmts = append(stmts, fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s)",
			d.Quote(fmt.Sprintf("%s_i%d", t.Name, i)), d.Quote(t.Name), quoteList(d, ix)))
	}
	return stmts
}

func (d *sqliteDialect) UpsertSuffix(t *Table) string {
	var set []string
	for _, c := range nonKey(t) {
		set = append(set, fmt.Sprintf("%s=excluded.%s", d.Quote(c), d.Quote(c)))
	}
	return fmt.Sprintf(" ON CONFLICT (%s) DO UPDATE SET %s", quoteList(d, t.Key), strings.Join(set, ","))
}

func (d *sqliteDialect) EnsurePartitions(context.Context, querier, *Table, []int64) error {
	return nil
}

func (d *sqliteDialect) Expire(ctx context.Context, q querier, t *Table, cutoff int64) (string, error) {
	res, err := q.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s < ?", d.Quote(t.Name), d.Quote(t.Time)), cutoff)
	if err != nil {
		return "", fmt.Errorf("expire %s: %w", t.Name, err)
	}
	n, _ := res.RowsAffected()
	if n == 0 {
		return "", nil
	}
	return fmt.Sprintf("%d rows deleted", n), nil
}

func (d *sqliteDialect) Lock(ctx context.Context, _ *sql.Conn, wait time.Duration) (func(), error) {
	name := d.path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		if !time.Now().Before(deadline) {
			holder, _ := os.ReadFile(name)
			f.Close()
			return nil, fmt.Errorf("%w: %s (lock file %s, held by pid %s)", ErrLocked, d.path, name, strings.TrimSpace(string(holder)))
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The pid is only for the message of a loader that finds the lock taken.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// Rekey copies the rows into a table made with the new key, in one
// transaction, and puts it in the old one's place.
func (d *sqliteDialect) Rekey(ctx context.Context, q querier, t *Table) (bool, error) {
	n, err := queryInt(ctx, q, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ? AND tbl_name = ?", oldIndex(t), t.Name)
	if err != nil || n == 0 {
		return false, err
	}
	tmp := *t
	tmp.Name = t.Name + "_rekey"
	cols := quoteList(d, colNames(t))
	stmts := []string{"BEGIN IMMEDIATE", "DROP TABLE IF EXISTS " + d.Quote(tmp.Name)}
	stmts = append(stmts, d.CreateTable(&tmp)...)
	stmts = append(stmts,
		fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s ORDER BY %s", d.Quote(tmp.Name), cols, cols, d.Quote(t.Name), quoteList(d, t.Key)),
		"DROP TABLE "+d.Quote(t.Name),
		fmt.Sprintf("ALTER TABLE %s RENAME TO %s", d.Quote(tmp.Name), d.Quote(t.Name)),
		"COMMIT")
	for _, stmt := range stmts {
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			_, _ = q.ExecContext(ctx, "ROLLBACK")
			return false, fmt.Errorf("rekey %s: %w", t.Name, err)
		}
	}
	return true, nil
}

// EnsureView compares the stored definition (SQLite keeps the CREATE text as
// given) and replaces the view in one transaction when it differs.
func (d *sqliteDialect) EnsureView(ctx context.Context, q querier, v View) error {
	want := viewSQL(d, v, "")
	rows, err := q.QueryContext(ctx, "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?", v.Name)
	if err != nil {
		return err
	}
	var have string
	for rows.Next() {
		if err := rows.Scan(&have); err != nil {
			rows.Close()
			return err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if have == want {
		return nil
	}
	for _, stmt := range []string{"BEGIN IMMEDIATE", "DROP VIEW IF EXISTS " + d.Quote(v.Name), want, "COMMIT"} {
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			_, _ = q.ExecContext(ctx, "ROLLBACK")
			return err
		}
	}
	return nil
}
