package loader

import (
	"fmt"
	"math"
)

// recordType maps one spool observation type (docs/spool.md) to its table(s).
// Adding a type is adding one recordType to recordTypes: its table name, its
// time column and its fields (each a database column plus the spool column it
// comes from). Nothing else in the loader names a type, except flows, which
// are definitions rather than observations.
type recordType struct {
	Type  string // spool type: directory and file name prefix
	Table string // table name; for aggregated types the base of <Table>_1m, _1h, _1d
	// Aggregate: rows are merged per key (the OpKey fields, Time rounded down
	// to the minute, hour or day) with each field's AggOp. Otherwise each spool
	// line is one row, identified by (Time, file_id, line).
	Aggregate bool
	Time      string  // database column holding the row's time (ns); partitions and retention use it
	PerPacket bool    // per-packet records: loaded only with Config.PerPacket
	Fields    []field // in table column order

	tables []*Table // derived by init: one table, or one per level for aggregates
	needs  []string // spool columns every file's header must name
}

// recordTypes lists the observation types the loader knows, in the order in
// which files of the same interval are loaded.
var recordTypes = []*recordType{
	{
		Type: "owd_stats", Table: "owd_stats", Aggregate: true, Time: "start_ns",
		Fields: concat(
			[]field{
				fInt("start_ns", "interval_start", OpKey, false),
				fFlow(),
				fStr("hop_from", "hop_from", 64, OpKey, false),
				fStr("hop_to", "hop_to", 64, OpKey, false),
				fOne("samples"),
				fInt("count", "count", OpSum, false),
				fInt("sum_ns", "sum_ns", OpSum, true),
				fExact("sumsq_ns2", "sumsq_ns2"),
				fInt("min_ns", "min_ns", OpMin, true),
				fInt("max_ns", "max_ns", OpMax, true),
			},
			counterStats("lost", false),
			counterStats("missed", false),
			// Not in spool version 1 (the collector reports dropped
			// observations as events); loaded when a later version adds it.
			counterStats("dropped", true),
			counterStats("duplicate", false),
			counterStats("reordered", false),
			counterStats("clashes", false),
		),
	},
	{
		Type: "owd_hist", Table: "owd_hist", Aggregate: true, Time: "start_ns",
		Fields: []field{
			fInt("start_ns", "interval_start", OpKey, false),
			fFlow(),
			fStr("hop_from", "hop_from", 64, OpKey, false),
			fStr("hop_to", "hop_to", 64, OpKey, false),
			fInt("slice", "slice", OpKey, false),
			fEdge("lo_ns", "lo_ns", math.MinInt64),
			fEdge("hi_ns", "hi_ns", math.MaxInt64),
			fInt("count", "count", OpSum, false),
		},
	},
	{
		Type: "owd_packet", Table: "owd_packet", Time: "start_ns", PerPacket: true,
		Fields: []field{
			fInt("start_ns", "interval_start", OpKey, false),
			fFlow(),
			fHex("sig", "sig"),
			fStr("hop_from", "hop_from", 64, OpKey, false),
			fStr("hop_to", "hop_to", 64, OpKey, false),
			fInt("t_from", "t_from", OpKey, true),
			fInt("t_to", "t_to", OpKey, true),
			fInt("delay_ns", "delay_ns", OpKey, true),
		},
	},
	{
		Type: "owd_incomplete", Table: "owd_incomplete", Time: "start_ns", PerPacket: true,
		Fields: []field{
			fInt("start_ns", "interval_start", OpKey, false),
			fFlow(),
			fHex("sig", "sig"),
			fStr("kind", "kind", 16, OpKey, false),
			fText("hops", "hops"),
		},
	},
	{
		Type: "events", Table: "events", Time: "time_ns",
		Fields: []field{
			fInt("time_ns", "time", OpKey, false),
			fCollector(),
			fStr("source", "source", 128, OpKey, false),
			fStr("kind", "kind", 64, OpKey, false),
			fText("detail", "detail"),
		},
	},
}

// flowsType is the flow dictionary: its rows feed the flows and flow_ids
// tables through the flow map (flows.go) instead of a table of their own.
var flowsType = &recordType{
	Type: "flows",
	Fields: []field{
		fInt("first_ns", "time", OpKey, true),
		fInt("cflow", "flow", OpKey, false),
		fStr("class", "class", 64, OpKey, false),
		fText("flow_key", "key"), // empty: a class without granular fields
	},
}

// typeByName finds a known spool type, flows included.
func typeByName(name string) *recordType {
	if name == flowsType.Type {
		return flowsType
	}
	for _, rt := range recordTypes {
		if rt.Type == name {
			return rt
		}
	}
	return nil
}

func concat(parts ...[]field) []field {
	var out []field
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func init() {
	for _, rt := range append([]*recordType{flowsType}, recordTypes...) {
		if err := rt.derive(); err != nil {
			panic(err) // a programming error in the declarations above
		}
	}
}

// derive builds a type's table definitions from its fields.
func (rt *recordType) derive() error {
	seen := map[string]bool{}
	hasFlow := false
	for _, f := range rt.Fields {
		if seen[f.Name] {
			return fmt.Errorf("loader: type %s: column %s twice", rt.Type, f.Name)
		}
		seen[f.Name] = true
		hasFlow = hasFlow || f.Name == "flow_id"
		for _, n := range f.needs {
			if !contains(rt.needs, n) {
				rt.needs = append(rt.needs, n)
			}
		}
	}
	if rt == flowsType {
		return nil
	}
	if !seen[rt.Time] {
		return fmt.Errorf("loader: type %s: time column %q is not a field", rt.Type, rt.Time)
	}
	cols := make([]Column, len(rt.Fields))
	for i, f := range rt.Fields {
		cols[i] = f.Column
	}
	var idx [][]string
	if hasFlow {
		idx = [][]string{{"flow_id", rt.Time}}
	}
	if !rt.Aggregate {
		cols = append(cols, Column{Name: "file_id", Kind: KindInt}, Column{Name: "line", Kind: KindInt})
		rt.tables = []*Table{{
			Name: rt.Table, Columns: cols, Key: []string{rt.Time, "file_id", "line"},
			Indexes: idx, Time: rt.Time, Class: "rec",
		}}
		return nil
	}
	var key []string
	for _, c := range cols {
		if c.Op == OpKey {
			if c.Null {
				return fmt.Errorf("loader: type %s: key column %s may be NULL", rt.Type, c.Name)
			}
			key = append(key, c.Name)
		}
	}
	for _, l := range levels {
		rt.tables = append(rt.tables, &Table{
			Name: rt.Table + "_" + l.Suffix, Columns: cols, Key: key,
			Indexes: idx, Time: rt.Time, Class: l.Suffix,
		})
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// allTables lists every table of the schema, system tables first.
func allTables() []*Table {
	ts := []*Table{&flowsTable, &flowIDsTable, &loadedFilesTable, &badLinesTable}
	for _, rt := range recordTypes {
		ts = append(ts, rt.tables...)
	}
	return ts
}
