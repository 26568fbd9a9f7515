package loader

import (
	"context"
	"database/sql"
	"fmt"
)

// The pick of the owd_pick_* views (views.go), made in Go for the per-class
// rows: per flow (class and key), interval and hop pair, the collector with
// the most delays, then the fewest lost + missed, then the first by name.

// pickKey identifies one per-flow row of a level: the rows of the three
// tables with the same pickKey go together.
type pickKey struct {
	start    int64
	flow     int64
	from, to string
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
		for _, f := range sib[[2]string{class, b.flows.info[k.flow].key.s}] {
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
				p := pickStat{collector: b.flows.info[k.flow].collector, count: count}
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
		for _, f := range sib[[2]string{class, b.flows.info[k.flow].key.s}] {
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
			for _, f := range sib[[2]string{class, b.flows.info[k.flow].key.s}] {
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
		for _, f := range sib[[2]string{class, b.flows.info[k.flow].key.s}] {
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
