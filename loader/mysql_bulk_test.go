package loader

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestBulkInsert: rows loaded by LOAD DATA come back exactly as an INSERT
// writes them (strings with every character the text format escapes, the
// text \N, NULL, extreme integers), and what LOAD DATA LOCAL would only warn
// about — a duplicate key, a string too long — fails the load as an INSERT
// fails, instead of leaving rows out.
func TestBulkInsert(t *testing.T) {
	db := mysqlDB(t)
	_, spec, _ := strings.Cut(db.spec, "mysql:")
	sdb, d, err := openMySQL(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	ctx := context.Background()
	tbl := &Table{Name: "bulk_test", Columns: []Column{{Name: "k", Kind: KindInt}, {Name: "s", Kind: KindStr, Size: 16}, {Name: "n", Kind: KindInt, Null: true}}, Key: []string{"k"}}
	for _, s := range d.CreateTable(tbl) {
		if _, err := sdb.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	defer sdb.ExecContext(ctx, "DROP TABLE bulk_test") //nolint:errcheck

	odd := []string{"a\tb", "line\nnext", `back\slash`, `\N`, "nul\x00", "cr\r", "", "ü€"}
	rows := make([][]any, 0, bulkMin)
	for i := range bulkMin {
		var n any = int64(-1 << 63)
		if i%3 == 0 {
			n = nil
		} else if i%3 == 1 {
			n = int64(1<<63 - 1)
		}
		rows = append(rows, []any{int64(i), odd[i%len(odd)], n})
	}
	bl := d.(bulkInserter)
	tx, err := sdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	done, err := bl.BulkInsert(ctx, tx, tbl, []string{"k", "s", "n"}, rows)
	if err != nil || !done {
		t.Fatalf("BulkInsert: done=%v err=%v", done, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got := query(t, sdb, "SELECT LPAD(k, 6, '0'), HEX(s), n FROM bulk_test")
	if len(got) != len(rows) {
		t.Fatalf("%d rows back, want %d", len(got), len(rows))
	}
	for i, g := range got {
		n := "NULL"
		if rows[i][2] != nil {
			n = fmt.Sprint(rows[i][2])
		}
		want := fmt.Sprintf("%06d|%X|%s", i, rows[i][1], n)
		if g != want {
			t.Fatalf("row %d: %q, want %q", i, g, want)
		}
	}

	// Refused, as an INSERT would be: nothing of the batch stays.
	for name, bad := range map[string]func([][]any){
		"duplicate key": func(r [][]any) { r[500][0] = int64(7) },
		"too long":      func(r [][]any) { r[900][1] = strings.Repeat("x", 17) },
	} {
		more := make([][]any, len(rows))
		for i := range rows {
			more[i] = []any{int64(bulkMin + i), "ok", nil}
		}
		bad(more)
		tx, err := sdb.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		done, err := bl.BulkInsert(ctx, tx, tbl, []string{"k", "s", "n"}, more)
		tx.Rollback() //nolint:errcheck
		if err == nil || !done {
			t.Errorf("%s: BulkInsert done=%v err=%v, want an error", name, done, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
		if n := query(t, sdb, "SELECT COUNT(*) FROM bulk_test"); n[0] != fmt.Sprint(len(rows)) {
			t.Errorf("%s: %s rows after the rollback, want %d", name, n[0], len(rows))
		}
	}

	// Floats are left to the INSERTs (exact binary values).
	if done, err := bl.BulkInsert(ctx, sdb, tbl, []string{"k"}, [][]any{{1.5}}); done || err != nil {
		t.Errorf("a float: done=%v err=%v, want left to INSERT", done, err)
	}
}
