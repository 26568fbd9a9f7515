package loader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// dialect is everything that differs between SQLite and MySQL/MariaDB. The
// rest of the loader writes standard SQL through it and never tests which
// database it talks to.
type dialect interface {
	Name() string
	Quote(ident string) string
	// CreateTable returns the statements creating t if it does not exist
	// (with its indexes, and on MySQL its partitions).
	CreateTable(t *Table) []string
	// ColumnType is the SQL type of c, NOT NULL included, for ALTER TABLE
	// ADD COLUMN (both dialects share that syntax).
	ColumnType(c Column) string
	// UpsertSuffix is appended to a multi-row INSERT of every column of t so
	// that a row whose key exists replaces the non-key columns.
	UpsertSuffix(t *Table) string
	// EnsurePartitions makes sure rows of the given days (UTC midnights, ns)
	// can be inserted into t, each day in its own partition. MySQL runs DDL,
	// which commits implicitly: it is called outside any transaction.
	EnsurePartitions(ctx context.Context, q querier, t *Table, days []int64) error
	// Expire removes the rows of t older than cutoff (ns, a UTC midnight):
	// whole partitions on MySQL, never DELETE; DELETE on SQLite, which has no
	// partitions. It returns what it removed, for the log.
	Expire(ctx context.Context, q querier, t *Table, cutoff int64) (string, error)
	// Lock takes the loader lock of this database, waiting up to wait; it
	// returns ErrLocked when another loader holds it.
	Lock(ctx context.Context, conn *sql.Conn, wait time.Duration) (unlock func(), err error)
	// Rekey gives t, created by an older loader with t.OldKey as its
	// primary key and the index <name>_i0 on (flow_id, time), its
	// current primary key t.Key and no index, keeping its rows, in one
	// statement or transaction. It reports whether it changed anything.
	Rekey(ctx context.Context, q querier, t *Table) (bool, error)
	// EnsureView creates view v, or replaces it when its definition
	// differs, atomically: a report reading meanwhile sees the old or the
	// new view, never none.
	EnsureView(ctx context.Context, q querier, v View) error
}

// querier is a connection or a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ErrLocked reports that another loader is working on the same database.
var ErrLocked = errors.New("another tmon-loader holds the database lock")

// insertSQL is a multi-row INSERT of cols into t with n rows of placeholders.
func insertSQL(d dialect, t *Table, cols []string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (", d.Quote(t.Name))
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.Quote(c))
	}
	b.WriteString(") VALUES ")
	ph := "(" + strings.Repeat("?,", len(cols)-1) + "?)"
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(ph)
	}
	return b.String()
}

func colNames(t *Table) []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

func quoteList(d dialect, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = d.Quote(n)
	}
	return strings.Join(q, ",")
}

// nonKey lists the columns of t outside its primary key.
func nonKey(t *Table) []string {
	var out []string
	for _, c := range t.Columns {
		if !contains(t.Key, c.Name) {
			out = append(out, c.Name)
		}
	}
	return out
}

// openDB opens the database named by spec: "sqlite:PATH" or "mysql:DSN".
func openDB(spec string) (*sql.DB, dialect, error) {
	kind, rest, ok := strings.Cut(spec, ":")
	if !ok || rest == "" {
		return nil, nil, fmt.Errorf("database %q: want sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB", spec)
	}
	switch kind {
	case "sqlite":
		return openSQLite(rest)
	case "mysql":
		return openMySQL(rest)
	}
	return nil, nil, fmt.Errorf("database %q: unknown kind %q (want sqlite or mysql)", spec, kind)
}

// queryInt runs a query that returns one integer (a count).
func queryInt(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
	}
	return n, rows.Err()
}

// oldIndex is the name of the (flow_id, time) index of a table that an
// older loader keyed otherwise (Table.OldKey).
func oldIndex(t *Table) string { return t.Name + "_i0" }
