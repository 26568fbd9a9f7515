package loader

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
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

// bulkBufs keeps the text buffers of LOAD DATA: a batch's per-packet rows
// are some 10 MB, which a fresh buffer allocates and clears every time.
// Larger ones than maxBulkBuf are left to the garbage collector.
var bulkBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxBulkBuf = 64 << 20

// BulkInsert sends rows as tab-separated text through LOAD DATA LOCAL
// INFILE (the driver streams it from memory: nothing is written to a file):
// the server parses text instead of SQL, and the client formats numbers
// instead of interpolating placeholders — per-packet loads are dominated
// by that work (BenchmarkLoadPerPacketMariaDB).
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
	buf := bulkBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxBulkBuf {
			buf.Reset()
			bulkBufs.Put(buf)
		}
	}()
	buf.Grow(len(rows) * len(cols) * 8)
	var num [24]byte
	for _, row := range rows {
		for i, v := range row {
			if i > 0 {
				buf.WriteByte('\t')
			}
			switch x := v.(type) {
			case nil:
				buf.WriteString(`\N`)
			case int64:
				buf.Write(strconv.AppendInt(num[:0], x, 10))
			case string:
				writeEscaped(buf, x)
			default:
				// Floats would be parsed back by the server: the
				// INSERT's binary value is exact, text might not be.
				return false, nil
			}
		}
		buf.WriteByte('\n')
	}
	name := fmt.Sprintf("tmon-%s-%d", t.Name, bulkSeq.Add(1))
	data := buf.Bytes()
	mysql.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(data) })
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

// writeEscaped writes s as a LOAD DATA field escaped by '\'.
func writeEscaped(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(c)
		}
	}
}
