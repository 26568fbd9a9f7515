package query

import (
	"context"
	"os"
	"testing"
)

// The report process only reads: through a handle of Open, a write, a
// schema change and a transaction's write are refused (SQLite: opened
// read-only and query_only; MariaDB: the read-only account, sessions
// read-only), and the database is unchanged (its rows; the SQLite file's
// size and time).
func TestOpenIsReadOnly(t *testing.T) {
	eachDB(t, nil, func(t *testing.T, db *DB) {
		ctx := context.Background()
		var before int64
		if err := db.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events").Scan(&before); err != nil {
			t.Fatal(err)
		}
		var st os.FileInfo
		path := ""
		if db.Dialect == "sqlite" {
			path = db.Spec[len("sqlite:"):]
			var err error
			if st, err = os.Stat(path); err != nil {
				t.Fatal(err)
			}
		}
		for _, q := range []string{
			"INSERT INTO events (time_ns, file_id, line, collector, source, kind, detail) VALUES (1, 999999, 1, 'x', 'x', 'x', 'x')",
			"UPDATE flows SET class = 'x'",
			"DELETE FROM owd_stats_1m",
			"CREATE TABLE report_wrote (a INTEGER)",
			"DROP VIEW owd_pick_1m",
		} {
			if _, err := db.db.ExecContext(ctx, q); err == nil {
				t.Errorf("%s: %s was accepted", db.Dialect, q)
			}
		}
		tx, err := db.db.BeginTx(ctx, nil)
		if err == nil {
			if _, err := tx.ExecContext(ctx, "INSERT INTO events (time_ns, file_id, line, collector, source, kind, detail) VALUES (2, 999999, 2, 'x', 'x', 'x', 'x')"); err == nil {
				t.Errorf("%s: an insert in a transaction was accepted", db.Dialect)
			}
			tx.Rollback()
		}
		var after int64
		if err := db.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events").Scan(&after); err != nil {
			t.Fatal(err)
		}
		if after != before {
			t.Errorf("%s: events %d rows, %d before", db.Dialect, after, before)
		}
		if path != "" {
			now, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if now.Size() != st.Size() || !now.ModTime().Equal(st.ModTime()) {
				t.Errorf("sqlite: the file changed: %d bytes at %v, was %d at %v", now.Size(), now.ModTime(), st.Size(), st.ModTime())
			}
		}
	})
}
