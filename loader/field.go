package loader

import (
	"fmt"
	"math/big"
	"strconv"
)

// A field is one database column together with how its value comes out of a
// spool row. A record type is a list of fields (types.go); the constructors
// below cover the spool's value conventions (docs/spool.md).
type field struct {
	Column
	needs []string // spool columns the file header must name
	get   func(r *row) (val, error)
}

// row is one spool line being loaded, with access to its columns by name.
type row struct {
	f    []string
	pos  []int // spoolCol id → index in f, -1 when the header lacks it
	file *spoolFile
	res  flowResolver
	// The last flow resolved (fFlow): a file's rows come flow by flow.
	lastFlow  int64
	lastClass string
	lastID    int64
}

// spoolCol is a spool column name interned when the record types are
// declared: a field finds its value in a line by index, instead of hashing
// the name for every field of every line.
type spoolCol struct {
	id   int
	name string
}

var spoolColIDs = map[string]int{}

func colOf(name string) spoolCol {
	id, ok := spoolColIDs[name]
	if !ok {
		id = len(spoolColIDs)
		spoolColIDs[name] = id
	}
	return spoolCol{id, name}
}

// columnPositions maps every interned spool column to its index in a file
// whose header is hdr (-1: absent).
func columnPositions(hdr map[string]int) []int {
	pos := make([]int, len(spoolColIDs))
	for name, id := range spoolColIDs {
		i, ok := hdr[name]
		if !ok {
			i = -1
		}
		pos[id] = i
	}
	return pos
}

// flowResolver turns a collector flow id into the database flow id.
type flowResolver interface {
	flowRef(collector string, cflow int64, class string) (int64, error)
}

// col returns the raw text of spool column c ("" when absent or empty).
func (r *row) col(c spoolCol) string {
	if i := r.pos[c.id]; i >= 0 && i < len(r.f) {
		return r.f[i]
	}
	return ""
}

func parseInt(r *row, c spoolCol) (val, error) {
	s := r.col(c)
	if s == "" {
		return val{}, nil
	}
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return val{}, fmt.Errorf("%s %q: not an integer", c.name, s)
	}
	return intVal(i), nil
}

func required(v val, name string, err error) (val, error) {
	if err == nil && !v.ok {
		err = fmt.Errorf("%s: empty", name)
	}
	return v, err
}

// fInt is an integer column; an empty field is NULL when null, an error otherwise.
func fInt(db, spool string, op AggOp, null bool) field {
	c := colOf(spool)
	return field{
		Column: Column{Name: db, Kind: KindInt, Null: null, Op: op},
		needs:  []string{spool},
		get: func(r *row) (val, error) {
			v, err := parseInt(r, c)
			if null {
				return v, err
			}
			return required(v, spool, err)
		},
	}
}

// fOptInt is an integer column that older spool versions may not have (the
// header need not name it): NULL when absent.
func fOptInt(db, spool string, op AggOp) field {
	f := fInt(db, spool, op, true)
	f.needs = nil
	return f
}

// fStr is a short string column; empty is an error (keys) unless null.
func fStr(db, spool string, size int, op AggOp, null bool) field {
	c := colOf(spool)
	return field{
		Column: Column{Name: db, Kind: KindStr, Size: size, Null: null, Op: op},
		needs:  []string{spool},
		get: func(r *row) (val, error) {
			s := r.col(c)
			if s == "" {
				if null {
					return val{}, nil
				}
				return val{}, fmt.Errorf("%s: empty", spool)
			}
			if len(s) > size {
				return val{}, fmt.Errorf("%s: longer than %d bytes", spool, size)
			}
			// A string that fits but is not UTF-8 (a name the probe cut
			// in a character) grows with its escapes: it is cut, whole
			// characters and escapes only, rather than the row refused.
			v := textVal(s)
			if len(v.s) > size {
				v.s = cutText(v.s, size)
			}
			return v, nil
		},
	}
}

// fText is a free-text column; empty stays an empty string.
func fText(db, spool string) field {
	c := colOf(spool)
	return field{
		Column: Column{Name: db, Kind: KindText},
		needs:  []string{spool},
		get:    func(r *row) (val, error) { return textVal(r.col(c)), nil },
	}
}

// fExact is an exact integer of any length (sumsq_ns2); empty is NULL.
func fExact(db, spool string) field {
	c := colOf(spool)
	return field{
		Column: Column{Name: db, Kind: KindExact, Null: true, Op: OpSumExact},
		needs:  []string{spool},
		get: func(r *row) (val, error) {
			s := r.col(c)
			if s == "" {
				return val{}, nil
			}
			b, ok := new(big.Int).SetString(s, 10)
			if !ok {
				return val{}, fmt.Errorf("%s %q: not an integer", spool, s)
			}
			if b.Sign() < 0 || len(s) > 38 {
				return val{}, fmt.Errorf("%s %q: outside 0..10^38", spool, s)
			}
			return bigVal(b), nil
		},
	}
}

// fSquare is the exact square of an integer spool column: the sum-of-squares
// part of a counter's statistics.
func fSquare(db, spool string, optional bool) field {
	c := colOf(spool)
	f := field{
		Column: Column{Name: db, Kind: KindExact, Null: true, Op: OpSumExact},
		needs:  []string{spool},
		get: func(r *row) (val, error) {
			v, err := parseInt(r, c)
			if err != nil || !v.ok {
				return val{}, err
			}
			b := big.NewInt(v.i)
			return bigVal(b.Mul(b, b)), nil
		},
	}
	if optional {
		f.needs = nil
	}
	return f
}

// fOne counts the spool rows merged into an aggregated row.
func fOne(db string) field {
	return field{
		Column: Column{Name: db, Kind: KindInt, Op: OpSum},
		get:    func(*row) (val, error) { return intVal(1), nil },
	}
}

// fHex is a hexadecimal spool value (signatures) stored as an integer.
func fHex(db, spool string) field {
	c := colOf(spool)
	return field{
		Column: Column{Name: db, Kind: KindInt, Null: true},
		needs:  []string{spool},
		get: func(r *row) (val, error) {
			s := r.col(c)
			if s == "" {
				return val{}, nil
			}
			u, err := strconv.ParseUint(s, 16, 63)
			if err != nil {
				return val{}, fmt.Errorf("%s %q: not hexadecimal", spool, s)
			}
			return intVal(int64(u)), nil
		},
	}
}

// fEdge is a histogram slice edge; the open edge (empty field) is stored as
// the sentinel ifEmpty so that edges can be part of the key (NULL can't).
func fEdge(db, spool string, ifEmpty int64) field {
	c := colOf(spool)
	return field{
		Column: Column{Name: db, Kind: KindInt, Op: OpKey},
		needs:  []string{spool},
		get: func(r *row) (val, error) {
			v, err := parseInt(r, c)
			if err == nil && !v.ok {
				v = intVal(ifEmpty)
			}
			return v, err
		},
	}
}

// fCollector is the name of the collector whose spool the file came from.
func fCollector() field {
	return field{
		Column: Column{Name: "collector", Kind: KindStr, Size: 64, Op: OpKey},
		get:    func(r *row) (val, error) { return strVal(r.file.collector), nil },
	}
}

// fFlow is the database flow id of the row's (class, flow) columns.
func fFlow() field {
	flow, cls := colOf("flow"), colOf("class")
	return field{
		Column: Column{Name: "flow_id", Kind: KindInt, Op: OpKey},
		needs:  []string{"class", "flow"},
		get: func(r *row) (val, error) {
			v, err := parseInt(r, flow)
			if v, err = required(v, "flow", err); err != nil {
				return v, err
			}
			class := r.col(cls)
			if class == "" {
				return val{}, fmt.Errorf("class: empty")
			}
			if r.lastID != 0 && v.i == r.lastFlow && class == r.lastClass {
				return intVal(r.lastID), nil
			}
			id, err := r.res.flowRef(r.file.collector, v.i, class)
			if err == nil {
				r.lastFlow, r.lastClass, r.lastID = v.i, class, id
			}
			return intVal(id), err
		},
	}
}

// counterStats is a per-interval counter kept as the statistics of its
// values over the merged spool rows: sum, sum of squares, min and max (the
// population is the table's "samples" column).
func counterStats(spool string, optional bool) []field {
	get := fInt
	if optional {
		get = func(db, spool string, op AggOp, _ bool) field { return fOptInt(db, spool, op) }
	}
	return []field{
		get(spool+"_sum", spool, OpSum, true),
		fSquare(spool+"_sumsq", spool, optional),
		get(spool+"_min", spool, OpMin, true),
		get(spool+"_max", spool, OpMax, true),
	}
}

// fHist is a sparse log-linear histogram (docs/spool.md), merged bucket by
// bucket; an empty field is an empty histogram, not NULL, since "no value"
// is a distribution like any other and merges as such.
func fHist(db, spool string) field {
	c := colOf(spool)
	return field{
		Column: Column{Name: db, Kind: KindHist, Op: OpHist},
		needs:  []string{spool},
		get: func(r *row) (val, error) {
			h, err := parseSparse(r.col(c))
			if err != nil {
				return val{}, fmt.Errorf("%s: %w", spool, err)
			}
			return histVal(h), nil
		},
	}
}

// fCalc is an integer computed from several spool columns of the row (all
// required by the header); fn sees them parsed, and a NULL result when one
// is empty.
func fCalc(db string, op AggOp, spool []string, fn func(v []int64) int64) field {
	cs := make([]spoolCol, len(spool))
	for i, s := range spool {
		cs[i] = colOf(s)
	}
	return field{
		Column: Column{Name: db, Kind: KindInt, Null: true, Op: op},
		needs:  spool,
		get: func(r *row) (val, error) {
			v := make([]int64, len(spool))
			for i, s := range cs {
				x, err := parseInt(r, s)
				if err != nil || !x.ok {
					return val{}, err
				}
				v[i] = x.i
			}
			return intVal(fn(v)), nil
		},
	}
}

// fCountIf counts the merged rows whose spool column satisfies is (1 or 0
// per row, summed). The column may be missing from older spool versions: then
// the value is NULL, "not known", rather than a count of 0.
func fCountIf(db, spool string, is func(s string) (bool, error)) field {
	c := colOf(spool)
	return field{
		Column: Column{Name: db, Kind: KindInt, Null: true, Op: OpSum},
		get: func(r *row) (val, error) {
			if r.pos[c.id] < 0 {
				return val{}, nil
			}
			yes, err := is(r.col(c))
			if err != nil {
				return val{}, fmt.Errorf("%s %q: %w", spool, r.col(c), err)
			}
			if yes {
				return intVal(1), nil
			}
			return intVal(0), nil
		},
	}
}

// fDerived is a column computed from the merged row by its record type's
// Derive function, never read from the spool nor merged.
func fDerived(db string, kind ColKind) field {
	return field{
		Column: Column{Name: db, Kind: kind, Null: true, Op: OpDerived},
		get:    func(*row) (val, error) { return val{}, nil },
	}
}
