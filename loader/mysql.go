package loader

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
)

// mysqlDialect is MySQL/MariaDB: tables with a time column are partitioned by
// RANGE on it, one partition per UTC day plus pFuture (VALUES LESS THAN
// MAXVALUE), which is kept empty: a day's partition is split off pFuture
// before that day's first row is written. Retention drops whole partitions.
// The loader lock is GET_LOCK, released by the server when the session ends.
type mysqlDialect struct {
	db  string
	log *slog.Logger
	// covered is, per table, the partitions read or made since the lock
	// was taken: under the lock no other loader changes them, so a batch
	// whose days are covered needs no information_schema query (a costly
	// one, for each of some twenty tables at every commit).
	covered map[string][]partition
	// noBulk: the server refused LOAD DATA LOCAL (BulkInsert).
	noBulk atomic.Bool
}

func openMySQL(dsn string) (*sql.DB, dialect, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("mysql dsn: %w", err)
	}
	if cfg.DBName == "" {
		return nil, nil, fmt.Errorf("mysql dsn %q: no database name (…/DBNAME)", dsn)
	}
	// Placeholders are interpolated by the driver: one round trip per
	// statement instead of prepare, execute, close.
	cfg.InterpolateParams = true
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("mysql: %w", err)
	}
	return sql.OpenDB(conn), &mysqlDialect{db: cfg.DBName, log: slog.Default()}, nil
}

func (d *mysqlDialect) Name() string              { return "mysql" }
func (d *mysqlDialect) Quote(ident string) string { return "`" + ident + "`" }

func (d *mysqlDialect) ColumnType(c Column) string {
	var t string
	switch c.Kind {
	case KindInt:
		t = "BIGINT"
	case KindExact:
		t = "DECIMAL(38,0)"
	case KindStr:
		t = fmt.Sprintf("VARCHAR(%d)", c.Size)
	case KindFloat:
		t = "DOUBLE"
	case KindHist:
		// A day's merged IPDV histogram can exceed TEXT's 64 KiB: up to
		// 2×3700 buckets of "key:count,".
		t = "MEDIUMTEXT"
	default:
		t = "TEXT"
	}
	if !c.Null {
		t += " NOT NULL"
	}
	return t
}

func (d *mysqlDialect) CreateTable(t *Table) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (", d.Quote(t.Name))
	for _, c := range t.Columns {
		fmt.Fprintf(&b, "%s %s, ", d.Quote(c.Name), d.ColumnType(c))
	}
	fmt.Fprintf(&b, "PRIMARY KEY (%s)", quoteList(d, t.Key))
	for i, u := range t.Unique {
		fmt.Fprintf(&b, ", UNIQUE KEY %s (%s)", d.Quote(fmt.Sprintf("%s_u%d", t.Name, i)), quoteList(d, u))
	}
	for i, ix := range t.Indexes {
		fmt.Fprintf(&b, ", KEY %s (%s)", d.Quote(fmt.Sprintf("%s_i%d", t.Name, i)), quoteList(d, ix))
	}
	// _bin: strings compare byte for byte, as in Go and SQLite.
	b.WriteString(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
	if t.Time != "" {
		fmt.Fprintf(&b, " PARTITION BY RANGE (%s) (PARTITION pFuture VALUES LESS THAN MAXVALUE)", d.Quote(t.Time))
	}
	return []string{b.String()}
}

func (d *mysqlDialect) UpsertSuffix(t *Table) string {
	var set []string
	for _, c := range nonKey(t) {
		set = append(set, fmt.Sprintf("%s=VALUES(%s)", d.Quote(c), d.Quote(c)))
	}
	return " ON DUPLICATE KEY UPDATE " + strings.Join(set, ",")
}

// partition is one RANGE partition: rows with time < bound (max: no bound).
type partition struct {
	name  string
	bound int64
	max   bool
}

// partitions returns the partitions of a loader table, the last one pFuture.
// A table found otherwise is waited for (another session's partition DDL may
// still be finishing: a killed loader's server session ends its statement
// before it ends) and then repaired, with a warning.
func (d *mysqlDialect) partitions(ctx context.Context, q querier, t *Table) ([]partition, error) {
	for try := 0; ; try++ {
		ps, err := d.readPartitions(ctx, q, t.Name)
		if err != nil {
			return nil, err
		}
		if len(ps) > 0 && ps[len(ps)-1].max {
			return ps, nil
		}
		if try < 3 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		var stmt string
		if len(ps) == 0 {
			stmt = fmt.Sprintf("ALTER TABLE %s PARTITION BY RANGE (%s) (PARTITION pFuture VALUES LESS THAN MAXVALUE)", d.Quote(t.Name), d.Quote(t.Time))
		} else {
			stmt = fmt.Sprintf("ALTER TABLE %s ADD PARTITION (PARTITION pFuture VALUES LESS THAN MAXVALUE)", d.Quote(t.Name))
		}
		d.log.Warn("table without its pFuture partition; repairing", "table", t.Name, "partitions", ps, "sql", stmt)
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("repair partitions of %s: %w", t.Name, err)
		}
	}
}

func (d *mysqlDialect) readPartitions(ctx context.Context, q querier, table string) ([]partition, error) {
	rows, err := q.QueryContext(ctx, `SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM information_schema.PARTITIONS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND PARTITION_NAME IS NOT NULL
		ORDER BY PARTITION_ORDINAL_POSITION`, table)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", table, err)
	}
	defer rows.Close()
	var ps []partition
	for rows.Next() {
		var name, desc string
		if err := rows.Scan(&name, &desc); err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", table, err)
		}
		p := partition{name: name, max: desc == "MAXVALUE"}
		if !p.max {
			if p.bound, err = strconv.ParseInt(desc, 10, 64); err != nil {
				return nil, fmt.Errorf("partitions of %s: %s bound %q: %w", table, name, desc, err)
			}
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", table, err)
	}
	return ps, nil
}

func partName(bound int64) string {
	return "p" + time.Unix(0, bound-dayNs).UTC().Format("20060102")
}

func boundText(p partition) string {
	if p.max {
		return "MAXVALUE"
	}
	return strconv.FormatInt(p.bound, 10)
}

func (d *mysqlDialect) EnsurePartitions(ctx context.Context, q querier, t *Table, days []int64) error {
	if t.Time == "" || len(days) == 0 {
		return nil
	}
	ps := d.covered[t.Name]
	if ps == nil || !coversAll(ps, days) {
		var err error
		if ps, err = d.partitions(ctx, q, t); err != nil {
			return err
		}
	}
	// New bounds grouped by the partition that covers them today; splitting
	// pFuture (always empty) is free, splitting a day partition that covers a
	// gap copies that partition's rows (only when loading an older day late).
	split := map[int][]int64{}
	for _, day := range days {
		ub := day + dayNs
		i := sort.Search(len(ps), func(i int) bool { return ps[i].max || ps[i].bound >= ub })
		if !ps[i].max && ps[i].bound == ub {
			continue
		}
		if !contains64(split[i], ub) {
			split[i] = append(split[i], ub)
		}
	}
	for i, ubs := range split {
		sort.Slice(ubs, func(a, b int) bool { return ubs[a] < ubs[b] })
		var parts []string
		for _, ub := range ubs {
			parts = append(parts, fmt.Sprintf("PARTITION %s VALUES LESS THAN (%d)", partName(ub), ub))
		}
		parts = append(parts, fmt.Sprintf("PARTITION %s VALUES LESS THAN (%s)", ps[i].name, boundText(ps[i])))
		stmt := fmt.Sprintf("ALTER TABLE %s REORGANIZE PARTITION %s INTO (%s)", d.Quote(t.Name), ps[i].name, strings.Join(parts, ", "))
		delete(d.covered, t.Name) // read again next time
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("add partitions to %s: %w", t.Name, err)
		}
	}
	if len(split) == 0 {
		if d.covered == nil {
			d.covered = map[string][]partition{}
		}
		d.covered[t.Name] = ps
	}
	return nil
}

// coversAll reports whether every day (a UTC midnight) has its own
// partition in ps.
func coversAll(ps []partition, days []int64) bool {
	for _, day := range days {
		ub := day + dayNs
		i := sort.Search(len(ps), func(i int) bool { return ps[i].max || ps[i].bound >= ub })
		if i == len(ps) || ps[i].max || ps[i].bound != ub {
			return false
		}
	}
	return true
}

func contains64(list []int64, x int64) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}

func (d *mysqlDialect) Expire(ctx context.Context, q querier, t *Table, cutoff int64) (string, error) {
	delete(d.covered, t.Name)
	ps, err := d.partitions(ctx, q, t)
	if err != nil {
		return "", err
	}
	var drop []string
	for _, p := range ps {
		if !p.max && p.bound <= cutoff {
			drop = append(drop, p.name)
		}
	}
	if len(drop) == 0 {
		return "", nil
	}
	list := strings.Join(drop, ",")
	if _, err := q.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %s", d.Quote(t.Name), list)); err != nil {
		return "", fmt.Errorf("expire %s: drop partitions %s: %w", t.Name, list, err)
	}
	return "partitions " + list + " dropped", nil
}

func (d *mysqlDialect) Lock(ctx context.Context, conn *sql.Conn, wait time.Duration) (func(), error) {
	clear(d.covered) // what another loader did since is read again
	name := "tmon-loader:" + d.db
	secs := int64((wait + time.Second - 1) / time.Second)
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", name, secs).Scan(&got); err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if !got.Valid || got.Int64 != 1 {
		var holder sql.NullInt64
		_ = conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", name).Scan(&holder)
		return nil, fmt.Errorf("%w: mysql database %s (GET_LOCK %q held by connection %d)", ErrLocked, d.db, name, holder.Int64)
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "SELECT RELEASE_LOCK(?)", name)
	}, nil
}

// EnsureView replaces the view (CREATE OR REPLACE is atomic). SQL SECURITY
// INVOKER: a reader needs SELECT on the tables, which the report account
// has, and the view does not depend on the loading account that created it.
// Rekey changes the primary key and drops the index in one ALTER TABLE
// (atomic DDL: a crash leaves the old table or the new one).
func (d *mysqlDialect) Rekey(ctx context.Context, q querier, t *Table) (bool, error) {
	n, err := queryInt(ctx, q, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?", t.Name, oldIndex(t))
	if err != nil || n == 0 {
		return false, err
	}
	stmt := fmt.Sprintf("ALTER TABLE %s DROP PRIMARY KEY, ADD PRIMARY KEY (%s), DROP INDEX %s", d.Quote(t.Name), quoteList(d, t.Key), d.Quote(oldIndex(t)))
	if _, err := q.ExecContext(ctx, stmt); err != nil {
		return false, fmt.Errorf("rekey %s: %w", t.Name, err)
	}
	return true, nil
}

func (d *mysqlDialect) EnsureView(ctx context.Context, q querier, v View) error {
	_, err := q.ExecContext(ctx, viewSQL(d, v, "OR REPLACE SQL SECURITY INVOKER "))
	return err
}
