package query

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/loader"
	"github.com/tmon-project/tmon/reports/internal/fixture"
)

// A database last written by an older loader lacks the columns added since
// (owd_packet's spans, for one): the report says so at the start, naming
// them and what to do, instead of failing on a page later with an SQL
// error; once this version's loader has run on it, the report starts. The
// older database is made by dropping the newest column of owd_packet.
func TestOlderDatabaseSaid(t *testing.T) {
	eachDB(t, nil, func(t *testing.T, db *DB) {
		ctx := context.Background()
		if err := db.Ping(ctx); err != nil {
			t.Fatalf("a database of this loader: %v", err)
		}
		spec := db.Spec
		if db.Dialect == "mysql" {
			load, _, err := fixture.MySQLDSNs("_report")
			if err != nil {
				t.Fatal(err)
			}
			spec = "mysql:" + load
		}
		w, err := sql.Open(map[string]string{"sqlite": "sqlite", "mysql": "mysql"}[db.Dialect], strings.TrimPrefix(strings.TrimPrefix(spec, "sqlite:"), "mysql:"))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		const col = "first_delay_ns"
		if _, err := w.ExecContext(ctx, "ALTER TABLE owd_packet DROP COLUMN "+col); err != nil {
			t.Fatal(err)
		}
		err = db.Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), "owd_packet."+col) || !strings.Contains(err.Error(), "tmon-loader") {
			t.Fatalf("Ping on a database without owd_packet.%s: %v; want an error naming the column and the loader", col, err)
		}
		l, err := loader.New(loader.Config{DB: spec, Spools: []loader.Spool{{Collector: "c1", Dir: t.TempDir()}},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if _, err := l.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.Ping(ctx); err != nil {
			t.Fatalf("after the loader ran: %v", err)
		}
	})
}
