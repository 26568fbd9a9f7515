package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tmon-project/tmon/internal/gen"
)

// freeTCPPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// metricSet is one scrape of a metrics endpoint, parsed as Prometheus text.
type metricSet map[string]*dto.MetricFamily

// scrape fetches and parses http://addr/metrics.
func scrape(addr string) (metricSet, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("content type %q, want the text exposition format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	return p.TextToMetricFamilies(resp.Body)
}

// value returns the value of the sample of name whose labels include the
// given name, value pairs; the sum over every matching sample.
func (m metricSet) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	f, ok := m[name]
	if !ok {
		t.Fatalf("metric %s missing", name)
	}
	sum, n := 0.0, 0
outer:
	for _, s := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range s.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue outer
			}
		}
		n++
		switch {
		case s.Counter != nil:
			sum += s.GetCounter().GetValue()
		case s.Gauge != nil:
			sum += s.GetGauge().GetValue()
		default:
			sum += s.GetUntyped().GetValue()
		}
	}
	if n == 0 {
		t.Fatalf("metric %s has no sample with labels %v", name, labels)
	}
	return sum
}

// kind checks that name is a counter (ending in _total) or a gauge.
func (m metricSet) checkTypes(t *testing.T, prefix string) {
	t.Helper()
	n := 0
	for name, f := range m {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		n++
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			if !strings.HasSuffix(name, "_total") {
				t.Errorf("counter %s does not end in _total", name)
			}
		case dto.MetricType_GAUGE:
			if strings.HasSuffix(name, "_total") {
				t.Errorf("gauge %s ends in _total", name)
			}
		default:
			t.Errorf("%s: type %v", name, f.GetType())
		}
		if f.GetHelp() == "" {
			t.Errorf("%s: no help text", name)
		}
	}
	if n == 0 {
		t.Errorf("no metric named %s*", prefix)
	}
}

// waitScrape polls addr until cond holds on a scrape (or the process ends
// or the deadline passes) and returns that scrape.
func waitScrape(t *testing.T, p *proc, addr string, timeout time.Duration, what string, cond func(metricSet) bool) metricSet {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s exited (%v) while waiting for %s\n%s", p.name, err, what, p.log.String())
		default:
		}
		m, err := scrape(addr)
		if err == nil && cond(m) {
			return m
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s not seen within %v (last error %v)\n%s", p.name, what, timeout, lastErr, p.log.String())
	return nil
}

var finishedRE = regexp.MustCompile(`msg="probe finished" packets=(\d+) wanted=(\d+) flows=(\d+) sightings=(\d+) pdus=(\d+)`)

// TestMetricsEndpoints runs a collector and two replaying probes with
// metrics endpoints and checks, on scrapes parsed as Prometheus text, that
// the values are the daemons' own figures: the probes' against the
// generator's frame counts and the probes' final log lines, the
// collector's against the generator's losses and the spool files on disk.
// The log level of each daemon comes from the configuration.
func TestMetricsEndpoints(t *testing.T) {
	gc := gen.DefaultConfig()
	gc.Seed, gc.Rate, gc.Duration = 11, 1000, 3*time.Second
	gc.Loss, gc.Clashes = 0.03, 0
	dir := t.TempDir()
	sum, _, err := gen.Generate(gc, dir)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := gen.ReadTruthFile(filepath.Join(dir, "truth.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, r := range truth {
		if inClass(r) && r.Lost {
			lost++
		}
	}
	if lost == 0 {
		t.Fatal("the generator lost nothing: the loss check would prove nothing")
	}

	mc, ma, mb := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)), fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)), fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	udp := freePort(t)
	cfg := fmt.Sprintf(`<tmon version="health-1" interval="1s">
  <transport maxPduSize="1200" maxBuildTime="100ms" minGap="200us" initialTimeout="200ms" heartbeat="500ms"/>
  <collector name="c1" address="127.0.0.1:%d" logLevel="warn"><metrics listen="%s"/></collector>
  <probe name="pa" id="1" logLevel="debug" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="a0" hop="A"/><metrics listen="%s"/></probe>
  <probe name="pb" id="2" key="f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"><interface name="b0" hop="B"/><metrics listen="%s"/></probe>
`, udp, mc, ma, mb) + fmt.Sprintf(siteClass, slicesAttr())
	cfgPath := filepath.Join(dir, "tmon.xml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	spoolDir := filepath.Join(dir, "spool")
	coll := start(t, "tmon-collector", "-config", cfgPath, "-name", "c1", "-spool", spoolDir)
	// logLevel="warn": the collector does not say it listens; its
	// endpoint does.
	waitScrape(t, coll, mc, 20*time.Second, "the collector's endpoint", func(m metricSet) bool { return m["tmon_collector_info"] != nil })

	// A datagram that is not tmon's: rejected, counted by reason.
	u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udp))
	if err != nil {
		t.Fatal(err)
	}
	u.Write(make([]byte, 64))
	u.Close()
	waitScrape(t, coll, mc, 10*time.Second, "the rejected datagram", func(m metricSet) bool {
		return m.value(t, "tmon_collector_datagrams_rejected_total") == 1
	})

	// The collector is frozen while the probes replay: once their input
	// has ended they wait for its acks with every figure final.
	coll.cmd.Process.Signal(syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			coll.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	probes := []struct {
		name, file, addr string
		frames           int
		p                *proc
		m                metricSet
	}{
		{"pa", filepath.Join(dir, "hop-a.pcap"), ma, sum.FramesA, nil, nil},
		{"pb", filepath.Join(dir, "hop-b.pcap"), mb, sum.FramesB, nil, nil},
	}
	for i := range probes {
		pr := &probes[i]
		pr.p = start(t, "tmon-probe", "-config", cfgPath, "-name", pr.name, "-read", pr.file, "-drain", "2m")
	}
	for i := range probes {
		pr := &probes[i]
		pr.m = waitScrape(t, pr.p, pr.addr, time.Minute, "draining", func(m metricSet) bool {
			return m["tmon_probe_draining"] != nil && m.value(t, "tmon_probe_draining") == 1
		})
		m := pr.m
		m.checkTypes(t, "tmon_probe_")
		if got := m.value(t, "tmon_probe_sieve_packets_total"); got != float64(pr.frames) {
			t.Errorf("%s: sieve packets %v, the generator wrote %d frames", pr.name, got, pr.frames)
		}
		if m.value(t, "tmon_probe_transport_queue_pdus") == 0 {
			t.Errorf("%s: nothing queued while the collector is frozen", pr.name)
		}
		if a, b := m.value(t, "tmon_probe_transport_submitted_total"), m.value(t, "tmon_probe_pdus_built_total"); a != b {
			t.Errorf("%s: %v PDUs submitted, %v built", pr.name, a, b)
		}
		if m.value(t, "tmon_probe_transport_acked_total") != 0 {
			t.Errorf("%s: acks from a frozen collector", pr.name)
		}
	}
	coll.cmd.Process.Signal(syscall.SIGCONT)
	stopped = false
	delivered := 0.0
	for _, pr := range probes {
		pr.p.wait(t, 2*time.Minute)
		f := finishedRE.FindStringSubmatch(pr.p.log.String())
		if f == nil {
			t.Fatalf("%s: no final log line\n%s", pr.name, pr.p.log.String())
		}
		for i, name := range []string{"packets", "wanted", "flows", "sightings", "pdus"} {
			want, _ := strconv.ParseFloat(f[i+1], 64)
			var got float64
			switch name {
			case "packets":
				got = pr.m.value(t, "tmon_probe_sieve_packets_total")
			case "wanted":
				got = pr.m.value(t, "tmon_probe_sieve_packets_total", "outcome", "wanted")
			case "flows":
				continue // the analyser's, not exposed
			case "sightings":
				got = pr.m.value(t, "tmon_probe_sightings_total")
			case "pdus":
				got = pr.m.value(t, "tmon_probe_pdus_built_total")
			}
			if got != want {
				t.Errorf("%s: %s: metrics %v, final log %v", pr.name, name, got, want)
			}
		}
		delivered += pr.m.value(t, "tmon_probe_pdus_built_total") + 1 // and the Bye
	}
	if !strings.Contains(probes[0].p.log.String(), "level=DEBUG") {
		t.Errorf("pa has logLevel=\"debug\" and logged nothing at debug level")
	}
	if strings.Contains(probes[1].p.log.String(), "level=DEBUG") {
		t.Errorf("pb logs at debug level without being asked to")
	}

	// Every PDU delivered once, every record decided, every file written.
	m := waitScrape(t, coll, mc, time.Minute, "all PDUs delivered and the spool written", func(m metricSet) bool {
		return m.value(t, "tmon_collector_pdus_delivered_total") == delivered &&
			m.value(t, "tmon_collector_reconcile_records") == 0 &&
			spoolMatches(t, spoolDir, m) == nil
	})
	// spoolMatches held inside waitScrape; checking it again against this
	// older scrape races the collector's next cut (a flows file written since).
	m.checkTypes(t, "tmon_collector_")
	count, lostRows := sumStats(t, spoolDir)
	if got := m.value(t, "tmon_collector_records_total", "outcome", "lost"); got != float64(lost) || lostRows != lost {
		t.Errorf("lost: metrics %v, owd_stats %d, generator %d", got, lostRows, lost)
	}
	if got := m.value(t, "tmon_collector_records_total", "outcome", "completed"); got != float64(count) {
		t.Errorf("completed records: metrics %v, owd_stats count %d", got, count)
	}
	if got := m.value(t, "tmon_collector_datagrams_rejected_total", "reason", "magic"); got != 1 {
		t.Errorf("rejected for a bad magic: %v, want 1", got)
	}
	coll.stop(t)
	if strings.Contains(coll.log.String(), "level=INFO") {
		t.Errorf("the collector has logLevel=\"warn\" and logged at info level")
	}
}

// spoolMatches says whether the files and rows on disk are those the
// collector's metrics count, per type.
func spoolMatches(t *testing.T, dir string, m metricSet) error {
	t.Helper()
	for _, typ := range []string{"flows", "events", "owd_stats", "owd_hist", "owd_packet", "owd_incomplete"} {
		files, _ := filepath.Glob(filepath.Join(dir, typ, typ+"-*.tsv"))
		rows := 0
		for _, f := range files {
			rows += len(readRows(t, f))
		}
		if got := m.value(t, "tmon_collector_spool_files_total", "type", typ); got != float64(len(files)) {
			return fmt.Errorf("%s: %v files counted, %d on disk", typ, got, len(files))
		}
		if got := m.value(t, "tmon_collector_spool_rows_total", "type", typ); got != float64(rows) {
			return fmt.Errorf("%s: %v rows counted, %d on disk", typ, got, rows)
		}
	}
	return nil
}

// readRows returns the data rows of a spool file, split into columns.
func readRows(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			out = append(out, strings.Split(l, "\t"))
		}
	}
	return out
}

// sumStats sums the count and lost columns of every owd_stats file.
func sumStats(t *testing.T, dir string) (count, lost int) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "owd_stats", "owd_stats-*.tsv"))
	for _, f := range files {
		for _, r := range readRows(t, f) {
			c, _ := strconv.Atoi(r[6])
			l, _ := strconv.Atoi(r[11])
			count += c
			lost += l
		}
	}
	return count, lost
}
