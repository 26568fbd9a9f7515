package loader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"
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
//   - a key touched by a flow that another collector also loaded is
//     recomputed from the per-flow rows after they are written: its pick
//     may change, and a minimum cannot be taken back out.

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
	collCol int // collectors in t
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
	for _, ct := range classSchema() {
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
func (m *flowMap) siblings() map[[2]string][]*flowRow {
	n := map[[2]string][]*flowRow{}
	for _, f := range m.info {
		if f.key.ok {
			k := [2]string{f.class, f.key.s}
			n[k] = append(n[k], f)
		}
	}
	return n
}

// pickStat is what the pick compares of a flow's owd_stats row.
type pickStat struct {
	collector    string
	count        int64
	lost, missed val // lost_sum, missed_sum (NULL: none)
}

// unacct is lost_sum + missed_sum, NULL when either is (as in SQL).
func (a pickStat) unacct() val {
	if !a.lost.ok || !a.missed.ok {
		return val{}
	}
	return intVal(a.lost.i + a.missed.i)
}

// better is the pick's order: the most delays, then the fewest packets not
// accounted for (NULL first, as SQL sorts it), then the first collector.
func (a pickStat) better(b pickStat) bool {
	if a.count != b.count {
		return a.count > b.count
	}
	au, bu := a.unacct(), b.unacct()
	if au.ok != bu.ok {
		return !au.ok
	}
	if au.i != bu.i {
		return au.i < bu.i
	}
	return a.collector < b.collector
}

// sharedPicks decides, for the keys of level li that the batch touches in
// flows several collectors loaded, which flow's rows the class row follows:
// when the pick is the same flow before and after the batch, the class row
// only gains that flow's batch rows (picked[...] true for it, false for
// the others); when it changes, or there was none, the key is recomputed
// (added to redo). The old picks come from the committed owd_stats rows.
func (r *run) sharedPicks(ctx context.Context, b *batch, li int, sib map[[2]string][]*flowRow, touched map[pickKey]string,
	picked map[pickKey]bool, redo map[classKey]bool) error {
	if len(touched) == 0 {
		return nil
	}
	st := classSchema()[li*len(classBases)]
	cols := colNames(st.flow)
	ci, li2, mi := indexOf(cols, "count"), indexOf(cols, "lost_sum"), indexOf(cols, "missed_sum")
	stat := func(coll string, row []val) pickStat {
		return pickStat{collector: coll, count: row[ci].i, lost: row[li2], missed: row[mi]}
	}
	// Members of every touched group, and the times to read.
	times := map[int64]bool{}
	ids := map[int64]bool{}
	for k, class := range touched {
		times[k.start] = true
		for _, f := range sib[[2]string{class, r.flows.info[k.flow].key.s}] {
			ids[f.id] = true
		}
	}
	old := map[pickKey]pickStat{}
	ts, fs := sortedKeys(times), sortedKeys(ids)
	for i := 0; i < len(ts); i += 500 {
		part := ts[i:min(i+500, len(ts))]
		for j := 0; j < len(fs); j += 500 {
			fpart := fs[j:min(j+500, len(fs))]
			q := fmt.Sprintf("SELECT %s, %s, %s, %s, %s, %s, %s FROM %s WHERE %s IN (%s) AND %s IN (%s)",
				r.d.Quote("start_ns"), r.d.Quote("flow_id"), r.d.Quote("hop_from"), r.d.Quote("hop_to"),
				r.d.Quote("count"), r.d.Quote("lost_sum"), r.d.Quote("missed_sum"), r.d.Quote(st.flow.Name),
				r.d.Quote("start_ns"), placeholders(len(part)), r.d.Quote("flow_id"), placeholders(len(fpart)))
			rows, err := r.conn.QueryContext(ctx, q, append(int64Args(part), int64Args(fpart)...)...)
			if err != nil {
				return fmt.Errorf("read %s: %w", st.flow.Name, err)
			}
			for rows.Next() {
				var k pickKey
				var count int64
				var lost, missed sql.NullInt64
				if err := rows.Scan(&k.start, &k.flow, &k.from, &k.to, &count, &lost, &missed); err != nil {
					rows.Close()
					return fmt.Errorf("read %s: %w", st.flow.Name, err)
				}
				p := pickStat{collector: r.flows.info[k.flow].collector, count: count}
				if lost.Valid {
					p.lost = intVal(lost.Int64)
				}
				if missed.Valid {
					p.missed = intVal(missed.Int64)
				}
				old[k] = p
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("read %s: %w", st.flow.Name, err)
			}
		}
	}
	fresh := map[pickKey]classKey{}
	// The batch's owd_stats rows of the level, by key.
	delta := map[pickKey][]val{}
	if set := b.aggs[st.flow]; set != nil {
		for _, row := range set.rows {
			delta[pickKey{row[st.startCol].i, row[st.flowCol].i, row[st.fromCol].s, row[st.toCol].s}] = row
		}
	}
	for k, class := range touched {
		ck := classKey{k.start, class, k.from, k.to}
		if redo[ck] {
			continue
		}
		var oldBest, newBest *flowRow
		var ob, nb pickStat
		for _, f := range sib[[2]string{class, r.flows.info[k.flow].key.s}] {
			mk := pickKey{k.start, f.id, k.from, k.to}
			o, had := old[mk]
			if had && (oldBest == nil || o.better(ob)) {
				oldBest, ob = f, o
			}
			n, has := o, had
			if d, ok := delta[mk]; ok {
				dn := stat(f.collector, d)
				if had {
					// The per-flow merge's rules (OpSum: NULL + x = x).
					n.count += dn.count
					n.lost.merge(dn.lost, OpSum)
					n.missed.merge(dn.missed, OpSum)
				} else {
					n, has = dn, true
				}
			}
			if has && (newBest == nil || n.better(nb)) {
				newBest, nb = f, n
			}
		}
		switch {
		case newBest == nil:
			// No owd_stats row: no pick, the class row has none of it.
			for _, f := range sib[[2]string{class, r.flows.info[k.flow].key.s}] {
				picked[pickKey{k.start, f.id, k.from, k.to}] = false
			}
			continue
		case oldBest == nil:
			// A new key (the usual case for a minute): the class row has
			// none of the group, and gets the new pick's rows, all in
			// this batch unless it had histogram or metrics rows before
			// its owd_stats row (checked below).
			fresh[pickKey{k.start, newBest.id, k.from, k.to}] = ck
		case oldBest != newBest:
			redo[ck] = true
			continue
		}
		for _, f := range sib[[2]string{class, r.flows.info[k.flow].key.s}] {
			picked[pickKey{k.start, f.id, k.from, k.to}] = f == newBest
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	// A new pick with earlier owd_hist or owd_metrics rows (loaded before
	// their owd_stats row, which a complete interval set never does): those
	// rows count now too, so the key is recomputed.
	times, ids = map[int64]bool{}, map[int64]bool{}
	for k := range fresh {
		times[k.start], ids[k.flow] = true, true
	}
	ts, fs = sortedKeys(times), sortedKeys(ids)
	for _, ct := range classSchema()[li*len(classBases)+1 : (li+1)*len(classBases)] {
		for i := 0; i < len(ts); i += 500 {
			part := ts[i:min(i+500, len(ts))]
			for j := 0; j < len(fs); j += 500 {
				fpart := fs[j:min(j+500, len(fs))]
				q := fmt.Sprintf("SELECT DISTINCT %s, %s, %s, %s FROM %s WHERE %s IN (%s) AND %s IN (%s)",
					r.d.Quote("start_ns"), r.d.Quote("flow_id"), r.d.Quote("hop_from"), r.d.Quote("hop_to"), r.d.Quote(ct.flow.Name),
					r.d.Quote("start_ns"), placeholders(len(part)), r.d.Quote("flow_id"), placeholders(len(fpart)))
				rows, err := r.conn.QueryContext(ctx, q, append(int64Args(part), int64Args(fpart)...)...)
				if err != nil {
					return fmt.Errorf("read %s: %w", ct.flow.Name, err)
				}
				for rows.Next() {
					var k pickKey
					if err := rows.Scan(&k.start, &k.flow, &k.from, &k.to); err != nil {
						rows.Close()
						return fmt.Errorf("read %s: %w", ct.flow.Name, err)
					}
					if ck, ok := fresh[k]; ok {
						redo[ck] = true
					}
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return fmt.Errorf("read %s: %w", ct.flow.Name, err)
				}
			}
		}
	}
	return nil
}

// classPrepare computes, before a batch's per-flow rows are merged (which
// changes them in place), its changes to the per-class tables, and makes
// their partitions (DDL on MySQL: outside the transaction).
func (r *run) classPrepare(ctx context.Context, b *batch) (*classWork, error) {
	w := &classWork{delta: map[*classTable]*aggSet{}}
	for i := range w.redo {
		w.redo[i] = map[classKey]bool{}
	}
	sib := r.flows.siblings()
	shared := func(f *flowRow) bool { return f.key.ok && len(sib[[2]string{f.class, f.key.s}]) > 1 }
	cts := classSchema()
	// Rows of flows that another collector also loaded: which flow's rows
	// count is the pick's choice (sharedPicks).
	touched := make([]map[pickKey]string, len(levels))
	picked := map[pickKey]bool{}
	for _, ct := range cts {
		set := b.aggs[ct.flow]
		if set == nil {
			continue
		}
		if touched[ct.level] == nil {
			touched[ct.level] = map[pickKey]string{}
		}
		for _, row := range set.rows {
			if f := r.flows.info[row[ct.flowCol].i]; shared(f) {
				touched[ct.level][pickKey{row[ct.startCol].i, f.id, row[ct.fromCol].s, row[ct.toCol].s}] = f.class
			}
		}
	}
	// A placeholder that got its key may now share it with another
	// collector's flow: the keys of its rows are picked anew.
	for _, f := range r.flows.updates {
		if shared(f) {
			if err := r.markFlowKeys(ctx, f, w); err != nil {
				return nil, err
			}
		}
	}
	for li := range levels {
		if err := r.sharedPicks(ctx, b, li, sib, touched[li], picked, w.redo[li]); err != nil {
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
			f := r.flows.info[row[ct.flowCol].i]
			if w.redo[ct.level][ct.keyOf(row, f.class)] {
				continue
			}
			if shared(f) && !picked[pickKey{row[ct.startCol].i, f.id, row[ct.fromCol].s, row[ct.toCol].s}] {
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
	// Partitions, once per day and table in a run: the loader holds the
	// lock, and retention runs after the load.
	if r.classDays == nil {
		r.classDays = map[*Table]map[int64]bool{}
	}
	for _, ct := range cts {
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
		for k := range w.redo[ct.level] {
			add(k.start)
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
	for _, ct := range classSchema() {
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

// flowRead is a per-flow row read back with its flow's identity.
type flowRead struct {
	vals      []val
	collector string
	class     string
	key       val // flow_key; NULL: a placeholder
}

// readFlowRows reads the rows of per-flow table t (alias t) joined to flows
// (alias f) that satisfy where.
func readFlowRows(ctx context.Context, d dialect, q querier, t *Table, where string, args []any, each func(fr *flowRead)) error {
	sel := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		sel[i] = "t." + d.Quote(c.Name)
	}
	query := fmt.Sprintf("SELECT %s, f.%s, f.%s, f.%s FROM %s t JOIN %s f ON f.%s = t.%s WHERE %s",
		strings.Join(sel, ","), d.Quote("collector"), d.Quote("class"), d.Quote("flow_key"),
		d.Quote(t.Name), d.Quote("flows"), d.Quote("id"), d.Quote("flow_id"), where)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", t.Name, err)
	}
	defer rows.Close()
	dest := make([]any, len(t.Columns)+3)
	for rows.Next() {
		for i, c := range t.Columns {
			dest[i] = scanDest(c.Kind)
		}
		fr := &flowRead{vals: make([]val, len(t.Columns)+1)}
		key := scanDest(KindStr)
		dest[len(t.Columns)], dest[len(t.Columns)+1], dest[len(t.Columns)+2] = &fr.collector, &fr.class, key
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("read %s: %w", t.Name, err)
		}
		for i, c := range t.Columns {
			if fr.vals[i], err = fromScan(dest[i], c.Kind); err != nil {
				return fmt.Errorf("read %s.%s: %w", t.Name, c.Name, err)
			}
		}
		fr.key, _ = fromScan(key, KindStr)
		each(fr)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", t.Name, err)
	}
	return nil
}

// pickKey identifies one per-flow row of a level: the rows of the three
// tables with the same pickKey go together.
type pickKey struct {
	start    int64
	flow     int64
	from, to string
}

// recomputeClass rebuilds from the per-flow rows the class rows of level li
// whose key satisfies keep, among the per-flow rows that satisfy where (t:
// the per-flow table, f: flows). The pick is the owd_pick_* view's
// (views.go), made here in Go: per flow (class and key), interval and hop
// pair, the collector with the most delays, then the fewest lost + missed,
// then the first by name. A class row that exists but has no rows left to
// merge (a new pick without metrics or a slice) is written empty, so that it
// no longer counts: the loading account cannot DELETE. It returns the
// number of class rows written.
func recomputeClass(ctx context.Context, d dialect, q querier, li int, where string, args []any, keep func(classKey) bool) (int, error) {
	var cts [3]*classTable
	for _, ct := range classSchema() {
		if ct.level == li {
			cts[indexOf(classBases, ct.base)] = ct
		}
	}
	st := cts[0]
	count, lost, missed := indexOf(colNames(st.flow), "count"), indexOf(colNames(st.flow), "lost_sum"), indexOf(colNames(st.flow), "missed_sum")
	type cand struct {
		fr *flowRead
		p  pickStat
	}
	best := map[[2]any]cand{}
	err := readFlowRows(ctx, d, q, st.flow, where, args, func(fr *flowRead) {
		ck := st.keyOf(fr.vals, fr.class)
		if !keep(ck) {
			return
		}
		var fk any = fr.key.s
		if !fr.key.ok {
			fk = fr.vals[st.flowCol].i
		}
		g := [2]any{ck, fk}
		c := cand{fr, pickStat{collector: fr.collector, count: fr.vals[count].i, lost: fr.vals[lost], missed: fr.vals[missed]}}
		if cur, ok := best[g]; !ok || c.p.better(cur.p) {
			best[g] = c
		}
	})
	if err != nil {
		return 0, err
	}
	picked := make(map[pickKey]bool, len(best))
	written := 0
	for ti, ct := range cts {
		out := &aggSet{rows: map[string][]val{}}
		add := func(fr *flowRead) {
			key := ct.classRowKey(fr.vals, fr.class)
			cur, ok := out.rows[key]
			if !ok {
				cur = make([]val, len(ct.t.Columns))
				for i, c := range ct.t.Columns {
					if c.Op == OpKey && i != ct.flowCol {
						cur[i] = fr.vals[i]
					}
				}
				cur[ct.flowCol] = strVal(fr.class)
				out.rows[key] = cur
				out.order = append(out.order, key)
			}
			for i, c := range ct.flow.Columns {
				cur[i].merge(fr.vals[i], c.Op)
			}
			cur[ct.collCol].merge(strVal(fr.collector), OpUnion)
		}
		if ti == 0 {
			for _, c := range best {
				v := c.fr.vals
				picked[pickKey{v[st.startCol].i, v[st.flowCol].i, v[st.fromCol].s, v[st.toCol].s}] = true
				add(c.fr)
			}
		} else {
			err := readFlowRows(ctx, d, q, ct.flow, where, args, func(fr *flowRead) {
				v := fr.vals
				if picked[pickKey{v[ct.startCol].i, v[ct.flowCol].i, v[ct.fromCol].s, v[ct.toCol].s}] && keep(ct.keyOf(v, fr.class)) {
					add(fr)
				}
			})
			if err != nil {
				return 0, err
			}
		}
		// Rows of the kept keys that the merge no longer produces.
		if err := ct.voidStale(ctx, d, q, out, where, args, keep); err != nil {
			return 0, err
		}
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
		if err := insertRows(ctx, d, q, ct.t, colNames(ct.t), rows, d.UpsertSuffix(ct.t)); err != nil {
			return 0, err
		}
		written += len(rows)
	}
	return written, nil
}

// classRowKey is the map key of a class row: its key columns, with class
// for flow_id.
func (ct *classTable) classRowKey(row []val, class string) string {
	var key []byte
	for i, c := range ct.t.Columns {
		if c.Op != OpKey {
			continue
		}
		v := row[i]
		if i == ct.flowCol {
			v = strVal(class)
		}
		key = v.appendKey(key, c.Kind)
	}
	return string(key)
}

// voidStale adds to out an empty row (no samples, no counts, NULL
// extremes) for every existing class row of a kept key that out does not
// hold. where's per-flow conditions are rewritten for the class table: the
// start_ns condition applies as is, the class one to its class column.
func (ct *classTable) voidStale(ctx context.Context, d dialect, q querier, out *aggSet, where string, args []any, keep func(classKey) bool) error {
	var keyCols []string
	var idx []int
	for i, c := range ct.t.Columns {
		if c.Op == OpKey {
			keyCols = append(keyCols, "t."+d.Quote(c.Name))
			idx = append(idx, i)
		}
	}
	cw := strings.ReplaceAll(where, "f."+d.Quote("class"), "t."+d.Quote("class"))
	rows, err := q.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s t WHERE %s", strings.Join(keyCols, ","), d.Quote(ct.t.Name), cw), args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", ct.t.Name, err)
	}
	defer rows.Close()
	dest := make([]any, len(idx))
	for rows.Next() {
		for j, i := range idx {
			dest[j] = scanDest(ct.t.Columns[i].Kind)
		}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("read %s: %w", ct.t.Name, err)
		}
		row := make([]val, len(ct.t.Columns))
		for j, i := range idx {
			if row[i], err = fromScan(dest[j], ct.t.Columns[i].Kind); err != nil {
				return fmt.Errorf("read %s: %w", ct.t.Name, err)
			}
		}
		if !keep(ct.keyOf(row, row[ct.flowCol].s)) {
			continue
		}
		key := ct.classRowKey(row, row[ct.flowCol].s)
		if _, ok := out.rows[key]; ok {
			continue
		}
		for i, c := range ct.t.Columns {
			if c.Op == OpKey || c.Null {
				continue
			}
			switch c.Kind {
			case KindInt:
				row[i] = intVal(0)
			case KindExact:
				row[i] = bigVal(new(big.Int))
			case KindHist:
				row[i] = histVal(sparse{})
			default:
				row[i] = strVal("")
			}
		}
		out.rows[key] = row
		out.order = append(out.order, key)
	}
	return rows.Err()
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

// backfillClass builds the per-class tables of a database loaded by a
// loader older than them: for each level whose class stats table is empty
// while the per-flow one has rows, every class row is computed from the
// per-flow rows, in one transaction per level (a crash leaves the level
// empty, and the next run starts it again).
func (l *Loader) backfillClass(ctx context.Context, conn *sql.Conn) error {
	for li, lv := range levels {
		var cts []*classTable
		for _, ct := range classSchema() {
			if ct.level == li {
				cts = append(cts, ct)
			}
		}
		var one int64
		switch err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT 1 FROM %s LIMIT 1", l.d.Quote(cts[0].t.Name))).Scan(&one); {
		case err == nil:
			continue // built
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("loader: read %s: %w", cts[0].t.Name, err)
		}
		var lo, hi sql.NullInt64
		if err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT MIN(%s), MAX(%s) FROM %s", l.d.Quote("start_ns"), l.d.Quote("start_ns"),
			l.d.Quote(cts[0].flow.Name))).Scan(&lo, &hi); err != nil {
			return fmt.Errorf("loader: read %s: %w", cts[0].flow.Name, err)
		}
		if !lo.Valid {
			continue // nothing loaded at this level
		}
		start := time.Now()
		// Partitions of every day with rows (DDL: before the transaction).
		var days []int64
		rows, err := conn.QueryContext(ctx, fmt.Sprintf("SELECT DISTINCT %s FROM %s", l.d.Quote("start_ns"), l.d.Quote(typeByName("owd_stats").tables[2].Name)))
		if err != nil {
			return fmt.Errorf("loader: read days: %w", err)
		}
		for rows.Next() {
			var d int64
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return fmt.Errorf("loader: read days: %w", err)
			}
			days = append(days, floorTo(d, dayNs))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("loader: read days: %w", err)
		}
		days = append(days, floorTo(lo.Int64, dayNs), floorTo(hi.Int64, dayNs))
		slices.Sort(days)
		days = slices.Compact(days)
		for _, ct := range cts {
			if err := l.d.EnsurePartitions(ctx, conn, ct.t, days); err != nil {
				return err
			}
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("loader: begin: %w", err)
		}
		// Windows small enough to hold in memory: an hour of minutes, a
		// day of hours, a month of days.
		window := []int64{3600e9, dayNs, 32 * dayNs}[li]
		n := 0
		for w := floorTo(lo.Int64, window); w <= hi.Int64; w += window {
			where := fmt.Sprintf("t.%s >= ? AND t.%s < ?", l.d.Quote("start_ns"), l.d.Quote("start_ns"))
			k, err := recomputeClass(ctx, l.d, tx, li, where, []any{w, w + window}, func(classKey) bool { return true })
			if err != nil {
				tx.Rollback() //nolint:errcheck // the error is err
				return fmt.Errorf("loader: build per-class rows: %w", err)
			}
			n += k
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("loader: commit per-class rows: %w", err)
		}
		l.log.Info("per-class rows built from the per-flow rows (database of an older loader)", "level", lv.Suffix,
			"rows", n, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	return nil
}
