package loader

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Per-class aggregates (docs/loader.md "Per-class aggregates"): for
// owd_stats, owd_hist and owd_metrics at every level, a table keyed by class
// instead of flow, whose row is the merge of the rows of every flow of the
// class, each figure once with redundant collectors (the rows the
// owd_pick_* views choose). A report of a whole class reads one row a step
// from them instead of one a flow (a class of 100 flows: 100 times fewer
// rows, scattered over the file).
//
// They are kept in step with the per-flow rows in the same transaction:
//   - a flow that no other collector also loaded (one collector: every
//     flow) is alone in its pick, so its batch rows add to the class row
//     with the same merge rules as to its own row (exact for every rule);
//   - for a flow that another collector also loaded, the class row follows
//     the pick (aggregate_pick.go): the picked flow's batch rows add to it
//     while the pick stays; when it moves, the key is recomputed from the
//     per-flow rows after they are written (aggregate_rebuild.go), since a
//     minimum cannot be taken back out.

// classBases are the per-flow aggregated types that have per-class tables.
var classBases = []string{"owd_stats", "owd_hist", "owd_metrics"}

// classTable is the per-class companion of one per-flow aggregated table
// (owd_stats_1m → owd_stats_class_1m). Its columns are the per-flow table's
// in the same order, flow_id replaced by class, plus collectors at the end,
// so a per-flow row merges into a class row column by column.
type classTable struct {
	flow    *Table
	t       *Table
	base    string
	level   int // index in levels
	flowCol int // flow_id in flow, class in t
	collCol int // collectors in t (collector: byCollector)
	// byCollector: one collector's rows merged (aggregate_coll.go), not
	// the picks.
	byCollector bool
	// start_ns, hop_from, hop_to (both tables)
	startCol, fromCol, toCol int
}

// classSchema lists the per-class tables, stats, hist, metrics at each
// level. Built on first use: the per-flow tables are made by types.go's init.
var classSchema = sync.OnceValue(func() []*classTable {
	var out []*classTable
	for li := range levels {
		for _, base := range classBases {
			ft := typeByName(base).tables[li]
			cols := slices.Clone(ft.Columns)
			names := colNames(ft)
			fi := indexOf(names, "flow_id")
			cols[fi] = Column{Name: "class", Kind: KindStr, Size: flowsTable.col("class").Size, Op: OpKey}
			cols = append(cols, Column{Name: "collectors", Kind: KindText, Op: OpUnion})
			key := slices.Clone(ft.Key)
			key[indexOf(key, "flow_id")] = "class"
			out = append(out, &classTable{
				flow: ft,
				t: &Table{
					Name: base + "_class_" + levels[li].Suffix, Columns: cols, Key: key,
					Time: ft.Time, Class: ft.Class,
					// Derive names columns, and every named one has the
					// same position as in the per-flow table.
					derive: ft.derive,
				},
				base: base, level: li, flowCol: fi, collCol: len(cols) - 1,
				startCol: indexOf(names, "start_ns"), fromCol: indexOf(names, "hop_from"), toCol: indexOf(names, "hop_to"),
			})
		}
	}
	return out
})

// classTables lists the per-class tables for allTables.
func classTables() []*Table {
	var out []*Table
	for _, ct := range append(classSchema(), collClassSchema()...) {
		out = append(out, ct.t)
	}
	return out
}

// classKey is a class row's key without the histogram slice: what a
// recomputation redoes at once for the three tables of a level.
type classKey struct {
	start           int64
	class, from, to string
}

// classWork is what a batch changes in the per-class tables: rows to merge
// (flows alone in their pick) and keys to recompute, per level.
type classWork struct {
	delta map[*classTable]*aggSet
	redo  [3]map[classKey]bool
}

// siblings lists the flows of every (class, flow key): more than one means
// several collectors loaded the flow. Placeholders (no key) are alone.
func (m *flowView) siblings() map[[2]string][]*flowRow {
	n := map[[2]string][]*flowRow{}
	for _, f := range m.info {
		if f.key.ok {
			k := [2]string{f.class, f.key.s}
			n[k] = append(n[k], f)
		}
	}
	return n
}

// classPrepare computes, before a batch's per-flow rows are merged (which
// changes them in place), its changes to the per-class tables, and makes
// their partitions (DDL on MySQL: outside the transaction).
func (r *run) classPrepare(ctx context.Context, b *batch) (*classWork, error) {
	w := &classWork{delta: map[*classTable]*aggSet{}}
	for i := range w.redo {
		w.redo[i] = map[classKey]bool{}
	}
	sib := b.flows.siblings()
	shared := func(f *flowRow) bool { return f.key.ok && len(sib[[2]string{f.class, f.key.s}]) > 1 }
	cts := classSchema()
	// Rows of flows that another collector also loaded: which flow's rows
	// count is the pick's choice (sharedPicks).
	touched := make([]map[pickKey]string, len(levels))
	// Per level: a minute, its hour and its day can share a start_ns, and
	// each level picks on its own rows.
	picked := make([]map[pickKey]bool, len(levels))
	for _, ct := range cts {
		set := b.aggs[ct.flow]
		if set == nil {
			continue
		}
		if touched[ct.level] == nil {
			touched[ct.level] = map[pickKey]string{}
		}
		for _, row := range set.rows {
			if f := b.flows.info[row[ct.flowCol].i]; shared(f) {
				touched[ct.level][pickKey{row[ct.startCol].i, f.id, row[ct.fromCol].s, row[ct.toCol].s}] = f.class
			}
		}
	}
	// A placeholder that got its key may now share it with another
	// collector's flow: the keys of its rows are picked anew.
	for _, f := range b.flows.updates {
		if shared(f) {
			if err := r.markFlowKeys(ctx, f, w); err != nil {
				return nil, err
			}
		}
	}
	for li := range levels {
		picked[li] = map[pickKey]bool{}
		if err := r.sharedPicks(ctx, b, li, sib, touched[li], picked[li], w.redo[li]); err != nil {
			return nil, err
		}
	}
	for _, ct := range cts {
		set := b.aggs[ct.flow]
		if set == nil {
			continue
		}
		out := &aggSet{rows: map[string][]val{}}
		var key []byte
		for _, k := range set.order {
			row := set.rows[k]
			f := b.flows.info[row[ct.flowCol].i]
			if w.redo[ct.level][ct.keyOf(row, f.class)] {
				continue
			}
			if shared(f) && !picked[ct.level][pickKey{row[ct.startCol].i, f.id, row[ct.fromCol].s, row[ct.toCol].s}] {
				continue // another collector's rows count here
			}
			class := strVal(f.class)
			key = key[:0]
			for i, c := range ct.t.Columns {
				if c.Op == OpKey {
					v := row[i]
					if i == ct.flowCol {
						v = class
					}
					key = v.appendKey(key, c.Kind)
				}
			}
			cur, ok := out.rows[string(key)]
			if !ok {
				cur = make([]val, len(ct.t.Columns))
				for i, c := range ct.t.Columns {
					if c.Op == OpKey {
						cur[i] = row[i]
					}
				}
				cur[ct.flowCol] = class
				out.rows[string(key)] = cur
				out.order = append(out.order, string(key))
			}
			for i, v := range row {
				cur[i].merge(v, ct.flow.Columns[i].Op)
			}
			cur[ct.collCol].merge(strVal(f.collector), OpUnion)
		}
		if len(out.order) > 0 {
			w.delta[ct] = out
		}
	}
	for _, ct := range collClassSchema() {
		if set := b.aggs[ct.flow]; set != nil {
			w.delta[ct] = collClassDelta(ct, set, b.flows.info)
		}
	}
	// Partitions, once per day and table in a run: the loader holds the
	// lock, and retention runs after the load.
	if r.classDays == nil {
		r.classDays = map[*Table]map[int64]bool{}
	}
	for _, ct := range append(cts, collClassSchema()...) {
		done := r.classDays[ct.t]
		if done == nil {
			done = map[int64]bool{}
			r.classDays[ct.t] = done
		}
		days := map[int64]bool{}
		add := func(start int64) {
			if d := floorTo(start, dayNs); !done[d] {
				days[d] = true
			}
		}
		if set := w.delta[ct]; set != nil {
			for _, row := range set.rows {
				add(row[ct.startCol].i)
			}
		}
		if !ct.byCollector {
			for k := range w.redo[ct.level] {
				add(k.start)
			}
		}
		if len(days) > 0 {
			if err := r.d.EnsurePartitions(ctx, r.conn, ct.t, sortedKeys(days)); err != nil {
				return nil, err
			}
			for d := range days {
				done[d] = true
			}
		}
	}
	return w, nil
}

func (ct *classTable) keyOf(row []val, class string) classKey {
	return classKey{row[ct.startCol].i, class, row[ct.fromCol].s, row[ct.toCol].s}
}

// markFlowKeys adds the keys of every per-flow row of f to the keys to
// recompute.
func (r *run) markFlowKeys(ctx context.Context, f *flowRow, w *classWork) error {
	for _, ct := range classSchema() {
		q := fmt.Sprintf("SELECT DISTINCT %s, %s, %s FROM %s WHERE %s = ?", r.d.Quote("start_ns"), r.d.Quote("hop_from"),
			r.d.Quote("hop_to"), r.d.Quote(ct.flow.Name), r.d.Quote("flow_id"))
		rows, err := r.conn.QueryContext(ctx, q, f.id)
		if err != nil {
			return fmt.Errorf("read %s: %w", ct.flow.Name, err)
		}
		for rows.Next() {
			k := classKey{class: f.class}
			if err := rows.Scan(&k.start, &k.from, &k.to); err != nil {
				rows.Close()
				return fmt.Errorf("read %s: %w", ct.flow.Name, err)
			}
			w.redo[ct.level][k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read %s: %w", ct.flow.Name, err)
		}
	}
	return nil
}

// classWrite applies a batch's changes to the per-class tables, after its
// per-flow rows are written, in the same transaction.
func (r *run) classWrite(ctx context.Context, tx querier, w *classWork) error {
	for _, ct := range append(classSchema(), collClassSchema()...) {
		if set := w.delta[ct]; set != nil {
			if err := r.mergeAgg(ctx, tx, ct.t, set); err != nil {
				return err
			}
		}
	}
	for li, keys := range w.redo {
		if len(keys) == 0 {
			continue
		}
		times := map[int64]bool{}
		classes := map[string]bool{}
		for k := range keys {
			times[k.start] = true
			classes[k.class] = true
		}
		ts := sortedKeys(times)
		cs := make([]string, 0, len(classes))
		for c := range classes {
			cs = append(cs, c)
		}
		slices.Sort(cs)
		for i := 0; i < len(ts); i += 500 {
			part := ts[i:min(i+500, len(ts))]
			where := fmt.Sprintf("t.%s IN (%s) AND f.%s IN (%s)", r.d.Quote("start_ns"), placeholders(len(part)),
				r.d.Quote("class"), placeholders(len(cs)))
			args := int64Args(part)
			for _, c := range cs {
				args = append(args, c)
			}
			if _, err := recomputeClass(ctx, r.d, tx, li, where, args, func(k classKey) bool { return keys[k] }); err != nil {
				return err
			}
		}
	}
	return nil
}

// unionList merges two sorted comma-separated lists of names.
func unionList(a, b string) string {
	if a == b || b == "" {
		return a
	}
	if a == "" {
		return b
	}
	names := append(strings.Split(a, ","), strings.Split(b, ",")...)
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ",")
}
