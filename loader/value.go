package loader

import (
	"database/sql"
	"fmt"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// val is one column value in Go: an int64, a string or an exact integer,
// according to the column's kind. The zero val is NULL.
type val struct {
	ok  bool
	i   int64
	s   string
	big *big.Int // KindExact; never shared between two vals that merge
	f   float64  // KindFloat
	h   sparse   // KindHist; never shared between two vals that merge
}

func intVal(i int64) val  { return val{ok: true, i: i} }
func strVal(s string) val { return val{ok: true, s: s} }

// textVal is a string read from the spool. Its bytes may come from the
// network (an FTP file name in Latin-1): a byte that is not UTF-8 is
// written \xHH (and a backslash before x, \\x), so that MariaDB's utf8mb4
// columns take the row — an invalid string there fails the whole batch,
// every run — and both databases hold the same text (docs/loader.md).
func textVal(s string) val {
	if utf8.ValidString(s) {
		return strVal(s)
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, '\\', 'x', hexDigits[s[i]>>4], hexDigits[s[i]&15])
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == 'x':
			b = append(b, '\\', '\\')
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return strVal(string(b))
}

const hexDigits = "0123456789ABCDEF"

// cutText returns the longest prefix of s, a textVal string, of at most n
// bytes that ends between two characters or escapes.
func cutText(s string, n int) string {
	i := 0
	for i < len(s) {
		u := 1
		switch {
		case s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x':
			u = 4 // \xHH
		case s[i] == '\\' && i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'x':
			u = 2 // \\ before x
		default:
			_, u = utf8.DecodeRuneInString(s[i:])
		}
		if i+u > n {
			break
		}
		i += u
	}
	return s[:i]
}

func bigVal(b *big.Int) val  { return val{ok: true, big: b} }
func floatVal(f float64) val { return val{ok: true, f: f} }
func histVal(h sparse) val   { return val{ok: true, h: h} }

// arg is the value handed to the database driver.
func (v val) arg(k ColKind) any {
	if !v.ok {
		return nil
	}
	switch k {
	case KindInt:
		return v.i
	case KindExact:
		// Decimal text: exact on both DECIMAL(38,0) and SQLite TEXT.
		return v.big.String()
	case KindFloat:
		return v.f
	case KindHist:
		return v.h.String()
	default:
		return v.s
	}
}

// same reports whether a record column's value (NULL, an integer or a
// string: never an exact, float or histogram one) equals w, so that its
// argument can be reused.
func (v val) same(w val) bool {
	return v.ok == w.ok && v.i == w.i && v.s == w.s && v.big == nil && w.big == nil && v.h == nil && w.h == nil && v.f == w.f
}

// appendKey appends v to a map key; a NUL separates values so that no two
// different key tuples give the same string.
func (v val) appendKey(b []byte, k ColKind) []byte {
	if !v.ok {
		return append(b, 0xff, 0)
	}
	switch k {
	case KindInt:
		b = strconv.AppendInt(b, v.i, 10)
	case KindExact:
		b = v.big.Append(b, 10)
	default:
		b = append(b, v.s...)
	}
	return append(b, 0)
}

// merge combines v (the accumulated value) with w according to op.
func (v *val) merge(w val, op AggOp) {
	if !w.ok || op == OpKey || op == OpDerived {
		return
	}
	if !v.ok {
		*v = w
		if w.big != nil {
			v.big = new(big.Int).Set(w.big)
		}
		if w.h != nil {
			v.h = append(sparse(nil), w.h...)
		}
		return
	}
	switch op {
	case OpSum:
		v.i += w.i
	case OpSumExact:
		v.big.Add(v.big, w.big)
	case OpMin:
		v.i = min(v.i, w.i)
	case OpMax:
		v.i = max(v.i, w.i)
	case OpHist:
		v.h = v.h.add(w.h)
	case OpUnion:
		v.s = unionList(v.s, w.s)
	}
}

// scanDest returns a destination for database/sql Scan for a column of kind k.
func scanDest(k ColKind) any {
	switch k {
	case KindInt:
		return new(sql.NullInt64)
	case KindFloat:
		return new(sql.NullFloat64)
	}
	return new(sql.NullString)
}

// fromScan converts a scanned destination back into a val.
func fromScan(d any, k ColKind) (val, error) {
	switch d := d.(type) {
	case *sql.NullInt64:
		if !d.Valid {
			return val{}, nil
		}
		return intVal(d.Int64), nil
	case *sql.NullFloat64:
		if !d.Valid {
			return val{}, nil
		}
		return floatVal(d.Float64), nil
	case *sql.NullString:
		if !d.Valid {
			return val{}, nil
		}
		if k == KindExact {
			b, ok := new(big.Int).SetString(d.String, 10)
			if !ok {
				return val{}, fmt.Errorf("not an exact integer: %q", d.String)
			}
			return bigVal(b), nil
		}
		if k == KindHist {
			h, err := parseSparse(d.String)
			if err != nil {
				return val{}, err
			}
			return histVal(h), nil
		}
		return strVal(d.String), nil
	}
	return val{}, fmt.Errorf("unexpected scan type %T", d)
}
