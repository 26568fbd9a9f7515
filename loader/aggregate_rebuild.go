package loader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Per-class rows recomputed from the per-flow rows: keys whose pick moved,
// and every key of a database of an older loader (backfill).

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
		if err := writeClassRows(ctx, d, q, ct, out); err != nil {
			return 0, err
		}
		written += len(out.order)
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

// backfillClass builds the per-class tables of a database loaded by a
// loader older than them: for each level whose class stats table is empty
// while the per-flow one has rows, every class row is computed from the
// per-flow rows, in one transaction per level (a crash leaves the level
// empty, and the next run starts it again).
func (l *Loader) backfillClass(ctx context.Context, conn *sql.Conn) error {
	return l.backfill(ctx, conn, classSchema(), "per-class", func(tx *sql.Tx, li int, _ []*classTable, where string, args []any) (int, error) {
		return recomputeClass(ctx, l.d, tx, li, where, args, func(classKey) bool { return true })
	})
}

// backfill builds, level by level, the tables of schema that an older
// loader left empty while the per-flow ones have rows: build computes the
// rows of one window of the per-flow rows (where, args) in tx and returns
// how many it wrote. One transaction per level: a crash leaves the level
// empty, and the next run starts it again.
func (l *Loader) backfill(ctx context.Context, conn *sql.Conn, schema []*classTable, what string,
	build func(tx *sql.Tx, li int, cts []*classTable, where string, args []any) (int, error)) error {
	for li, lv := range levels {
		var cts []*classTable
		for _, ct := range schema {
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
		days, err := l.rowDays(ctx, conn, lo.Int64, hi.Int64)
		if err != nil {
			return err
		}
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
			k, err := build(tx, li, cts, where, []any{w, w + window})
			if err != nil {
				tx.Rollback() //nolint:errcheck // the error is err
				return fmt.Errorf("loader: build %s rows: %w", what, err)
			}
			n += k
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("loader: commit %s rows: %w", what, err)
		}
		l.log.Info(what+" rows built from the per-flow rows (database of an older loader)", "level", lv.Suffix,
			"rows", n, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	return nil
}
