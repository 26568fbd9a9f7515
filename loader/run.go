package loader

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unsafe"
)

// run is one pass of the loader over the spools, under the database lock.
type run struct {
	*Loader
	conn     *sql.Conn
	flows    *flowMap
	nextFile int64
	start    time.Time
	stats    Stats
	arch     *archiver
	total    int // files to load in this run, for progress
	lastLog  time.Time
	// Days whose partitions of a per-class table this run made sure of.
	classDays map[*Table]map[int64]bool
}

// batch is the work of one transaction: the rows of some files, their
// aggregates merged in Go, their bad lines and their loaded_files rows.
type batch struct {
	files   []*spoolFile
	meta    [][]any // loaded_files rows
	records map[*recordType][][]any
	aggs    map[*Table]*aggSet
	bad     [][]any
	rows    int
	nbad    int
	slab    []any // see rowArgs
	flows   *flowView
}

func newBatch() *batch {
	return &batch{records: map[*recordType][][]any{}, aggs: map[*Table]*aggSet{}}
}

// aggSet is the merged rows of one aggregated table in a batch, by key.
type aggSet struct {
	rows  map[string][]val
	order []string // first-seen order, for a deterministic write order
}

// maxBadText bounds the text of a malformed line kept in bad_lines.
const maxBadText = 8192

func (r *run) loadAll(ctx context.Context) error {
	var files []*spoolFile
	for _, s := range r.cfg.Spools {
		fs, unknown, err := listSpool(s)
		if err != nil {
			return err
		}
		for _, u := range unknown {
			r.log.Warn("spool type without a table; its files stay in the spool", "spool", s.Dir, "type", u)
		}
		fs, waiting, err := r.completeSets(ctx, s, fs)
		if err != nil {
			return err
		}
		r.stats.Waiting += waiting
		files = append(files, fs...)
	}
	for _, s := range r.cfg.Reload {
		fs, err := listArchive(s)
		if err != nil {
			return err
		}
		files = append(files, fs...)
	}
	if err := r.conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) + 1 FROM loaded_files").Scan(&r.nextFile); err != nil {
		return fmt.Errorf("read loaded_files: %w", err)
	}
	loaded, err := r.loadedSums(ctx, files)
	if err != nil {
		return err
	}
	var todo, unarchived []*spoolFile
	for _, f := range files {
		sum, ok := loaded[f.collector+"\x00"+f.name]
		if !ok {
			todo = append(todo, f)
			continue
		}
		if f.spoolDir == "" {
			continue // reload of a file already in the database
		}
		// Loaded by a run that stopped before archiving it.
		if err := f.read(); err != nil {
			r.log.Error("cannot read loaded file to archive it", "file", f.path, "err", err)
			continue
		}
		if f.sum != sum {
			r.log.Error("file changed after it was loaded; left in the spool", "file", f.path,
				"loaded_sha256", sum, "now_sha256", f.sum)
			continue
		}
		unarchived = append(unarchived, f)
	}
	n, err := archiveFiles(unarchived, nil)
	r.stats.Archived += n
	if err != nil {
		r.log.Error("archive", "err", err)
	}
	sortFiles(todo)
	r.arch = startArchiver(r.log)
	defer func() { r.stats.Archived += r.arch.wait() }()
	r.total = len(todo)
	if r.total > 0 {
		r.log.Info("loading", "files", r.total, "db", r.d.Name())
	}
	c := r.startCommitter(ctx)
	b := newBatch()
	for _, f := range todo {
		if err := ctx.Err(); err != nil {
			c.wait()
			return err
		}
		if err := r.addFile(b, f); err != nil {
			// The file stays in the spool, unrecorded: a later run (or a
			// loader that knows its columns) takes it.
			r.stats.Refused++
			r.log.Error("file not loaded; left in the spool", "file", f.path, "err", err)
			continue
		}
		if len(b.files) >= r.cfg.BatchFiles || b.rows >= r.cfg.BatchRows {
			b.flows = r.flows.seal()
			if err := c.send(b); err != nil {
				return err
			}
			b = newBatch()
		}
	}
	if len(b.files) > 0 {
		b.flows = r.flows.seal()
		if err := c.send(b); err != nil {
			return err
		}
	}
	return c.wait()
}

// committer commits the batches in a goroutine of its own, in order, so
// that the next batch is read and parsed (on a second core) while the
// database writes this one: the server's work, or SQLite's, overlaps the
// loader's. Each batch is still one transaction, committed in file order;
// the flow ids and file ids are allocated by the parsing side in that
// order, so the tables are those of one batch after the other. At most one
// batch waits while another commits, which bounds the memory.
type committer struct {
	in   chan *batch
	done chan struct{}
	err  error // set before done closes
}

func (r *run) startCommitter(ctx context.Context) *committer {
	c := &committer{in: make(chan *batch), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for b := range c.in {
			start := time.Now()
			c.err = r.commit(ctx, b)
			r.stats.Committing += time.Since(start)
			if c.err != nil {
				return // the run ends; its uncommitted files stay in the spool
			}
		}
	}()
	return c
}

// send hands b to the committer; it returns the error of an earlier commit,
// after which the run stops.
func (c *committer) send(b *batch) error {
	select {
	case c.in <- b:
		return nil
	case <-c.done:
		return c.err
	}
}

// wait commits what was sent and returns the first error.
func (c *committer) wait() error {
	close(c.in)
	<-c.done
	return c.err
}

// loadedSums returns the checksums of those files that loaded_files records,
// keyed by collector NUL name.
func (r *run) loadedSums(ctx context.Context, files []*spoolFile) (map[string]string, error) {
	out := map[string]string{}
	const chunk = 500
	for i := 0; i < len(files); i += chunk {
		part := files[i:min(i+chunk, len(files))]
		var conds []string
		var args []any
		for _, f := range part {
			conds = append(conds, "(collector = ? AND name = ?)")
			args = append(args, f.collector, f.name)
		}
		rows, err := r.conn.QueryContext(ctx, "SELECT collector, name, sha256 FROM loaded_files WHERE "+strings.Join(conds, " OR "), args...)
		if err != nil {
			return nil, fmt.Errorf("read loaded_files: %w", err)
		}
		for rows.Next() {
			var c, n, s string
			if err := rows.Scan(&c, &n, &s); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read loaded_files: %w", err)
			}
			out[c+"\x00"+n] = s
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read loaded_files: %w", err)
		}
	}
	return out, nil
}

// addFile parses one file into the batch. An error means the whole file
// cannot be loaded (unreadable, bad header); a bad line does not.
func (r *run) addFile(b *batch, f *spoolFile) error {
	if f.data == nil { // else kept from verifySet, checksum included
		if err := f.read(); err != nil {
			return err
		}
	}
	if err := f.checkComplete(); err != nil {
		return err
	}
	id := r.nextFile
	rows, bad := 0, 0
	skip := (f.rt.PerPacket && !r.cfg.PerPacket) || f.rt == setsType
	if !skip {
		var err error
		if rows, bad, err = r.parse(b, f, id); err != nil {
			return err
		}
	}
	r.nextFile++
	b.files = append(b.files, f)
	b.meta = append(b.meta, []any{id, f.collector, f.name, int64(len(f.data)), f.sum, int64(rows), int64(bad), r.cfg.Now().UnixNano()})
	b.rows += rows
	b.nbad += bad
	return nil
}

// parse reads the header and every line of f.
func (r *run) parse(b *batch, f *spoolFile, fileID int64) (nrows, nbad int, err error) {
	data := f.data
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		nl = len(data)
	}
	head := string(data[:nl])
	if !strings.HasPrefix(head, "#") {
		return 0, 0, fmt.Errorf("%s:1: no header line (#col1<TAB>col2...)", f.path)
	}
	names := strings.Split(strings.TrimPrefix(head, "#"), "\t")
	hdr := make(map[string]int, len(names))
	for i, n := range names {
		hdr[n] = i
	}
	for _, n := range f.rt.needs {
		if _, ok := hdr[n]; !ok {
			return 0, 0, fmt.Errorf("%s:1: header has no column %q", f.path, n)
		}
	}
	rt := f.rt
	rw := row{pos: columnPositions(hdr), file: f, res: r.flows}
	vals := make([]val, len(rt.Fields))
	lineNo := 1
	// One string of the whole file: the lines and fields are slices of it,
	// not an allocation each. It shares the file's bytes, which nothing
	// writes after read (they are only hashed, parsed and compressed).
	rest := ""
	if nl+1 < len(data) {
		rest = unsafe.String(&data[nl+1], len(data)-nl-1)
	}
	// The last value handed to the database per column: a value repeated
	// from the line before (the interval, the flow, the hops) is passed as
	// the same interface, not boxed again (an allocation each).
	last := make([]val, len(rt.Fields))
	lastArg := make([]any, len(rt.Fields))
	fid := any(fileID) // boxed once, not at every row
	if !rt.Aggregate && rt != flowsType {
		// Room for every line at once: a batch's rows are not copied
		// again and again as the slice doubles.
		b.records[rt] = slices.Grow(b.records[rt], strings.Count(rest, "\n")+1)
	}
	for len(rest) > 0 {
		lineNo++
		var line string
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, ""
		}
		rw.f = splitTab(rw.f[:0], line)
		err := error(nil)
		if len(rw.f) != len(names) {
			err = fmt.Errorf("%d fields, the header has %d", len(rw.f), len(names))
		}
		for i := 0; err == nil && i < len(rt.Fields); i++ {
			vals[i], err = rt.Fields[i].get(&rw)
		}
		if err == nil && rt == flowsType {
			err = r.flows.define(f.collector, vals[1].i, vals[2].s, vals[3].s, vals[0])
		}
		if err != nil {
			nbad++
			text := strings.Clone(textVal(line).s) // not a slice of the whole file; UTF-8 as every text column
			if len(text) > maxBadText {
				text = text[:maxBadText]
			}
			b.bad = append(b.bad, []any{fileID, int64(lineNo), text, err.Error()})
			if nbad <= 5 {
				r.log.Warn("malformed line kept in bad_lines", "file", f.path, "line", lineNo, "err", err)
			} else if nbad == 6 {
				r.log.Warn("more malformed lines in this file; see bad_lines", "file", f.path, "file_id", fileID)
			}
			continue
		}
		nrows++
		switch {
		case rt == flowsType:
		case rt.Aggregate:
			r.addAgg(b, rt, vals)
		default:
			out := b.rowArgs(len(vals) + 2)
			for i, v := range vals {
				if !v.same(last[i]) {
					last[i], lastArg[i] = v, v.arg(rt.Fields[i].Kind)
				}
				out[i] = lastArg[i]
			}
			out[len(vals)], out[len(vals)+1] = fid, int64(lineNo)
			b.records[rt] = append(b.records[rt], out)
		}
	}
	return nrows, nbad, nil
}

// splitTab appends the TAB-separated fields of line to fs (strings.Split
// without its allocation).
func splitTab(fs []string, line string) []string {
	for {
		i := strings.IndexByte(line, '\t')
		if i < 0 {
			return append(fs, line)
		}
		fs = append(fs, line[:i])
		line = line[i+1:]
	}
}

// rowArgs returns room for one record row's n values, cut from a larger
// block: one allocation per few thousand rows instead of one per row.
func (b *batch) rowArgs(n int) []any {
	if len(b.slab) < n {
		b.slab = make([]any, max(n, 1<<15))
	}
	out := b.slab[:n:n]
	b.slab = b.slab[n:]
	return out
}

// addAgg merges one spool row into the 1 min, 1 h and 1 day rows of its key.
// A spool interval longer than the level's step counts entirely in the
// step of its start.
func (r *run) addAgg(b *batch, rt *recordType, vals []val) {
	var key []byte
	for li, t := range rt.tables {
		set := b.aggs[t]
		if set == nil {
			set = &aggSet{rows: map[string][]val{}}
			b.aggs[t] = set
		}
		key = key[:0]
		for i, f := range rt.Fields {
			if f.Op != OpKey {
				continue
			}
			v := vals[i]
			if f.Name == rt.Time {
				v.i = floorTo(v.i, levels[li].Ns)
			}
			key = v.appendKey(key, f.Kind)
		}
		cur, ok := set.rows[string(key)]
		if !ok {
			cur = make([]val, len(vals))
			for i, f := range rt.Fields {
				if f.Op == OpKey {
					cur[i] = vals[i]
					if f.Name == rt.Time {
						cur[i].i = floorTo(cur[i].i, levels[li].Ns)
					}
				}
			}
			set.rows[string(key)] = cur
			set.order = append(set.order, string(key))
		}
		for i, f := range rt.Fields {
			cur[i].merge(vals[i], f.Op)
		}
	}
}

// commit writes a batch in one transaction, then archives its files.
func (r *run) commit(ctx context.Context, b *batch) error {
	// Before the per-flow merge, which changes the batch's rows in place.
	cls, err := r.classPrepare(ctx, b)
	if err != nil {
		return err
	}
	// Partitions first: on MySQL that is DDL, which commits implicitly.
	for rt, rows := range b.records {
		t := rt.tables[0]
		ti := indexOf(colNames(t), t.Time)
		days := map[int64]bool{}
		for _, row := range rows {
			days[floorTo(row[ti].(int64), dayNs)] = true
		}
		if err := r.d.EnsurePartitions(ctx, r.conn, t, sortedKeys(days)); err != nil {
			return err
		}
	}
	for t, set := range b.aggs {
		ti := indexOf(colNames(t), t.Time)
		days := map[int64]bool{}
		for _, row := range set.rows {
			days[floorTo(row[ti].i, dayNs)] = true
		}
		if err := r.d.EnsurePartitions(ctx, r.conn, t, sortedKeys(days)); err != nil {
			return err
		}
	}

	tx, err := r.conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := b.flows.write(ctx, r.d, tx); err != nil {
		return err
	}
	for _, rt := range recordTypes {
		if rows := b.records[rt]; len(rows) > 0 {
			t := rt.tables[0]
			if err := insertRows(ctx, r.d, tx, t, colNames(t), rows, ""); err != nil {
				return err
			}
		}
	}
	for _, rt := range recordTypes {
		for _, t := range rt.tables {
			if set := b.aggs[t]; set != nil {
				if err := r.mergeAgg(ctx, tx, t, set); err != nil {
					return err
				}
			}
		}
	}
	if err := r.classWrite(ctx, tx, cls); err != nil {
		return err
	}
	if err := insertRows(ctx, r.d, tx, &badLinesTable, colNames(&badLinesTable), b.bad, ""); err != nil {
		return err
	}
	if err := insertRows(ctx, r.d, tx, &loadedFilesTable, colNames(&loadedFilesTable), b.meta, ""); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	r.stats.Files += len(b.files)
	r.stats.Rows += b.rows
	r.stats.Bad += b.nbad
	r.arch.add(b.files)
	if now := time.Now(); now.Sub(r.lastLog) >= 10*time.Second {
		r.lastLog = now
		el := now.Sub(r.start)
		r.log.Info("progress", "files", r.stats.Files, "of", r.total, "rows", r.stats.Rows,
			"rows_per_s", rate(r.stats.Rows, el))
	}
	return nil
}

// mergeAgg adds the batch's rows of an aggregated table to the rows already
// in the database: read the existing rows of the same keys, merge in Go
// (exact for sums of squares), write back with the dialect's upsert.
func (r *run) mergeAgg(ctx context.Context, tx querier, t *Table, set *aggSet) error {
	cols := colNames(t)
	ti := indexOf(cols, t.Time)
	fi := indexOf(cols, "flow_id")
	times, flows := map[int64]bool{}, map[int64]bool{}
	for _, row := range set.rows {
		times[row[ti].i] = true
		if fi >= 0 {
			flows[row[fi].i] = true
		}
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s IN (%s)", quoteList(r.d, cols), r.d.Quote(t.Name),
		r.d.Quote(t.Time), placeholders(len(times)))
	args := int64Args(sortedKeys(times))
	if fi >= 0 && len(flows) <= 1000 {
		q += fmt.Sprintf(" AND %s IN (%s)", r.d.Quote("flow_id"), placeholders(len(flows)))
		args = append(args, int64Args(sortedKeys(flows))...)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", t.Name, err)
	}
	dest := make([]any, len(cols))
	var key []byte
	for rows.Next() {
		for i, c := range t.Columns {
			dest[i] = scanDest(c.Kind)
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return fmt.Errorf("read %s: %w", t.Name, err)
		}
		old := make([]val, len(cols))
		key = key[:0]
		for i, c := range t.Columns {
			if old[i], err = fromScan(dest[i], c.Kind); err != nil {
				rows.Close()
				return fmt.Errorf("read %s.%s: %w", t.Name, c.Name, err)
			}
			if c.Op == OpKey {
				key = old[i].appendKey(key, c.Kind)
			}
		}
		cur, ok := set.rows[string(key)]
		if !ok {
			continue
		}
		for i, c := range t.Columns {
			cur[i].merge(old[i], c.Op)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", t.Name, err)
	}
	out := make([][]any, 0, len(set.order))
	for _, k := range set.order {
		row := set.rows[k]
		if t.derive != nil {
			t.derive(row)
		}
		a := make([]any, len(row))
		for i, c := range t.Columns {
			a[i] = row[i].arg(c.Kind)
		}
		out = append(out, a)
	}
	return insertRows(ctx, r.d, tx, t, cols, out, r.d.UpsertSuffix(t))
}

// insertRows writes rows with multi-row INSERTs (plus suffix, for upserts).
// The statement of a full chunk is prepared once when it serves more than
// once: parsing an INSERT of thousands of placeholders costs more than
// binding them.
func insertRows(ctx context.Context, d dialect, q querier, t *Table, cols []string, rows [][]any, suffix string) error {
	if len(rows) == 0 {
		return nil
	}
	if bl, ok := d.(bulkInserter); ok && suffix == "" && len(rows) >= bulkMin {
		if done, err := bl.BulkInsert(ctx, q, t, cols, rows); done || err != nil {
			return err
		}
	}
	// Below both SQLite's 32766 and MySQL's 65535 placeholders per statement.
	per := max(1, min(500, 30000/len(cols)))
	var full *sql.Stmt
	if p, ok := q.(preparer); ok && len(rows) >= 2*per {
		var err error
		if full, err = p.PrepareContext(ctx, insertSQL(d, t, cols, per)+suffix); err != nil {
			return fmt.Errorf("insert into %s: prepare: %w", t.Name, err)
		}
		defer full.Close()
	}
	args := make([]any, 0, per*len(cols))
	for i := 0; i < len(rows); i += per {
		part := rows[i:min(i+per, len(rows))]
		args = args[:0]
		for _, row := range part {
			args = append(args, row...)
		}
		var err error
		if full != nil && len(part) == per {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = q.ExecContext(ctx, insertSQL(d, t, cols, len(part))+suffix, args...)
		}
		if err != nil {
			return fmt.Errorf("insert into %s: %w", t.Name, err)
		}
	}
	return nil
}

// preparer is a connection or transaction that prepares statements.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func sortedKeys(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func int64Args(xs []int64) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
