package e2e

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/tmon-project/tmon/internal/gen"
)

// TestEvents runs a collector and two probes and provokes what an operator
// must hear about: the collector unreachable and back (frozen, then
// thawed, while the probes send), signature clashes (generated), a datagram
// that is not tmon's. Every event must reach the collector's events spool
// — the probes' through their PDUs — with the probes' and the collector's
// start and stop, and from there the database (tmon-loader into SQLite).
func TestEvents(t *testing.T) {
	gc := gen.DefaultConfig()
	gc.Seed, gc.Rate, gc.Duration = 5, 500, 6*time.Second
	gc.Clashes = 6
	dir := t.TempDir()
	if _, _, err := gen.Generate(gc, dir); err != nil {
		t.Fatal(err)
	}
	mc, ma := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)), fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	udp := freePort(t)
	cfg := fmt.Sprintf(`<tmon version="events-1" interval="1s">
  <transport maxPduSize="1200" maxBuildTime="100ms" minGap="200us" initialTimeout="100ms" timeoutIncrement="50ms" maxRetries="2" heartbeat="500ms"/>
  <collector name="c1" address="127.0.0.1:%d"><metrics listen="%s"/></collector>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="a0" hop="A"/><metrics listen="%s"/></probe>
  <probe name="pb" id="2" key="f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"><interface name="b0" hop="B"/></probe>
`, udp, mc, ma) + fmt.Sprintf(siteClass, slicesAttr())
	cfgPath := filepath.Join(dir, "tmon.xml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	spoolDir := filepath.Join(dir, "spool")
	coll := start(t, "tmon-collector", "-config", cfgPath, "-name", "c1", "-spool", spoolDir)
	waitListening(t, coll)

	u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udp))
	if err != nil {
		t.Fatal(err)
	}
	u.Write(make([]byte, 64))
	u.Close()

	// pa replays in real time; the collector freezes until pa has given
	// up retrying (long-retry mode), then thaws while pa still sends.
	pa := start(t, "tmon-probe", "-config", cfgPath, "-name", "pa", "-read", filepath.Join(dir, "hop-a.pcap"), "-speed", "1")
	waitScrape(t, pa, ma, 30*time.Second, "the probe's first PDU", func(m metricSet) bool {
		return m.value(t, "tmon_probe_transport_submitted_total") > 0
	})
	coll.cmd.Process.Signal(syscall.SIGSTOP)
	thawed := false
	defer func() {
		if !thawed {
			coll.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	waitScrape(t, pa, ma, 30*time.Second, "long-retry mode", func(m metricSet) bool {
		return m.value(t, "tmon_probe_transport_long_retry_total") > 0
	})
	// The probe notices within its one-second watch.
	waitLog(t, pa, "collector.unreachable", 10*time.Second)
	coll.cmd.Process.Signal(syscall.SIGCONT)
	thawed = true
	waitLog(t, pa, "collector.back", 10*time.Second)
	pb := start(t, "tmon-probe", "-config", cfgPath, "-name", "pb", "-read", filepath.Join(dir, "hop-b.pcap"))
	pa.wait(t, 2*time.Minute)
	pb.wait(t, 2*time.Minute)
	// Every record decided: the signature.clash events are written at the
	// next interval, the stop event at the end.
	waitScrape(t, coll, mc, time.Minute, "every record decided", func(m metricSet) bool {
		return m.value(t, "tmon_collector_reconcile_records") == 0 && m.value(t, "tmon_collector_intervals_total") > 0
	})
	coll.stop(t)

	rows := spoolEvents(t, spoolDir)
	has := func(source, kind string) int {
		n := 0
		for _, r := range rows {
			if r[1] == source && r[2] == kind {
				n++
			}
		}
		return n
	}
	for _, w := range []struct{ source, kind string }{
		{"collector:c1", "start"}, {"collector:c1", "stop"},
		{"probe:pa", "start"}, {"probe:pa", "stop"}, {"probe:pb", "start"}, {"probe:pb", "stop"},
		{"probe:pa", "collector.unreachable"}, {"probe:pa", "collector.back"},
		{"collector:c1", "transport.refused"},
	} {
		if n := has(w.source, w.kind); n != 1 {
			t.Errorf("%d events %s from %s, want 1", n, w.kind, w.source)
		}
	}
	// The clash events add up to the clashes of owd_stats.
	clashEvents := 0
	re := regexp.MustCompile(`^count=(\d+) `)
	for _, r := range rows {
		if r[2] == "signature.clash" {
			m := re.FindStringSubmatch(r[3])
			if m == nil {
				t.Fatalf("signature.clash detail %q", r[3])
			}
			n, _ := strconv.Atoi(m[1])
			clashEvents += n
		}
	}
	clashStats := 0
	files, _ := filepath.Glob(filepath.Join(spoolDir, "owd_stats", "owd_stats-*.tsv"))
	for _, f := range files {
		for _, r := range readRows(t, f) {
			n, _ := strconv.Atoi(r[15])
			clashStats += n
		}
	}
	if clashStats == 0 || clashEvents != clashStats {
		t.Errorf("signature.clash events count %d clashes, owd_stats %d (the generator made %d pairs)", clashEvents, clashStats, gc.Clashes)
	}

	// On to the database: the events table holds the spool's rows.
	db := filepath.Join(dir, "tmon.db")
	out, err := exec.Command(filepath.Join(binDir, "tmon-loader"), "-spool", "c1="+spoolDir, "-db", "sqlite:"+db).CombinedOutput()
	if err != nil {
		t.Fatalf("tmon-loader: %v\n%s", err, out)
	}
	h, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	q, err := h.Query("SELECT time_ns, source, kind, detail FROM events WHERE collector = 'c1'")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var got, want []string
	for q.Next() {
		var ts int64
		var source, kind, detail string
		if err := q.Scan(&ts, &source, &kind, &detail); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{strconv.FormatInt(ts, 10), source, kind, detail}, "\t"))
	}
	for _, r := range rows {
		want = append(want, strings.Join(r, "\t"))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("events in the database differ from the spool:\ngot  %d rows %q\nwant %d rows %q", len(got), got, len(want), want)
	}
}

// spoolEvents returns every row of the spool's events files.
func spoolEvents(t *testing.T, spoolDir string) [][]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(spoolDir, "events", "events-*.tsv"))
	var rows [][]string
	for _, f := range files {
		rows = append(rows, readRows(t, f)...)
	}
	if len(rows) == 0 {
		t.Fatal("no events in the spool")
	}
	return rows
}

// waitLog polls p's output until it contains s.
func waitLog(t *testing.T, p *proc, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %v\n%s", p.name, s, timeout, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
