package loader

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
)

// Per-class aggregates per collector (docs/loader.md "Per-class
// aggregates"): beside the class rows that take each figure once from the
// collectors' picks (aggregate.go), the same merge of a class's flows for
// each collector's own rows, for a report of one collector among several.
// No pick is involved: a batch is one run's rows of every collector, each
// row adds to its collector's class row with the per-flow merge rules, so
// they are kept in step by merging alone (a minimum never has to be taken
// back out).

// collClassSchema lists the per-class per-collector tables: stats, hist,
// metrics at each level, in the order of classSchema. Their columns are the
// per-flow table's, flow_id replaced by class, plus collector at the end
// (part of the key, after class).
var collClassSchema = sync.OnceValue(func() []*classTable {
	var out []*classTable
	for _, pt := range classSchema() {
		ft := pt.flow
		cols := slices.Clone(ft.Columns)
		cols[pt.flowCol] = Column{Name: "class", Kind: KindStr, Size: flowsTable.col("class").Size, Op: OpKey}
		cols = append(cols, Column{Name: "collector", Kind: KindStr, Size: flowsTable.col("collector").Size, Op: OpKey})
		key := slices.Clone(ft.Key)
		ki := indexOf(key, "flow_id")
		key[ki] = "class"
		key = slices.Insert(key, ki+1, "collector")
		ct := *pt
		ct.t = &Table{
			Name: pt.base + "_class_collector_" + levels[pt.level].Suffix, Columns: cols, Key: key,
			Time: ft.Time, Class: ft.Class, derive: ft.derive,
		}
		ct.collCol = len(cols) - 1
		ct.byCollector = true
		out = append(out, &ct)
	}
	return out
})

// collClassDelta adds a batch's per-flow rows of ct.flow to the rows of
// ct (one collector's class rows).
func collClassDelta(ct *classTable, set *aggSet, flows map[int64]*flowRow) *aggSet {
	out := &aggSet{rows: map[string][]val{}}
	for _, k := range set.order {
		row := set.rows[k]
		f := flows[row[ct.flowCol].i]
		addCollRow(ct, out, row, f.class, f.collector)
	}
	return out
}

// addCollRow merges one per-flow row of a flow of class and collector into
// the matching row of out.
func addCollRow(ct *classTable, out *aggSet, row []val, class, collector string) {
	key := ct.collRowKey(row, class, collector)
	cur, ok := out.rows[key]
	if !ok {
		cur = make([]val, len(ct.t.Columns))
		for i, c := range ct.flow.Columns {
			if c.Op == OpKey {
				cur[i] = row[i]
			}
		}
		cur[ct.flowCol] = strVal(class)
		cur[ct.collCol] = strVal(collector)
		out.rows[key] = cur
		out.order = append(out.order, key)
	}
	for i, c := range ct.flow.Columns {
		if i != ct.flowCol {
			cur[i].merge(row[i], c.Op)
		}
	}
}

// collRowKey is the map key of a per-collector class row: the per-flow
// row's key columns with class for flow_id, then the collector.
func (ct *classTable) collRowKey(row []val, class, collector string) string {
	var key []byte
	for i, c := range ct.flow.Columns {
		if c.Op != OpKey {
			continue
		}
		v := row[i]
		if i == ct.flowCol {
			v = strVal(class)
		}
		key = v.appendKey(key, ct.t.Columns[i].Kind)
	}
	return string(strVal(collector).appendKey(key, KindStr))
}

// backfillCollClass builds the per-collector class tables of a database
// loaded by a loader older than them: for each level whose
// owd_stats_class_collector table is empty while the per-flow one has rows,
// every row is computed from the per-flow rows, in one transaction per
// level (a crash leaves the level empty, and the next run starts it again).
// The day level is built last: reports read these tables once its table
// has rows.
func (l *Loader) backfillCollClass(ctx context.Context, conn *sql.Conn) error {
	return l.backfill(ctx, conn, collClassSchema(), "per-collector class", func(tx *sql.Tx, _ int, cts []*classTable, where string, args []any) (int, error) {
		n := 0
		for _, ct := range cts {
			out := &aggSet{rows: map[string][]val{}}
			err := readFlowRows(ctx, l.d, tx, ct.flow, where, args, func(fr *flowRead) {
				addCollRow(ct, out, fr.vals, fr.class, fr.collector)
			})
			if err == nil {
				err = writeClassRows(ctx, l.d, tx, ct, out)
			}
			if err != nil {
				return n, err
			}
			n += len(out.order)
		}
		return n, nil
	})
}

// rowDays lists the UTC days of the per-flow rows (those of owd_stats_1d,
// and the days of lo and hi): the partitions a backfill needs.
func (l *Loader) rowDays(ctx context.Context, conn *sql.Conn, lo, hi int64) ([]int64, error) {
	var days []int64
	rows, err := conn.QueryContext(ctx, fmt.Sprintf("SELECT DISTINCT %s FROM %s", l.d.Quote("start_ns"), l.d.Quote(typeByName("owd_stats").tables[2].Name)))
	if err != nil {
		return nil, fmt.Errorf("loader: read days: %w", err)
	}
	for rows.Next() {
		var d int64
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return nil, fmt.Errorf("loader: read days: %w", err)
		}
		days = append(days, floorTo(d, dayNs))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("loader: read days: %w", err)
	}
	days = append(days, floorTo(lo, dayNs), floorTo(hi, dayNs))
	slices.Sort(days)
	return slices.Compact(days), nil
}

// writeClassRows inserts (upserts) the rows of out, derived columns
// computed, in key order.
func writeClassRows(ctx context.Context, d dialect, q querier, ct *classTable, out *aggSet) error {
	slices.Sort(out.order)
	rows := make([][]any, 0, len(out.order))
	for _, k := range out.order {
		row := out.rows[k]
		if ct.t.derive != nil {
			ct.t.derive(row)
		}
		a := make([]any, len(row))
		for i, c := range ct.t.Columns {
			a[i] = row[i].arg(c.Kind)
		}
		rows = append(rows, a)
	}
	return insertRows(ctx, d, q, ct.t, colNames(ct.t), rows, d.UpsertSuffix(ct.t))
}
