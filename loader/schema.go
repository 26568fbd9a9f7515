package loader

// The schema is described in Go values, not in SQL text, so that one
// description serves both dialects and the aggregation code knows each
// column's merge rule.

// ColKind is the kind of a database column; the dialect maps it to a SQL type.
type ColKind int

const (
	KindInt   ColKind = iota // 64-bit signed integer: times (ns), counts, ids
	KindExact                // exact integer up to 38 digits: sums of squares (DECIMAL(38,0) / TEXT)
	KindStr                  // short indexable string of at most Column.Size characters
	KindText                 // long free text, never part of a key
	KindFloat                // IEEE double: ratios and confidence intervals, always derived (OpDerived)
	KindHist                 // sparse log-linear histogram (hist package, docs/spool.md), text of any length
)

// AggOp is how a column of an aggregated table merges two rows with the same key.
type AggOp int

const (
	OpKey      AggOp = iota // part of the key; equal in both rows
	OpSum                   // sum (int64)
	OpSumExact              // sum with exact arithmetic (KindExact)
	OpMin                   // minimum; NULL means "no value" and loses to any value
	OpMax                   // maximum; NULL as for OpMin
	OpHist                  // histogram: counts of equal bucket keys add up (exact)
	// OpDerived columns are not merged: they are a function of the row's
	// merged columns (a quantile of a merged histogram, a ratio of summed
	// counts), recomputed by the field's derive function before every write.
	OpDerived
	// OpUnion is a set of names (KindText, sorted, comma-separated): the
	// union of both (the collectors whose rows a per-class row merges).
	OpUnion
)

// Column is one database column.
type Column struct {
	Name string
	Kind ColKind
	Size int  // characters, KindStr only
	Null bool // may hold NULL (spool: empty field)
	Op   AggOp
}

// Table is one database table.
type Table struct {
	Name    string
	Columns []Column
	Key     []string   // primary key
	Unique  [][]string // further unique keys (never on partitioned tables)
	Indexes [][]string // secondary indexes
	// OldKey is the primary key an older loader gave the table, with an
	// index on (flow_id, Time) beside it; createSchema gives such a
	// table Key instead (dialect Rekey). Nil: the key never changed.
	OldKey []string
	// Time is the column (ns since the epoch) that partitions the table by day
	// on MySQL and that retention compares; "" for tables never partitioned and
	// never expired.
	Time string
	// Class names the retention setting that applies: "1m", "1h", "1d" or
	// "rec" (individual records); "" for tables kept forever.
	Class string
	// derive recomputes the OpDerived columns of a merged row (nil: none).
	derive func(row []val)
}

// col returns the column named name, or nil.
func (t *Table) col(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// Granularities of the aggregated tables, finest first: the table of a type
// is named <type>_<suffix>.
var levels = []struct {
	Suffix string
	Ns     int64
}{
	{"1m", 60e9},
	{"1h", 3600e9},
	{"1d", 86400e9},
}

const dayNs = 86400e9

// floorTo rounds t (ns) down to a multiple of step, also for negative t.
func floorTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}

// System tables: the flow dictionary and the loader's own bookkeeping.
var (
	flowsTable = Table{
		Name: "flows",
		Columns: []Column{
			{Name: "id", Kind: KindInt},
			{Name: "collector", Kind: KindStr, Size: 64},
			{Name: "class", Kind: KindStr, Size: 64},
			// NULL until the definition is loaded (a row referred to the
			// collector flow id before its flows file was complete).
			{Name: "flow_key", Kind: KindStr, Size: 500, Null: true},
			{Name: "first_ns", Kind: KindInt, Null: true},
		},
		Key:    []string{"id"},
		Unique: [][]string{{"collector", "class", "flow_key"}},
	}
	flowIDsTable = Table{
		Name: "flow_ids",
		Columns: []Column{
			{Name: "collector", Kind: KindStr, Size: 64},
			{Name: "cflow", Kind: KindInt},
			{Name: "flow_id", Kind: KindInt},
		},
		Key: []string{"collector", "cflow"},
	}
	loadedFilesTable = Table{
		Name: "loaded_files",
		Columns: []Column{
			{Name: "id", Kind: KindInt},
			{Name: "collector", Kind: KindStr, Size: 64},
			{Name: "name", Kind: KindStr, Size: 255},
			{Name: "size", Kind: KindInt},
			{Name: "sha256", Kind: KindStr, Size: 64},
			{Name: "rows_loaded", Kind: KindInt},
			{Name: "rows_bad", Kind: KindInt},
			{Name: "loaded_ns", Kind: KindInt},
		},
		Key:    []string{"id"},
		Unique: [][]string{{"collector", "name"}},
	}
	badLinesTable = Table{
		Name: "bad_lines",
		Columns: []Column{
			{Name: "file_id", Kind: KindInt},
			{Name: "line", Kind: KindInt},
			{Name: "text", Kind: KindText},
			{Name: "error", Kind: KindText},
		},
		Key: []string{"file_id", "line"},
	}
)
