package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/reconcile"
)

// start is 2026-11-23T03:45:00Z.
var start = time.Date(2026, 11, 23, 3, 45, 0, 0, time.UTC)

func testConfig() *conf.Config {
	ms := time.Millisecond
	return &conf.Config{Interval: time.Minute, Classes: []conf.Class{
		{Name: "plain", Index: 0},
		{Name: "ground\tlink", Index: 1, OneWay: &conf.OneWay{
			Hops: []conf.Hop{{Name: "gw"}, {Name: "sat"}, {Name: "mcc"}},
			Pairs: []conf.HopPair{
				{From: 0, To: 2, Slices: []time.Duration{10 * ms, 20 * ms}},
				{From: 0, To: 1},
			},
		}},
		{Name: "tm", Index: 2, OneWay: &conf.OneWay{Hops: []conf.Hop{{Name: "in"}, {Name: "out"}}}},
	}}
}

func newWriter(t *testing.T) (*Writer, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "spool")
	w, err := New(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	return w, dir
}

func readAll(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listing returns every file under dir, relative, sorted.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func testInterval() *reconcile.Interval {
	ns := start.UnixNano()
	st := reconcile.PairStats{Flow: 7, Class: 1, Pair: 0, Count: 3, Sum: 45_000_000, Min: 5_000_000, Max: 25_000_000,
		Hist: []uint64{1, 1, 1}, Duplicate: 1, Reordered: 1}
	for _, d := range []int64{5_000_000, 15_000_000, 25_000_000} {
		st.SumSq.AddSquare(d)
	}
	return &reconcile.Interval{
		Start: ns, Length: time.Minute,
		Stats: []reconcile.PairStats{
			st,
			{Flow: 7, Class: 1, Pair: 1, Lost: 2, Missed: 1, Clashes: 1, Hist: []uint64{0}},
			{Flow: 9, Class: 2, Pair: 0, Count: 1, Sum: -3, SumSq: reconcile.Uint128{Hi: 1, Lo: 0}, Min: -3, Max: -3, Hist: []uint64{1}},
		},
		Packets: []reconcile.Packet{
			{Flow: 7, Class: 1, Pair: 0, Sig: 0xbeef, From: ns + 10, To: ns + 5_000_010},
			// A reassembled datagram: first fragments 20 µs and 35 µs
			// before the last ones: 5 ms − 35 µs + 20 µs first to first.
			{Flow: 7, Class: 1, Pair: 0, Sig: 0xf00d, From: ns + 20_000, To: ns + 5_020_000, SpanFrom: 20_000, SpanTo: 35_000},
		},
		Incomplete: []reconcile.Incomplete{
			{Flow: 7, Class: 1, Sig: 0xdeadbeef, Lost: true, Mask: 0b001, TS: [reconcile.MaxHops]int64{ns + 100}},
			{Flow: 7, Class: 1, Sig: 0x1, Mask: 0b110, TS: [reconcile.MaxHops]int64{0, ns + 200, ns + 300}},
		},
	}
}

func TestWriteIntervalGolden(t *testing.T) {
	w, dir := newWriter(t)
	if err := w.WriteInterval(testInterval()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"owd_hist/owd_hist-20261123T034500Z.tsv",
		"owd_incomplete/owd_incomplete-20261123T034500Z.tsv",
		"owd_packet/owd_packet-20261123T034500Z.tsv",
		"owd_stats/owd_stats-20261123T034500Z.tsv",
		"sets/owd_stats-20261123T034500Z.tsv",
	}
	if got := listing(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	// The manifest lists the four files with their rows and bytes.
	_, man, err := ReadFile(filepath.Join(dir, want[4]))
	if err != nil || len(man) != 4 {
		t.Fatalf("manifest %q %v", man, err)
	}
	for _, m := range man {
		fi, err := os.Stat(filepath.Join(dir, m[0], m[1]))
		_, rows, rerr := ReadFile(filepath.Join(dir, m[0], m[1]))
		if err != nil || rerr != nil || m[3] != itoa(fi.Size()) || m[2] != itoa(int64(len(rows))) || len(m[4]) != 64 {
			t.Errorf("manifest row %q: file %v %v", m, err, rerr)
		}
	}
	const s = "1795405500000000000\t60\tground link\t7\t"
	golden := map[string]string{
		want[3]: "#interval_start\tinterval_s\tclass\tflow\thop_from\thop_to\tcount\tsum_ns\tsumsq_ns2\tmin_ns\tmax_ns\tlost\tmissed\tduplicate\treordered\tclashes\tdropped\tclock_err_ns\tclock_ok\n" +
			s + "gw\tmcc\t3\t45000000\t875000000000000\t5000000\t25000000\t0\t0\t1\t1\t0\t0\t\t0\n" +
			s + "gw\tsat\t0\t0\t0\t\t\t2\t1\t0\t0\t1\t0\t\t0\n" +
			"1795405500000000000\t60\ttm\t9\tin\tout\t1\t-3\t18446744073709551616\t-3\t-3\t0\t0\t0\t0\t0\t0\t\t0\n",
		want[0]: "#interval_start\tinterval_s\tclass\tflow\thop_from\thop_to\tslice\tlo_ns\thi_ns\tcount\n" +
			s + "gw\tmcc\t0\t\t10000000\t1\n" +
			s + "gw\tmcc\t1\t10000000\t20000000\t1\n" +
			s + "gw\tmcc\t2\t20000000\t\t1\n" +
			"1795405500000000000\t60\ttm\t9\tin\tout\t0\t\t\t1\n",
		want[2]: "#interval_start\tclass\tflow\tsig\thop_from\thop_to\tt_from\tt_to\tdelay_ns\tspan_from_ns\tspan_to_ns\tfirst_delay_ns\n" +
			"1795405500000000000\tground link\t7\t0000beef\tgw\tmcc\t1795405500000000010\t1795405500005000010\t5000000\t0\t0\t5000000\n" +
			"1795405500000000000\tground link\t7\t0000f00d\tgw\tmcc\t1795405500000020000\t1795405500005020000\t5000000\t20000\t35000\t4985000\n",
		want[1]: "#interval_start\tclass\tflow\tsig\tkind\thops\n" +
			"1795405500000000000\tground link\t7\tdeadbeef\tlost\tgw=1795405500000000100 sat= mcc=\n" +
			"1795405500000000000\tground link\t7\t00000001\tmissed\tgw= sat=1795405500000000200 mcc=1795405500000000300\n",
	}
	for name, g := range golden {
		if got := readAll(t, filepath.Join(dir, name)); got != g {
			t.Errorf("%s:\n%s\nwant\n%s", name, got, g)
		}
	}
	// The reader gives back the header and the rows.
	hdr, rows, err := ReadFile(filepath.Join(dir, want[3]))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hdr, ColsStats) || len(rows) != 3 || rows[1][9] != "" || rows[2][8] != "18446744073709551616" {
		t.Errorf("read back %q %q", hdr, rows)
	}
}

func TestWriteIntervalEmptyAndErrors(t *testing.T) {
	w, dir := newWriter(t)
	if err := w.WriteInterval(&reconcile.Interval{Start: start.UnixNano(), Length: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if got := listing(t, dir); len(got) != 0 {
		t.Errorf("empty interval wrote %q", got)
	}
	if err := w.WriteInterval(&reconcile.Interval{Start: start.UnixNano(), Length: time.Second}); err == nil {
		t.Error("wrong length accepted")
	}
	iv := testInterval()
	iv.Stats[0].Class = 0 // no one-way
	if err := w.WriteInterval(iv); err == nil || !strings.Contains(err.Error(), "class 0") {
		t.Errorf("class without one-way: %v", err)
	}
	if _, err := New(dir, &conf.Config{Interval: 1500 * time.Millisecond}); err == nil {
		t.Error("sub-second interval accepted")
	}
}

// TestAtomicSet checks that the files of an interval become visible under
// their final names only complete and together, after the commit, and that
// a failed write or commit leaves nothing behind (so that writing the
// interval again doubles nothing).
func TestAtomicSet(t *testing.T) {
	w, dir := newWriter(t)
	fail := errors.New("crash")
	testHookBeforeRename = func(tmp string) error {
		got := listing(t, dir)
		var tmps int
		for _, n := range got {
			if !strings.HasPrefix(filepath.Base(n), ".") || !strings.HasSuffix(n, ".tsv.tmp") {
				t.Errorf("%s visible before the commit", n)
			}
			tmps++
		}
		if tmps != 5 {
			t.Errorf("before the commit: %q, want 4 files and a manifest", got)
		}
		return fail
	}
	t.Cleanup(func() { testHookBeforeRename = nil })
	if err := w.WriteInterval(testInterval()); !errors.Is(err, fail) {
		t.Fatalf("error %v", err)
	}
	if got := listing(t, dir); len(got) != 0 {
		t.Errorf("after a failed write: %q", got)
	}
	testHookBeforeRename = nil
	c := &recCommitter{err: fail}
	w.SetCommitter(c)
	if err := w.WriteInterval(testInterval()); !errors.Is(err, fail) {
		t.Fatalf("error %v", err)
	}
	if got := listing(t, dir); len(got) != 0 || len(c.sets) != 1 {
		t.Errorf("after a failed commit: %q, %d commits", got, len(c.sets))
	}
	c.err = nil
	if err := w.WriteInterval(testInterval()); err != nil {
		t.Fatal(err)
	}
	if got := listing(t, dir); len(got) != 5 || len(c.sets) != 2 || c.sets[1].N != 0 {
		t.Errorf("after the commit: %q, commits %+v", got, c.sets)
	}
}

type recCommitter struct {
	sets []Set
	err  error
}

func (c *recCommitter) CommitSet(s *Set) error {
	c.sets = append(c.sets, *s)
	return c.err
}

// TestRecover: a kill after the commit leaves temporary files that Recover
// renames into place (roll forward); temporary files of a set not
// committed are removed.
func TestRecover(t *testing.T) {
	w, dir := newWriter(t)
	var kept map[string][]byte
	testHookBeforeRename = func(string) error {
		kept = map[string][]byte{}
		for _, n := range listing(t, dir) {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			kept[n] = b
		}
		return errors.New("killed")
	}
	t.Cleanup(func() { testHookBeforeRename = nil })
	if err := w.WriteInterval(testInterval()); err == nil {
		t.Fatal("no error")
	}
	restore := func() {
		for n, b := range kept {
			if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	set := Set{Start: start.UnixNano(), Types: []string{TypeStats, TypeHist, TypePacket, TypeIncomplete}, Manifest: true}
	// Killed after the commit and after two renames.
	restore()
	for _, typ := range []string{TypeSets, TypeStats} {
		if err := os.Rename(set.TmpPath(dir, typ), set.Path(dir, typ)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := Recover(dir, []Set{set}); err != nil || n != 1 {
		t.Fatalf("recover: %d %v", n, err)
	}
	want := []string{
		"owd_hist/owd_hist-20261123T034500Z.tsv",
		"owd_incomplete/owd_incomplete-20261123T034500Z.tsv",
		"owd_packet/owd_packet-20261123T034500Z.tsv",
		"owd_stats/owd_stats-20261123T034500Z.tsv",
		"sets/owd_stats-20261123T034500Z.tsv",
	}
	if got := listing(t, dir); !slices.Equal(got, want) {
		t.Errorf("rolled forward: %q", got)
	}
	// Killed before the commit: nothing remains.
	os.RemoveAll(dir)
	for _, d := range []string{TypeSets, TypeStats, TypeHist, TypePacket, TypeIncomplete} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	restore()
	if n, err := Recover(dir, nil); err != nil || n != 0 {
		t.Fatalf("recover: %d %v", n, err)
	}
	if got := listing(t, dir); len(got) != 0 {
		t.Errorf("rolled back: %q", got)
	}
}

// TestNoOverwrite: a collector restarted within an interval writes it
// again; the complete file already there must not change.
func TestNoOverwrite(t *testing.T) {
	w, dir := newWriter(t)
	for range 3 {
		if err := w.WriteInterval(testInterval()); err != nil {
			t.Fatal(err)
		}
	}
	var stats []string
	for _, n := range listing(t, dir) {
		if strings.HasPrefix(n, "owd_stats/") {
			stats = append(stats, n)
		}
	}
	want := []string{
		"owd_stats/owd_stats-20261123T034500Z.1.tsv",
		"owd_stats/owd_stats-20261123T034500Z.2.tsv",
		"owd_stats/owd_stats-20261123T034500Z.tsv",
	}
	if !slices.Equal(stats, want) {
		t.Errorf("%q", stats)
	}
}

func TestEventsAndFlowsCutAtIntervals(t *testing.T) {
	w, dir := newWriter(t)
	at := func(sec int) time.Time { return start.Add(time.Duration(sec) * time.Second) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WriteEvent(at(1), "collector:c1", "start", "version\t1\nline two\r"))
	must(w.WriteFlow(at(2), 3, "ground\tlink", "ip.src=10.0.0.1 l4.dport=53"))
	must(w.WriteEvent(at(59), "probe:p1", "capture.drops", "12"))
	if got := listing(t, dir); len(got) != 0 {
		t.Fatalf("rows written before their interval ended: %q", got)
	}
	must(w.WriteEvent(at(61), "probe:p1", "stop", "")) // next interval: waits for the cut
	must(w.WriteEvent(at(30), "probe:p2", "late", "")) // an earlier time joins the open file
	if got := listing(t, dir); len(got) != 0 {
		t.Fatalf("rows written before the cut: %q", got)
	}
	must(w.Cut(at(61)))
	ev0 := "events/events-20261123T034500Z.tsv"
	if got := listing(t, dir); !slices.Equal(got, []string{ev0, "flows/flows-20261123T034500Z.tsv"}) {
		t.Fatalf("after the cut: %q", got)
	}
	t0 := start.UnixNano()
	want := "#time\tsource\tkind\tdetail\n" +
		itoa(t0+1e9) + "\tcollector:c1\tstart\tversion 1 line two \n" +
		itoa(t0+59e9) + "\tprobe:p1\tcapture.drops\t12\n" +
		itoa(t0+61e9) + "\tprobe:p1\tstop\t\n" + itoa(t0+30e9) + "\tprobe:p2\tlate\t\n"
	if got := readAll(t, filepath.Join(dir, ev0)); got != want {
		t.Errorf("events:\n%q\nwant\n%q", got, want)
	}
	must(w.WriteEvent(at(62), "probe:p1", "x", ""))
	must(w.Close())
	ev1 := "events/events-20261123T034600Z.tsv"
	want = "#time\tsource\tkind\tdetail\n" + itoa(t0+62e9) + "\tprobe:p1\tx\t\n"
	if got := readAll(t, filepath.Join(dir, ev1)); got != want {
		t.Errorf("events after Close:\n%q\nwant\n%q", got, want)
	}
	h, rows, err := ReadFile(filepath.Join(dir, "flows/flows-20261123T034500Z.tsv"))
	if err != nil || !slices.Equal(h, ColsFlows) || len(rows) != 1 ||
		!slices.Equal(rows[0], []string{itoa(t0 + 2e9), "3", "ground link", "ip.src=10.0.0.1 l4.dport=53"}) {
		t.Errorf("flows %q %q %v", h, rows, err)
	}
	if err := w.WriteEvent(at(70), "x", "y", ""); err == nil {
		t.Error("write after Close accepted")
	}
}

func itoa(n int64) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int64) []byte {
	if n < 0 {
		return appendInt(append(b, '-'), -n)
	}
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"noheader.tsv": "a\tb\n",
		"width.tsv":    "#a\tb\n1\t2\n1\n",
		"empty.tsv":    "",
		"torn.tsv":     "#a\tb\n1\t2\n3\t4",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ReadFile(p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, _, err := ReadFile(filepath.Join(dir, "missing.tsv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestConcurrentWriters: events from other goroutines while intervals are
// written (go test -race).
func TestConcurrentWriters(t *testing.T) {
	w, dir := newWriter(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if err := w.WriteEvent(start.Add(time.Duration(i)*time.Second), "probe:p", "k", itoa(int64(g))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 20 {
		iv := testInterval()
		iv.Start += int64(i) * int64(time.Minute)
		if err := w.WriteInterval(iv); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range listing(t, dir) {
		if strings.HasPrefix(n, "events/") {
			_, rows, err := ReadFile(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			total += len(rows)
		}
		if strings.Contains(n, ".tmp") {
			t.Errorf("left behind: %s", n)
		}
	}
	if total != 800 {
		t.Errorf("%d event rows, want 800", total)
	}
}

// TestReconcileToSpool runs a small scenario from sightings to files.
func TestReconcileToSpool(t *testing.T) {
	cfg := testConfig()
	cfg.Classes[1].OneWay.MaxTransit = 100 * time.Millisecond
	cfg.Classes[1].OneWay.Timeout = 200 * time.Millisecond
	cfg.Classes[1].OneWay.DupWindow = time.Millisecond
	cfg.Classes[1].OneWay.PerPacket = true
	cfg.Classes[2].OneWay.MaxTransit = 100 * time.Millisecond
	cfg.Classes[2].OneWay.Timeout = 200 * time.Millisecond
	dir := filepath.Join(t.TempDir(), "spool")
	w, err := New(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := reconcile.New(cfg, w, reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddFlow(0, 1); err != nil {
		t.Fatal(err)
	}
	ns := start.UnixNano()
	r.Add(reconcile.Sighting{Flow: 0, Hop: 0, Sig: 1, TS: ns + 1e6})
	r.Add(reconcile.Sighting{Flow: 0, Hop: 1, Sig: 1, TS: ns + 5e6})
	r.Add(reconcile.Sighting{Flow: 0, Hop: 2, Sig: 1, TS: ns + 16e6})
	r.Add(reconcile.Sighting{Flow: 0, Hop: 0, Sig: 2, TS: ns + 2e6})
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	_, rows, err := ReadFile(filepath.Join(dir, "owd_stats/owd_stats-20261123T034500Z.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{itoa(ns), "60", "ground link", "0", "gw", "mcc", "1", "15000000", "225000000000000", "15000000", "15000000", "1", "0", "0", "0", "0", "0", "", "0"},
		{itoa(ns), "60", "ground link", "0", "gw", "sat", "1", "4000000", "16000000000000", "4000000", "4000000", "1", "0", "0", "0", "0", "0", "", "0"},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("stats %q\nwant %q", rows, want)
	}
	_, rows, err = ReadFile(filepath.Join(dir, "owd_incomplete/owd_incomplete-20261123T034500Z.tsv"))
	if err != nil || len(rows) != 1 || rows[0][5] != "gw="+itoa(ns+2e6)+" sat= mcc=" {
		t.Errorf("incomplete %q %v", rows, err)
	}
}

func TestAppendSig(t *testing.T) {
	for _, v := range []uint32{0, 1, 0xabcdef, 0x0badf00d, 0xffffffff, 0x80000000} {
		if got, want := string(appendSig([]byte("x"), v)), fmt.Sprintf("x%08x", v); got != want {
			t.Errorf("appendSig(%#x) = %q, want %q", v, got, want)
		}
	}
}
