package loader

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
)

// flowMap is the flow dictionary of one run: the database flow id of every
// (collector, collector flow id) and of every (collector, class, key). Ids are
// allocated here (max + 1), not by AUTO_INCREMENT, so that they depend only on
// the order of the files: MySQL burns AUTO_INCREMENT values in rolled-back
// transactions, which would make a rerun after a crash differ from a clean run.
//
// Changes since the last sealed batch are pending; seal hands them to that
// batch. After a failed commit the run ends and the next one reads the map
// again from the database.
type flowMap struct {
	byC   map[cflowKey]int64
	byKey map[flowKey]int64
	info  map[int64]*flowRow
	next  int64
	log   *slog.Logger

	inserts []*flowRow // new flows rows, in id order
	updates []*flowRow // existing placeholders that got their definition
	maps    []cflowRow // new flow_ids rows
	pending map[int64]bool
}

type cflowKey struct {
	collector string
	cflow     int64
}

type flowKey struct{ collector, class, key string }

// flowRow is a row of table flows; key is NULL (ok false) for a placeholder.
type flowRow struct {
	id        int64
	collector string
	class     string
	key       val
	first     val
}

type cflowRow struct {
	cflowKey
	id int64
}

func newFlowMap(log *slog.Logger) *flowMap {
	return &flowMap{
		byC: map[cflowKey]int64{}, byKey: map[flowKey]int64{}, info: map[int64]*flowRow{},
		next: 1, log: log, pending: map[int64]bool{},
	}
}

// load reads the dictionary from the database.
func (m *flowMap) load(ctx context.Context, q querier) error {
	rows, err := q.QueryContext(ctx, "SELECT id, collector, class, flow_key FROM flows")
	if err != nil {
		return fmt.Errorf("read flows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		f := &flowRow{}
		var key any = scanDest(KindStr)
		if err := rows.Scan(&f.id, &f.collector, &f.class, key); err != nil {
			return fmt.Errorf("read flows: %w", err)
		}
		f.key, _ = fromScan(key, KindStr)
		m.info[f.id] = f
		if f.key.ok {
			m.byKey[flowKey{f.collector, f.class, f.key.s}] = f.id
		}
		m.next = max(m.next, f.id+1)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read flows: %w", err)
	}
	rows2, err := q.QueryContext(ctx, "SELECT collector, cflow, flow_id FROM flow_ids")
	if err != nil {
		return fmt.Errorf("read flow_ids: %w", err)
	}
	defer rows2.Close()
	for rows2.Next() {
		var k cflowKey
		var id int64
		if err := rows2.Scan(&k.collector, &k.cflow, &id); err != nil {
			return fmt.Errorf("read flow_ids: %w", err)
		}
		m.byC[k] = id
	}
	return rows2.Err()
}

func (m *flowMap) add(f *flowRow) {
	m.info[f.id] = f
	m.inserts = append(m.inserts, f)
	m.pending[f.id] = true
}

// define handles one line of a flows file.
func (m *flowMap) define(collector string, cflow int64, class, key string, first val) error {
	// Kept for the run: not slices of the whole file.
	class, key = strings.Clone(class), strings.Clone(key)
	if len(key) > flowsTable.col("flow_key").Size {
		return fmt.Errorf("key: longer than %d bytes", flowsTable.col("flow_key").Size)
	}
	ck := cflowKey{collector, cflow}
	fk := flowKey{collector, class, key}
	if id, ok := m.byC[ck]; ok {
		f := m.info[id]
		if f.key.ok {
			if f.class != class || f.key.s != key {
				return fmt.Errorf("flow %d already defined as class %q key %q", cflow, f.class, f.key.s)
			}
			return nil // the same definition again
		}
		// A placeholder (rows referred to the flow before its definition
		// was loaded) gets its key now, unless that flow already has an id.
		if other, ok := m.byKey[fk]; ok {
			m.log.Warn("flow defined after use duplicates an existing flow; rows stay on the placeholder id",
				"collector", collector, "flow", cflow, "placeholder", id, "existing", other)
			return nil
		}
		if f.class != class {
			return fmt.Errorf("flow %d: class %q, but rows loaded before said %q", cflow, class, f.class)
		}
		if !m.pending[id] {
			// Inserted by an earlier batch, whose view (seal) may still
			// be read by its commit: a new row, not a change to it.
			c := *f
			f = &c
			m.info[id] = f
			m.updates = append(m.updates, f)
		}
		f.key, f.first = strVal(key), first
		m.byKey[fk] = id
		return nil
	}
	id, ok := m.byKey[fk]
	if !ok {
		// A new flow; or, when the key is known, the same flow under a new
		// collector id (the collector restarted with a fresh spool).
		id = m.next
		m.next++
		m.add(&flowRow{id: id, collector: collector, class: class, key: strVal(key), first: first})
		m.byKey[fk] = id
	}
	m.byC[ck] = id
	m.maps = append(m.maps, cflowRow{ck, id})
	return nil
}

// flowRef returns the database id of a collector flow referred to by an
// observation row. An unknown flow gets a placeholder (key NULL) that its
// definition completes when it is loaded.
func (m *flowMap) flowRef(collector string, cflow int64, class string) (int64, error) {
	ck := cflowKey{collector, cflow}
	if id, ok := m.byC[ck]; ok {
		if f := m.info[id]; f.class != class {
			return 0, fmt.Errorf("flow %d is of class %q, not %q", cflow, f.class, class)
		}
		return id, nil
	}
	id := m.next
	m.next++
	class = strings.Clone(class) // kept for the run: not a slice of the whole file
	m.add(&flowRow{id: id, collector: collector, class: class})
	m.byC[ck] = id
	m.maps = append(m.maps, cflowRow{ck, id})
	m.log.Warn("flow used before its definition was loaded; placeholder until it is",
		"collector", collector, "flow", cflow, "class", class, "id", id)
	return id, nil
}

// flowView is the flow dictionary as a batch left it when its parsing
// ended: the changes its commit writes, and the flows (class, key,
// collector) that its per-class work reads. The next batch is parsed while
// this one commits (run.go) and changes the map, never a view: a flowRow
// in a view is not modified afterwards (define copies it).
type flowView struct {
	info    map[int64]*flowRow
	inserts []*flowRow // new flows rows, in id order
	updates []*flowRow // placeholders that got their definition
	maps    []cflowRow // new flow_ids rows
}

// seal hands the pending changes to a batch, with a view of the map.
func (m *flowMap) seal() *flowView {
	v := &flowView{info: maps.Clone(m.info), inserts: m.inserts, updates: m.updates, maps: m.maps}
	m.inserts, m.updates, m.maps = nil, nil, nil
	clear(m.pending)
	return v
}

// write stores the batch's changes in its transaction.
func (m *flowView) write(ctx context.Context, d dialect, tx querier) error {
	var rows [][]any
	for _, f := range m.inserts {
		rows = append(rows, []any{f.id, f.collector, f.class, f.key.arg(KindStr), f.first.arg(KindInt)})
	}
	if err := insertRows(ctx, d, tx, &flowsTable, colNames(&flowsTable), rows, ""); err != nil {
		return err
	}
	for _, f := range m.updates {
		_, err := tx.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET %s = ?, %s = ? WHERE %s = ?",
			d.Quote("flows"), d.Quote("flow_key"), d.Quote("first_ns"), d.Quote("id")),
			f.key.arg(KindStr), f.first.arg(KindInt), f.id)
		if err != nil {
			return fmt.Errorf("update flow %d: %w", f.id, err)
		}
	}
	rows = rows[:0]
	for _, c := range m.maps {
		rows = append(rows, []any{c.collector, c.cflow, c.id})
	}
	return insertRows(ctx, d, tx, &flowIDsTable, colNames(&flowIDsTable), rows, "")
}
