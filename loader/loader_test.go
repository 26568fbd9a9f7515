package loader

import (
	"database/sql"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Two collectors: c1 with 10 s intervals crossing an hour and a day
// boundary; c2 with 120 s intervals (longer than the minute: each counts in
// the minute of its start).
func twoSpools(t testing.TB) (root string, fxs []*fixture, spools []Spool) {
	root = t.TempDir()
	day := time.Date(2026, 11, 22, 23, 52, 0, 0, time.UTC)
	c1 := genSpool(t, filepath.Join(root, "c1"), genConfig{
		Collector: "c1", Start: day, Interval: 10 * time.Second, N: 90, Flows: 5, MaxPkts: 6, Seed: 1, Current: true,
	})
	c2 := genSpool(t, filepath.Join(root, "c2"), genConfig{
		Collector: "c2", Start: day.Add(-5 * time.Minute), Interval: 120 * time.Second, N: 12, Flows: 4, MaxPkts: 8, Seed: 2,
	})
	return root, []*fixture{c1, c2}, []Spool{{"c1", c1.dir}, {"c2", c2.dir}}
}

const statsCols = `s.start_ns, f.collector, f.class, f.flow_key, s.hop_from, s.hop_to, s.samples, s.count, s.sum_ns, s.sumsq_ns2, s.min_ns, s.max_ns,
	s.lost_sum, s.lost_sumsq, s.lost_min, s.lost_max, s.missed_sum, s.missed_sumsq, s.missed_min, s.missed_max,
	s.dropped_sum, s.dropped_sumsq, s.dropped_min, s.dropped_max, s.duplicate_sum, s.duplicate_sumsq, s.duplicate_min, s.duplicate_max,
	s.reordered_sum, s.reordered_sumsq, s.reordered_min, s.reordered_max, s.clashes_sum, s.clashes_sumsq, s.clashes_min, s.clashes_max,
	s.clock_err_ns, s.clock_err_unknown, s.clock_not_ok`

const histCols = `h.start_ns, f.collector, f.class, f.flow_key, h.hop_from, h.hop_to, h.slice, h.lo_ns, h.hi_ns, h.count`

func checkAggregates(t *testing.T, db testDB, fxs []*fixture) {
	t.Helper()
	h := db.open(t)
	for _, l := range levels {
		got := query(t, h, fmt.Sprintf("SELECT %s FROM owd_stats_%s s JOIN flows f ON f.id = s.flow_id", statsCols, l.Suffix))
		if want := expectedStats(fxs, l.Ns); strings.Join(want, "\n") != strings.Join(got, "\n") {
			t.Errorf("owd_stats_%s: want %d rows, got %d", l.Suffix, len(want), len(got))
			diffRows(t, want, got)
		}
		got = query(t, h, fmt.Sprintf("SELECT %s FROM owd_hist_%s h JOIN flows f ON f.id = h.flow_id", histCols, l.Suffix))
		if want := expectedHist(fxs, l.Ns); strings.Join(want, "\n") != strings.Join(got, "\n") {
			t.Errorf("owd_hist_%s: want %d rows, got %d", l.Suffix, len(want), len(got))
			diffRows(t, want, got)
		}
	}
	checkMetrics(t, db, fxs)
	got := query(t, h, "SELECT time_ns, collector, source, kind, detail FROM events")
	if want := expectedEvents(fxs); strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("events differ")
		diffRows(t, want, got)
	}
	packets, incompl := 0, 0
	for _, fx := range fxs {
		packets += fx.packets
		incompl += fx.incompl
	}
	if got := query(t, h, "SELECT COUNT(*) FROM owd_packet WHERE delay_ns = t_to - t_from"); got[0] != fmt.Sprint(packets) {
		t.Errorf("owd_packet: %s consistent rows, want %d", got[0], packets)
	}
	// The spans (current spool files) or NULL (older ones).
	if got := query(t, h, "SELECT COUNT(*) FROM owd_packet WHERE first_delay_ns = delay_ns - span_to_ns + span_from_ns OR (span_from_ns IS NULL AND span_to_ns IS NULL AND first_delay_ns IS NULL)"); got[0] != fmt.Sprint(packets) {
		t.Errorf("owd_packet: %s rows with consistent spans, want %d", got[0], packets)
	}
	if got := query(t, h, "SELECT COUNT(*) FROM owd_incomplete WHERE kind = 'lost'"); got[0] != fmt.Sprint(incompl) {
		t.Errorf("owd_incomplete: %s rows, want %d", got[0], incompl)
	}
	// The test data must exercise sums of squares beyond 64 bits.
	maxSq := query(t, h, "SELECT sumsq_ns2 FROM owd_stats_1d")
	beyond := false
	for _, s := range maxSq {
		b, ok := new(big.Int).SetString(s, 10)
		beyond = beyond || (ok && b.BitLen() > 64)
	}
	if !beyond {
		t.Errorf("no sumsq_ns2 beyond 64 bits in the test data")
	}
}

// Aggregates at 1 min, 1 h and 1 day equal a direct computation from the
// spool rows, on both databases; small batches make later files merge into
// rows committed earlier.
func TestAggregates(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		_, fxs, spools := twoSpools(t)
		st, _ := load(t, db, Config{Spools: spools, PerPacket: true, BatchFiles: 37})
		files := fxs[0].files + fxs[1].files
		if st.Files != files || st.Archived != files || st.Bad != 0 {
			t.Errorf("stats %+v, want %d files loaded and archived, no bad line", st, files)
		}
		checkAggregates(t, db, fxs)
		for _, fx := range fxs {
			if n := spoolFilesLeft(t, fx.dir); n != 0 {
				t.Errorf("%s: %d files left in the spool after loading", fx.dir, n)
			}
		}
		// A second run finds nothing to do and changes nothing.
		before := dump(t, db.open(t))
		st, _ = load(t, db, Config{Spools: spools, PerPacket: true})
		if st.Files != 0 {
			t.Errorf("second run loaded %d files", st.Files)
		}
		diffDumps(t, "second run", before, dump(t, db.open(t)))
	})
}

// The archive reloaded into an empty database gives the same tables.
func TestReload(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		_, fxs, spools := twoSpools(t)
		load(t, db, Config{Spools: spools, PerPacket: true})
		want := dump(t, db.open(t))
		db.reset(t)
		var reload []Spool
		for _, s := range spools {
			sp, err := ParseSpool(filepath.Join(s.Dir, archiveDir))
			if err != nil || sp.Collector != s.Collector {
				t.Fatalf("ParseSpool(archive) = %+v, %v", sp, err)
			}
			reload = append(reload, sp)
		}
		st, _ := load(t, db, Config{Reload: reload, PerPacket: true})
		if want := fxs[0].files + fxs[1].files; st.Files != want || st.Archived != 0 {
			t.Errorf("reload: %+v, want %d files, none archived", st, want)
		}
		diffDumps(t, "reload", want, dump(t, db.open(t)))
	})
}

// SQLite and MariaDB end with the same tables from the same spool.
func TestSameOnBothDatabases(t *testing.T) {
	my := mysqlDB(t)
	sq := sqliteDB(t)
	root, _, spools := twoSpools(t)
	copyDir(t, root, root+"-copy")
	load(t, sq, Config{Spools: spools, PerPacket: true})
	spools2 := []Spool{{"c1", root + "-copy/c1"}, {"c2", root + "-copy/c2"}}
	load(t, my, Config{Spools: spools2, PerPacket: true})
	diffDumps(t, "mysql vs sqlite", dump(t, sq.open(t)), dump(t, my.open(t)))
}

// A malformed line is reported with file and line and kept in bad_lines; the
// rest of its file is loaded. A file without its header is not loaded and
// stays in the spool.
func TestMalformedLines(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		dir := filepath.Join(t.TempDir(), "c1")
		start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		s0 := start.UnixNano()
		writeTSV(t, dir, "flows", start, hdrFlows, &tsvFile{lines: []string{
			fmt.Sprintf("%d\t1\tk\tip.src=10.0.0.1", s0),
		}})
		good := func(n int) string {
			return fmt.Sprintf("%d\t60\tk\t1\tA\tB\t%d\t%d\t%d\t%d\t%d\t0\t0\t0\t0\t0", s0, n, n*10, n*100, 10, 10)
		}
		writeTSV(t, dir, "owd_stats", start, hdrStats, &tsvFile{lines: []string{
			good(1),
			fmt.Sprintf("%d\t60\tk\t1\tA\tB\tx\t1\t1\t1\t1\t0\t0\t0\t0\t0", s0), // line 3: count not a number
			good(2),
			"garbage", // line 5: field count
			good(3),
			fmt.Sprintf("%d\t60\tz\t1\tA\tB\t1\t1\t1\t1\t1\t0\t0\t0\t0\t0", s0), // line 7: wrong class for flow 1
			"", // line 8: empty
			good(4),
		}})
		writeTSV(t, dir, "events", start, "nonsense", &tsvFile{lines: []string{"1\t2"}})
		st, log := load(t, db, Config{Spools: []Spool{{"c1", dir}}})
		if st.Files != 2 || st.Bad != 4 || st.Rows != 1+4 {
			t.Errorf("stats %+v, want 2 files, 5 rows, 4 bad lines", st)
		}
		h := db.open(t)
		got := query(t, h, "SELECT count, sum_ns, samples FROM owd_stats_1m")
		if want := "10|100|4"; len(got) != 1 || got[0] != want {
			t.Errorf("owd_stats_1m = %v, want %s (the good lines)", got, want)
		}
		got = query(t, h, "SELECT b.line, f.name FROM bad_lines b JOIN loaded_files f ON f.id = b.file_id")
		want := []string{"3|owd_stats/owd_stats-20261123T100000Z.tsv", "5|owd_stats/owd_stats-20261123T100000Z.tsv",
			"7|owd_stats/owd_stats-20261123T100000Z.tsv", "8|owd_stats/owd_stats-20261123T100000Z.tsv"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("bad_lines = %v, want %v", got, want)
		}
		if got := query(t, h, "SELECT text FROM bad_lines WHERE line = 5"); len(got) != 1 || got[0] != "garbage" {
			t.Errorf("bad line text = %v", got)
		}
		for _, w := range []string{"owd_stats-20261123T100000Z.tsv line=3", "line=5", "header has no column"} {
			if !strings.Contains(log.String(), w) {
				t.Errorf("log lacks %q:\n%s", w, log)
			}
		}
		if n := spoolFilesLeft(t, dir); n != 1 {
			t.Errorf("%d files left in the spool, want 1 (the headerless events file)", n)
		}
	})
}

// Rows that refer to a flow before its definition is loaded get a
// placeholder flow that the definition completes later.
func TestFlowBeforeDefinition(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		dir := filepath.Join(t.TempDir(), "c9")
		start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		s0 := start.UnixNano()
		writeTSV(t, dir, "owd_stats", start, hdrStats, &tsvFile{lines: []string{
			fmt.Sprintf("%d\t10\tk\t7\tA\tB\t1\t5\t25\t5\t5\t0\t0\t0\t0\t0", s0),
		}})
		load(t, db, Config{Spools: []Spool{{"c9", dir}}})
		h := db.open(t)
		if got := query(t, h, "SELECT id, class, flow_key FROM flows"); len(got) != 1 || got[0] != "1|k|NULL" {
			t.Fatalf("placeholder flows = %v", got)
		}
		writeTSV(t, dir, "flows", start, hdrFlows, &tsvFile{lines: []string{fmt.Sprintf("%d\t7\tk\tip.dst=10.2.0.1", s0)}})
		writeTSV(t, dir, "owd_stats", start.Add(10*time.Second), hdrStats, &tsvFile{lines: []string{
			fmt.Sprintf("%d\t10\tk\t7\tA\tB\t1\t7\t49\t7\t7\t0\t0\t0\t0\t0", s0+10e9),
		}})
		load(t, db, Config{Spools: []Spool{{"c9", dir}}})
		if got := query(t, h, "SELECT id, class, flow_key, first_ns FROM flows"); len(got) != 1 || got[0] != fmt.Sprintf("1|k|ip.dst=10.2.0.1|%d", s0) {
			t.Errorf("flows = %v", got)
		}
		if got := query(t, h, "SELECT flow_id, count, sum_ns FROM owd_stats_1m"); len(got) != 1 || got[0] != "1|2|12" {
			t.Errorf("owd_stats_1m = %v", got)
		}
	})
}

// Only complete files are loaded: temporary names and other names are not.
func TestIgnoresIncompleteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c1")
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	writeTSV(t, dir, "events", start, hdrEvents, &tsvFile{lines: []string{fmt.Sprintf("%d\tprobe:a\tstart\t", start.UnixNano())}})
	for _, n := range []string{".events-20261123T100010Z.tsv.tmp", "events-20261123T100020Z.tsv~", "events-bad.tsv", "README"} {
		os.WriteFile(filepath.Join(dir, "events", n), []byte("#time\tsource\tkind\tdetail\n1\tx\ty\tz\n"), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "rtt"), 0o755) // a type this loader does not know yet
	os.WriteFile(filepath.Join(dir, "rtt", "rtt-20261123T100000Z.tsv"), []byte("#x\n"), 0o644)
	db := sqliteDB(t)
	st, log := load(t, db, Config{Spools: []Spool{{"c1", dir}}})
	if st.Files != 1 || st.Rows != 1 {
		t.Errorf("stats %+v, want the one complete file", st)
	}
	if !strings.Contains(log.String(), "type=rtt") {
		t.Errorf("unknown type not reported:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(dir, "rtt", "rtt-20261123T100000Z.tsv")); err != nil {
		t.Errorf("file of an unknown type moved: %v", err)
	}
}

// Per-packet records are optional: their files are archived unloaded.
func TestPerPacketOff(t *testing.T) {
	_, fxs, spools := twoSpools(t)
	db := sqliteDB(t)
	load(t, db, Config{Spools: spools, PerPacket: false})
	h := db.open(t)
	if got := query(t, h, "SELECT COUNT(*) FROM owd_packet"); got[0] != "0" {
		t.Errorf("owd_packet has %s rows with PerPacket off", got[0])
	}
	if n := spoolFilesLeft(t, fxs[0].dir); n != 0 {
		t.Errorf("%d files left", n)
	}
	checkStatsOnly := query(t, h, fmt.Sprintf("SELECT %s FROM owd_stats_1h s JOIN flows f ON f.id = s.flow_id", statsCols))
	if want := expectedStats(fxs, 3600e9); strings.Join(want, "\n") != strings.Join(checkStatsOnly, "\n") {
		t.Errorf("owd_stats_1h differs with PerPacket off")
	}
}

func TestParseRetention(t *testing.T) {
	got, err := ParseRetention("1m=7d,1h=90d, 1d=5y,rec=36h")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"1m": 7 * 24 * time.Hour, "1h": 90 * 24 * time.Hour, "1d": 5 * 365 * 24 * time.Hour, "rec": 36 * time.Hour}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"1m", "2m=7d", "1m=7x", "1m=-1d"} {
		if _, err := ParseRetention(bad); err == nil {
			t.Errorf("ParseRetention(%q): no error", bad)
		}
	}
}

func TestParseSpool(t *testing.T) {
	for in, want := range map[string]Spool{
		"spool/c1":         {"c1", "spool/c1"},
		"spool/c1/archive": {"c1", "spool/c1/archive"},
		"c7=/var/x":        {"c7", "/var/x"},
	} {
		if got, err := ParseSpool(in); err != nil || got != want {
			t.Errorf("ParseSpool(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}

// A database created by a loader that knew fewer columns (owd_stats before
// dropped and the clock columns) gets them added, and loads as a new one.
func TestAddsNewColumns(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		_, fxs, spools := twoSpools(t)
		h, d, err := openDB(db.spec)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		for _, tb := range typeByName("owd_stats").tables {
			old := *tb
			old.Columns = nil
			for _, c := range tb.Columns {
				if !strings.HasPrefix(c.Name, "clock_") && !strings.HasPrefix(c.Name, "dropped_") {
					old.Columns = append(old.Columns, c)
				}
			}
			for _, stmt := range d.CreateTable(&old) {
				if _, err := h.Exec(stmt); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, log := load(t, db, Config{Spools: spools, PerPacket: true})
		if n := strings.Count(log.String(), "column added"); n != 3*7 {
			t.Errorf("%d columns added, want 21:\n%s", n, log)
		}
		checkAggregates(t, db, fxs)
	})
}

// TestRekeysPerPacketTables: owd_packet and owd_incomplete of an older
// loader (key start_ns, file_id, line and an index on flow_id, start_ns)
// get the key with the flow and no index, their rows kept, at the first
// run of this loader, which then loads the rest of the spool into them.
func TestRekeysPerPacketTables(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		_, fxs, spools := twoSpools(t)
		load(t, db, Config{Spools: spools[:1], PerPacket: true})
		h := db.open(t)
		var before []string
		var tables []*Table
		for _, typ := range []string{"owd_packet", "owd_incomplete"} {
			tb := typeByName(typ).tables[0]
			if tb.OldKey == nil || tb.Key[1] != "flow_id" || len(tb.Indexes) != 0 {
				t.Fatalf("%s: key %v, old key %v, indexes %v", typ, tb.Key, tb.OldKey, tb.Indexes)
			}
			tables = append(tables, tb)
			rows := query(t, h, "SELECT * FROM "+typ)
			if len(rows) == 0 {
				t.Fatalf("%s: no rows loaded from c1", typ)
			}
			before = append(before, rows...)
			// The older loader's layout, rows kept.
			var stmts []string
			if db.name == "sqlite" {
				old := *tb
				old.Name, old.Key = typ+"_old", tb.OldKey
				stmts = append([]string{"BEGIN"}, (&sqliteDialect{}).CreateTable(&old)...)
				stmts = append(stmts, "INSERT INTO "+typ+"_old SELECT * FROM "+typ, "DROP TABLE "+typ,
					"ALTER TABLE "+typ+"_old RENAME TO "+typ, "CREATE INDEX "+typ+"_i0 ON "+typ+" (flow_id, start_ns)", "COMMIT")
			} else {
				stmts = []string{fmt.Sprintf("ALTER TABLE %s DROP PRIMARY KEY, ADD PRIMARY KEY (%s), ADD KEY %s_i0 (flow_id, start_ns)",
					typ, strings.Join(tb.OldKey, ","), typ)}
			}
			for _, stmt := range stmts {
				if _, err := h.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			if got := primaryKey(t, db, h, typ); got != strings.Join(tb.OldKey, ",") {
				t.Fatalf("%s: old layout has key %s", typ, got)
			}
		}
		_, log := load(t, db, Config{Spools: spools, PerPacket: true})
		if n := strings.Count(log.String(), "primary key of a table of an older loader changed"); n != 2 {
			t.Errorf("%d tables rekeyed, want 2:\n%s", n, log)
		}
		var after []string
		for _, tb := range tables {
			if got := primaryKey(t, db, h, tb.Name); got != strings.Join(tb.Key, ",") {
				t.Errorf("%s: key %s, want %s", tb.Name, got, strings.Join(tb.Key, ","))
			}
			if n := indexCount(t, db, h, tb.Name+"_i0"); n != 0 {
				t.Errorf("%s: old index still there", tb.Name)
			}
			after = append(after, query(t, h, "SELECT * FROM "+tb.Name)...)
		}
		have := map[string]bool{}
		for _, r := range after {
			have[r] = true
		}
		for _, r := range before {
			if !have[r] {
				t.Errorf("row of the older table lost: %s", r)
			}
		}
		// Every row of both spools, once (counts against the generator).
		checkAggregates(t, db, fxs)
		// A third run finds nothing to change.
		_, log = load(t, db, Config{Spools: spools, PerPacket: true})
		if strings.Contains(log.String(), "primary key") {
			t.Errorf("rekeyed again:\n%s", log)
		}
	})
}

// primaryKey returns the primary key columns of table, comma-separated.
func primaryKey(t *testing.T, db testDB, h *sql.DB, table string) string {
	t.Helper()
	if db.name == "sqlite" {
		rows := query(t, h, "SELECT pk, name FROM pragma_table_info(?) WHERE pk > 0", table)
		cols := make([]string, len(rows))
		for _, r := range rows { // "pk|name", pk counts from 1 (fewer than 10 columns)
			pk, name, _ := strings.Cut(r, "|")
			var i int
			fmt.Sscan(pk, &i)
			cols[i-1] = name
		}
		return strings.Join(cols, ",")
	}
	rows := query(t, h, "SELECT SEQ_IN_INDEX, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY'", table)
	cols := make([]string, len(rows))
	for _, r := range rows {
		seq, name, _ := strings.Cut(r, "|")
		var i int
		fmt.Sscan(seq, &i)
		cols[i-1] = name
	}
	return strings.Join(cols, ",")
}

func indexCount(t *testing.T, db testDB, h *sql.DB, index string) int {
	t.Helper()
	q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?"
	if db.name == "mysql" {
		q = "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = ?"
	}
	var n int
	fmt.Sscan(query(t, h, q, index)[0], &n)
	return n
}

// TestInvalidUTF8: text from the network (an FTP file name in Latin-1, an
// event's detail) is not always UTF-8. MariaDB's utf8mb4 columns refuse
// such a row, which failed the whole batch at every run (the spool stuck);
// the loader writes each invalid byte as \xHH (docs/loader.md), the same
// in both databases, and a malformed line's text in bad_lines likewise.
func TestInvalidUTF8(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		dir := filepath.Join(t.TempDir(), "c1")
		start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		writeTSV(t, dir, "events", start, hdrEvents, &tsvFile{lines: []string{
			fmt.Sprintf("%d\tprobe:a\tnote\tRETR caf\xe9.txt \xff\\x41 ok", start.UnixNano()),
			fmt.Sprintf("%d\tprobe:a\tnote\tvalid caf\u00e9 \\x41", start.UnixNano()+1),
			"garbage\xe9",
		}})
		st, _ := load(t, db, Config{Spools: []Spool{{"c1", dir}}})
		if st.Files != 1 || st.Rows != 2 || st.Bad != 1 {
			t.Fatalf("stats %+v, want 1 file, 2 rows, 1 bad line", st)
		}
		h := db.open(t)
		got := query(t, h, "SELECT detail FROM events")
		want := []string{`RETR caf\xE9.txt \xFF\\x41 ok`, `valid café \x41`}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("events.detail = %q, want %q", got, want)
		}
		if got := query(t, h, "SELECT text FROM bad_lines"); len(got) != 1 || got[0] != `garbage\xE9` {
			t.Errorf("bad_lines.text = %q, want garbage\\xE9", got)
		}
	})
}
