package query

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/loader"
)

// constructed builds a database with the loader's schema (an empty load)
// and the given per-flow rows, for figures known by construction; then the
// loader runs again and builds the per-class rows from them, as for a
// database of an older loader.
func constructed(t *testing.T, stmts ...string) *DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tmon.db")
	emptyLoad := func() {
		l, err := loader.New(loader.Config{DB: "sqlite:" + path, Spools: []loader.Spool{{Collector: "c1", Dir: t.TempDir()}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if _, err := l.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	emptyLoad()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, s := range stmts {
		if _, err := raw.Exec(s); err != nil {
			t.Fatalf("%v\n%s", err, s)
		}
	}
	emptyLoad()
	db, err := Open("sqlite:" + path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// statsRow is an owd_stats_1m row with the counters given and 0 elsewhere.
func statsRow(start time.Time, flow int, from, to string, count, meanMs, lost int64) string {
	return fmt.Sprintf(`INSERT INTO owd_stats_1m (start_ns, flow_id, hop_from, hop_to, samples, count, sum_ns, sumsq_ns2, min_ns, max_ns,
		lost_sum, lost_sumsq, lost_min, lost_max, missed_sum, missed_sumsq, missed_min, missed_max,
		duplicate_sum, duplicate_sumsq, duplicate_min, duplicate_max, reordered_sum, reordered_sumsq, reordered_min, reordered_max,
		clashes_sum, clashes_sumsq, clashes_min, clashes_max)
		VALUES (%d, %d, '%s', '%s', 1, %d, %d, '0', %d, %d, %d, '0', 0, 0, 0, '0', 0, 0, 0, '0', 0, 0, 0, '0', 0, 0, 0, '0', 0, 0)`,
		start.UnixNano(), flow, from, to, count, count*meanMs*1e6, meanMs*1e6, meanMs*1e6, lost)
}

// A three-hop class A → B → C: the path orders the hops by their delay
// from A whatever their names, gives the consecutive segments and the
// end-to-end pair, and each figure is the one written.
func TestPathThreeHops(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	// Hop names chosen so that alphabetical order (A, M, Z) is not the
	// path order (A, Z, M).
	db := constructed(t,
		"INSERT INTO flows (id, collector, class, flow_key, first_ns) VALUES (1, 'c1', 'three', 'k', 0)",
		statsRow(t0, 1, "A", "Z", 1000, 5, 10), // segment 1: 5 ms, 1 % lost
		statsRow(t0, 1, "Z", "M", 990, 7, 20),  // segment 2: 7 ms
		statsRow(t0, 1, "A", "M", 970, 12, 30), // end to end: 12 ms
		statsRow(t0.Add(time.Minute), 1, "A", "Z", 500, 5, 0),
	)
	// Within one hour: only the minute rows written here are read.
	s, err := Parse(map[string][]string{"period": {"custom"}, "from": {"2026-06-01T12:00"}, "to": {"2026-06-01T12:30"}, "class": {"three"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, err := db.Path(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Hops, " "); got != "A Z M" {
		t.Fatalf("hops %q, want A Z M (by delay from A)", got)
	}
	if len(p.Segments) != 2 || p.EndToEnd == nil || len(p.Other) != 0 {
		t.Fatalf("segments %d, end to end %v, other %d", len(p.Segments), p.EndToEnd, len(p.Other))
	}
	want := []struct {
		from, to    string
		count, lost int64
		mean        float64
	}{{"A", "Z", 1500, 10, 5e6}, {"Z", "M", 990, 20, 7e6}}
	for i, w := range want {
		sg := p.Segments[i]
		m, _ := sg.Mean()
		if sg.HopFrom != w.from || sg.HopTo != w.to || sg.Count != w.count || sg.Lost != w.lost || m != w.mean {
			t.Errorf("segment %d: %s→%s count %d lost %d mean %v; want %+v", i, sg.HopFrom, sg.HopTo, sg.Count, sg.Lost, m, w)
		}
	}
	if m, _ := p.EndToEnd.Mean(); p.EndToEnd.HopFrom != "A" || p.EndToEnd.HopTo != "M" || m != 12e6 || p.EndToEnd.Count != 970 {
		t.Errorf("end to end %s→%s mean %v count %d", p.EndToEnd.HopFrom, p.EndToEnd.HopTo, m, p.EndToEnd.Count)
	}
}

// Events: period, collector, source and kind-prefix filters; probes' clock,
// drop and retry events parsed from their text as the probe writes it.
func TestEventsAndProbes(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ev := func(dt time.Duration, line int, coll, src, kind, detail string) string {
		return fmt.Sprintf("INSERT INTO events (time_ns, file_id, line, collector, source, kind, detail) VALUES (%d, 1, %d, '%s', '%s', '%s', '%s')",
			t0.Add(dt).UnixNano(), line, coll, src, kind, detail)
	}
	db := constructed(t,
		ev(0, 1, "c1", "probe:pa", "clock.sync", "clock synchronised: offset 1.5ms, root distance 250µs (ntp1, stratum 2)"),
		ev(time.Minute, 2, "c1", "probe:pa", "clock.budget", "clock error bound 12ms (offset -11.5ms, root distance 500µs, ntp1 stratum 2) exceeds the budget 10ms"),
		ev(2*time.Minute, 3, "c1", "probe:pb", "capture.drops", "b0: the kernel ring dropped 42 of 1000 packets since the last check (ring full 3 times); the sieve does not keep up"),
		ev(3*time.Minute, 4, "c2", "collector:c2", "start", "collector c2 started"),
		// As probe/watch.go's retryMonitor writes it (TestRetryMonitor).
		ev(4*time.Minute, 6, "c1", "probe:pb", "transport.retries", "collector 127.0.0.1:9000: 7 retries of 100 PDUs sent in the last 10s"),
		ev(48*time.Hour, 5, "c1", "probe:pa", "clock.sync", "outside the period"),
	)
	s, err := Parse(map[string][]string{"period": {"custom"}, "from": {"2026-06-01"}, "to": {"2026-06-02"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	count := func(s Selection, f EventFilter) int {
		evs, err := db.Events(ctx, s, f)
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	c2 := s
	c2.Collector = "c2"
	for _, c := range []struct {
		what string
		got  int
		want int
	}{
		{"period", count(s, EventFilter{}), 5},
		{"collector c2", count(c2, EventFilter{}), 1},
		{"source probe:pa", count(s, EventFilter{Source: "probe:pa"}), 2},
		{"kind clock.", count(s, EventFilter{Kind: "clock."}), 2},
		{"kind with a LIKE wildcard", count(s, EventFilter{Kind: "clock_"}), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d events, want %d", c.what, c.got, c.want)
		}
	}
	ps, err := db.Probes(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "pa" || ps[1].Name != "pb" {
		t.Fatalf("probes %+v", ps)
	}
	pa := ps[0]
	if len(pa.Clock) != 2 || !pa.Clock[0].Known || pa.Clock[0].Offset != 1500*time.Microsecond || pa.Clock[0].RootDistance != 250*time.Microsecond ||
		pa.Clock[1].Offset != -11500*time.Microsecond || pa.Clock[1].Kind != "clock.budget" {
		t.Errorf("pa clock %+v", pa.Clock)
	}
	if d := ps[1].Drops; len(d) != 1 || d[0].Dropped != 42 || d[0].OfPkt != 1000 {
		t.Errorf("pb drops %+v", d)
	}
	if r := ps[1].Retries; len(r) != 1 || r[0].Collector != "127.0.0.1:9000" || r[0].Retries != 7 || r[0].Sent != 100 || r[0].Period != "10s" ||
		!r[0].T.Equal(t0.Add(4*time.Minute)) {
		t.Errorf("pb retries %+v", r)
	}
}
