package loader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
)

// bulkInserter is a dialect that loads many record rows faster than
// multi-row INSERTs. BulkInsert reports false, with no error and nothing
// written, when it cannot take these rows (insertRows then INSERTs them).
type bulkInserter interface {
	BulkInsert(ctx context.Context, q querier, t *Table, cols []string, rows [][]any) (bool, error)
}

// bulkMin is the fewest rows worth a LOAD DATA: below, the INSERTs cost as
// little.
const bulkMin = 1000

var bulkSeq atomic.Uint64

// BulkInsert sends rows as tab-separated text through LOAD DATA LOCAL
// INFILE: the server parses text instead of SQL, and the client formats
// numbers instead of interpolating placeholders — per-packet loads are
// dominated by that work (BenchmarkLoadPerPacketMariaDB). The text is
// formatted as the driver reads it (in 16 KiB packets), not into a buffer
// first: the server parses and writes one packet's rows while the next
// packet is formatted, on the other core, and a batch's 10 MB of text are
// neither allocated nor held.
//
// LOAD DATA LOCAL turns what would be an INSERT's error (a duplicate key, a
// value that does not fit) into a warning and goes on, so the rows it
// reports written are checked against those sent and any warning fails the
// load: the transaction is rolled back as an INSERT's error would. A server
// that refuses LOCAL (local_infile=OFF) is said once in the log and the
// INSERTs serve.
func (d *mysqlDialect) BulkInsert(ctx context.Context, q querier, t *Table, cols []string, rows [][]any) (bool, error) {
	if d.noBulk.Load() {
		return false, nil
	}
	switch q.(type) {
	case *sql.Tx, *sql.Conn: // one session: SHOW WARNINGS sees the load's warnings
	default:
		return false, nil
	}
	for _, c := range t.Columns {
		// Floats would be parsed back by the server: the INSERT's
		// binary value is exact, text might not be.
		if c.Kind == KindFloat && contains(cols, c.Name) {
			return false, nil
		}
	}
	name := fmt.Sprintf("tmon-%s-%d", t.Name, bulkSeq.Add(1))
	rr := &rowReader{rows: rows}
	mysql.RegisterReaderHandler(name, func() io.Reader { return rr })
	defer mysql.DeregisterReaderHandler(name)
	var stmt strings.Builder
	fmt.Fprintf(&stmt, `LOAD DATA LOCAL INFILE 'Reader::%s' INTO TABLE %s CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' (`, name, d.Quote(t.Name))
	for i, c := range cols {
		if i > 0 {
			stmt.WriteByte(',')
		}
		stmt.WriteString(d.Quote(c))
	}
	stmt.WriteByte(')')
	res, err := q.ExecContext(ctx, stmt.String())
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && (me.Number == 1148 || me.Number == 3948) && d.noBulk.CompareAndSwap(false, true) {
			// ER_NOT_ALLOWED_COMMAND, ER_CLIENT_LOCAL_FILES_DISABLED:
			// nothing was loaded.
			d.log.Warn("loader: the server refuses LOAD DATA LOCAL (local_infile=OFF?): loading with INSERTs, which is slower", "err", err)
			return false, nil
		}
		return true, fmt.Errorf("load data into %s: %w", t.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return true, fmt.Errorf("load data into %s: %w", t.Name, err)
	}
	if warn := d.warnings(ctx, q); warn != "" || n != int64(len(rows)) {
		return true, fmt.Errorf("load data into %s: %d rows written of %d: %s", t.Name, n, len(rows), warn)
	}
	return true, nil
}

// rowReader is rows as LOAD DATA text (fields escaped by '\', separated
// by TAB, lines ended by LF), formatted as it is read.
type rowReader struct {
	rows [][]any
	line []byte // the formatted row not yet read
}

func (r *rowReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.line) == 0 {
			if len(r.rows) == 0 {
				break
			}
			var err error
			if r.line, err = appendRow(r.line[:0], r.rows[0]); err != nil {
				return n, err
			}
			r.rows = r.rows[1:]
		}
		c := copy(p[n:], r.line)
		n += c
		r.line = r.line[c:]
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// appendRow appends one row of LOAD DATA text to b.
func appendRow(b []byte, row []any) ([]byte, error) {
	for i, v := range row {
		if i > 0 {
			b = append(b, '\t')
		}
		switch x := v.(type) {
		case nil:
			b = append(b, `\N`...)
		case int64:
			b = strconv.AppendInt(b, x, 10)
		case string:
			b = appendEscaped(b, x)
		default:
			// The driver aborts the LOAD DATA: the transaction fails.
			return b, fmt.Errorf("load data: column %d: a %T has no exact text form", i, v)
		}
	}
	return append(b, '\n'), nil
}

// warnings returns the first warnings of the session's last statement.
func (d *mysqlDialect) warnings(ctx context.Context, q querier) string {
	rs, err := q.QueryContext(ctx, "SHOW WARNINGS LIMIT 3")
	if err != nil {
		return "SHOW WARNINGS: " + err.Error()
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var level, msg string
		var code int
		if err := rs.Scan(&level, &code, &msg); err != nil {
			return "SHOW WARNINGS: " + err.Error()
		}
		out = append(out, fmt.Sprintf("%s %d: %s", level, code, msg))
	}
	if err := rs.Err(); err != nil {
		return "SHOW WARNINGS: " + err.Error()
	}
	return strings.Join(out, "; ")
}

// appendEscaped appends s as a LOAD DATA field escaped by '\'.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\t':
			b = append(b, `\t`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case 0:
			b = append(b, `\0`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
