package web_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tmon-project/tmon/loader"
)

// benchMySQL makes the page benchmark's database in MariaDB/MySQL
// ($TMON_BENCH_MYSQL_DSN: the loading account and a database of its own,
// whose tables it replaces): the SQLite one's rows (benchdb_test.go), in
// the loader's schema with its partitions (one per UTC day with rows).
// The same template step is copied to every step with INSERT … SELECT
// over MariaDB's sequence tables (seq_0_to_N), a day per statement. Kept
// between runs: bench_fill records each table's progress and schema, as in
// SQLite; the loader makes the schema in an empty database only.
func benchMySQL(b *testing.B, dsn string) {
	b.Helper()
	days := benchMinuteDays()
	tmplPath := benchTemplate(b)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := b.TempDir()
	os.Mkdir(dir+"/c1", 0o755)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MultiStatements = false
	my, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		b.Fatal(err)
	}
	defer my.Close()
	// The schema, partitions pFuture, views: by the loader, into an empty
	// database only (in a filled one it would build the per-class tables
	// from the per-flow rows before the fill does; drop the database to
	// take a new schema).
	var tables0 int
	if err := my.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'flows'").Scan(&tables0); err != nil {
		b.Fatal(err)
	}
	if tables0 == 0 {
		l, err := loader.New(loader.Config{DB: "mysql:" + dsn, Spools: []loader.Spool{{Collector: "c1", Dir: dir + "/c1"}}, Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.RunOnce(ctx); err != nil {
			b.Fatal(err)
		}
		l.Close()
	}
	tm, err := sql.Open("sqlite", "file:"+tmplPath+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer tm.Close()
	if _, err := my.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS bench_fill (name VARCHAR(100) PRIMARY KEY, `schema` TEXT NOT NULL, done_ns BIGINT NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	var tables []string
	if err := queryDB(ctx, tm, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid", nil, func(r *sql.Rows) error {
		var n string
		tables = append(tables, n)
		return r.Scan(&tables[len(tables)-1])
	}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for _, name := range tables {
		if err := fillMySQLTable(ctx, my, tm, name, days, b.Logf); err != nil {
			b.Fatalf("fill %s: %v", name, err)
		}
	}
	b.Logf("MariaDB benchmark database ready in %v", time.Since(start).Round(time.Second))
}

func queryDB(ctx context.Context, db *sql.DB, q string, args []any, each func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// fillMySQLTable fills one table: its template rows into a stage table
// bench_tm_<name>, then copied to every step of its range.
func fillMySQLTable(ctx context.Context, my, tm *sql.DB, name string, minuteDays int, logf func(string, ...any)) error {
	var schema string
	if err := my.QueryRowContext(ctx, "SHOW CREATE TABLE `"+name+"`").Scan(new(string), &schema); err != nil {
		return err
	}
	// The schema without its partitions (they are what the fill adds).
	if i := strings.Index(schema, "PARTITION BY"); i >= 0 {
		schema = schema[:i]
	}
	var had string
	var done int64
	err := my.QueryRowContext(ctx, "SELECT `schema`, done_ns FROM bench_fill WHERE name = ?", name).Scan(&had, &done)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	const complete = int64(1<<63 - 1)
	if had == schema && done == complete {
		return nil
	}
	var cols []string
	if err := queryDB(ctx, tm, "SELECT name FROM pragma_table_info(?)", []any{name}, func(r *sql.Rows) error {
		var c string
		cols = append(cols, c)
		return r.Scan(&cols[len(cols)-1])
	}); err != nil {
		return err
	}
	var step time.Duration
	for _, s := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour} {
		if strings.HasSuffix(name, "_"+levelSuffix(s)) {
			step = s
		}
	}
	timeCol := slices.IndexFunc(cols, func(c string) bool { return c == "start_ns" || c == "time_ns" })
	// The template rows into the stage table (or the table itself when it
	// is not per step).
	stage := "bench_tm_" + name
	if step == 0 || timeCol < 0 {
		stage = name
	} else {
		if _, err := my.ExecContext(ctx, "DROP TABLE IF EXISTS `"+stage+"`"); err != nil {
			return err
		}
		if _, err := my.ExecContext(ctx, "CREATE TABLE `"+stage+"` LIKE `"+name+"`"); err != nil {
			return err
		}
		if _, err := my.ExecContext(ctx, "ALTER TABLE `"+stage+"` REMOVE PARTITIONING"); err != nil {
			return err
		}
	}
	if had != schema || done == 0 {
		if _, err := my.ExecContext(ctx, "TRUNCATE TABLE `"+name+"`"); err != nil {
			return err
		}
		done = 0
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = "`" + c + "`"
	}
	ins := "INSERT INTO `" + stage + "` (" + strings.Join(quoted, ",") + ") VALUES (" + strings.Repeat("?,", len(cols)-1) + "?)"
	n := 0
	if err := queryDB(ctx, tm, "SELECT * FROM \""+name+"\"", nil, func(r *sql.Rows) error {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			return err
		}
		n++
		_, err := my.ExecContext(ctx, ins, vals...)
		return err
	}); err != nil {
		return err
	}
	mark := func(t int64) error {
		_, err := my.ExecContext(ctx, "INSERT INTO bench_fill (name, `schema`, done_ns) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE `schema` = VALUES(`schema`), done_ns = VALUES(done_ns)", name, schema, t)
		return err
	}
	if stage == name || n == 0 {
		return mark(complete)
	}
	end := benchEndTime()
	from := benchYearStart()
	if step == time.Minute {
		from = end.Add(-time.Duration(minuteDays) * 24 * time.Hour)
	}
	// A partition per day (the loader splits pFuture the same way).
	var parts []string
	for d := from; d.Before(end); d = d.Add(24 * time.Hour) {
		ub := d.Add(24 * time.Hour)
		parts = append(parts, fmt.Sprintf("PARTITION p%s VALUES LESS THAN (%d)", d.Format("20060102"), ub.UnixNano()))
	}
	var np int
	if err := my.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", name).Scan(&np); err != nil {
		return err
	}
	if np <= 1 {
		if _, err := my.ExecContext(ctx, "ALTER TABLE `"+name+"` REORGANIZE PARTITION pFuture INTO ("+strings.Join(parts, ", ")+", PARTITION pFuture VALUES LESS THAN MAXVALUE)"); err != nil {
			return fmt.Errorf("partitions: %w", err)
		}
	}
	c2From := end.Add(-benchC2Days * 24 * time.Hour).UnixNano()
	filter := "1"
	if slices.Contains(cols, "flow_id") {
		filter = fmt.Sprintf("(s.flow_id <= %d OR t.t >= %d)", benchFlows, c2From)
	} else if slices.Contains(cols, "collector") {
		filter = fmt.Sprintf("(s.collector <> 'c2' OR t.t >= %d)", c2From)
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = "s.`" + c + "`"
	}
	sel[timeCol] = "t.t"
	var t0 int64
	if err := my.QueryRowContext(ctx, "SELECT MIN(`"+cols[timeCol]+"`) FROM `"+stage+"`").Scan(&t0); err != nil {
		return err
	}
	perDay := int64(max(24*time.Hour/step, 1))
	if done < from.UnixNano() {
		done = from.UnixNano()
	}
	start := time.Now()
	for t := done; t < end.UnixNano(); t += 24 * time.Hour.Nanoseconds() {
		q := fmt.Sprintf("INSERT INTO `%s` (%s) SELECT %s FROM (SELECT %d + seq * %d AS t FROM seq_0_to_%d) t CROSS JOIN `%s` s WHERE s.`%s` = %d AND %s",
			name, strings.Join(quoted, ","), strings.Join(sel, ", "), t, step.Nanoseconds(), perDay-1, stage, cols[timeCol], t0, filter)
		next := t + 24*time.Hour.Nanoseconds()
		if next >= end.UnixNano() {
			next = complete
		}
		// A day's rows and its mark in one transaction: a build cut
		// short resumes at the first day not committed.
		tx, err := my.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q); err != nil {
			tx.Rollback()
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO bench_fill (name, `schema`, done_ns) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE `schema` = VALUES(`schema`), done_ns = VALUES(done_ns)", name, schema, next); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	logf("%s: filled in %v", name, time.Since(start).Round(time.Second))
	_, err = my.ExecContext(ctx, "DROP TABLE `"+stage+"`")
	return err
}
