package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tmon-project/tmon/internal/faultproxy"
	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/reports"
)

// The transport fault tests run real tmon-probe and tmon-collector
// processes over real UDP, with a faultproxy between every probe and every
// collector (one proxy per pair, so that one probe's link can fail alone),
// replaying generated traffic at its original pace, and check each
// collector's spool against the generator's truth: every delay exact,
// every loss found, nothing missed, nothing counted twice.
//
// Timescale. trafMon's defaults (final timeout 10 min, a 60 s partition)
// would take minutes per test; every duration is scaled down together so
// that the relations hold: initial timeout 100 ms, increment 100 ms, 3
// retries (the retries are exhausted ~1 s after a break: long-retry mode),
// final timeout 6 s, break border 1 s, heartbeat 300 ms. The "partition
// shorter than the final timeout" lasts 3 s; the "longer" one 10 s, which
// is also shorter than the collector's patience (2 × final + 3
// heartbeats), so the collector waits for the partitioned probe and learns
// from its notice which sightings were given up.
const faultConf = `<tmon version="faults" interval="2s">
  <transport maxPduSize="1200" maxBuildTime="100ms" minGap="1ms" initialTimeout="100ms" timeoutIncrement="100ms"
    maxRetries="3" finalTimeout="6s" breakBorder="1s" heartbeat="300ms"%s/>
%s  <probe name="pa" id="1" key="%s"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2" key="%s"><interface name="b0" hop="B"/></probe>
` + siteClass

const (
	keyA = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	keyB = "f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"
)

// faultEnv is one scenario's processes, proxies and files.
type faultEnv struct {
	t        *testing.T
	dir      string
	traffic  string
	truth    []gen.TruthRow
	colls    []string                        // collector names
	ports    map[string]int                  // collector → real port
	proxies  map[[2]string]*faultproxy.Proxy // (probe, collector) → proxy
	collProc map[string]*proc                // running collectors
	spools   map[string]string               // collector → spool dir
	collConf string                          // the collectors' configuration
	probeCfg map[string]string               // probe → its configuration (collector addresses: its proxies)
	extra    string                          // extra transport attributes
	procsMu  sync.Mutex
}

// newFaultEnv generates seconds of traffic and writes the configurations
// for collectors (names) with a proxy per probe and collector.
func newFaultEnv(t *testing.T, seconds float64, colls []string, extra string) *faultEnv {
	t.Helper()
	e := &faultEnv{t: t, dir: t.TempDir(), colls: colls, ports: map[string]int{}, proxies: map[[2]string]*faultproxy.Proxy{},
		collProc: map[string]*proc{}, spools: map[string]string{}, probeCfg: map[string]string{}, extra: extra}
	gc := gen.DefaultConfig()
	gc.Seed = 11
	gc.Rate = 800
	gc.Count = int(seconds * gc.Rate)
	gc.Loss, gc.Dup, gc.Frag, gc.Clashes, gc.IPv6 = 0.01, 0.003, 0.02, 4, 0.1
	e.traffic = filepath.Join(e.dir, "traffic")
	if _, _, err := gen.Generate(gc, e.traffic); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.truth, err = gen.ReadTruthFile(filepath.Join(e.traffic, "truth.tsv")); err != nil {
		t.Fatal(err)
	}
	e.truth = gen.Datagrams(e.truth) // tmon reassembles fragments
	var real strings.Builder
	for _, c := range colls {
		e.ports[c] = freePort(t)
		e.spools[c] = filepath.Join(e.dir, "spool-"+c)
		fmt.Fprintf(&real, "  <collector name=%q address=\"127.0.0.1:%d\"/>\n", c, e.ports[c])
	}
	e.collConf = e.write("collector.xml", real.String())
	for _, p := range []string{"pa", "pb"} {
		var via strings.Builder
		for i, c := range colls {
			px, err := faultproxy.New(netip.MustParseAddrPort("127.0.0.1:0"), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(e.ports[c])), uint64(7+i))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { px.Close() })
			e.proxies[[2]string{p, c}] = px
			fmt.Fprintf(&via, "  <collector name=%q address=%q/>\n", c, px.Addr())
		}
		e.probeCfg[p] = e.write("probe-"+p+".xml", via.String())
	}
	return e
}

func (e *faultEnv) write(name, collectors string) string {
	path := filepath.Join(e.dir, name)
	x := fmt.Sprintf(faultConf, e.extra, collectors, keyA, keyB, slicesAttr())
	if err := os.WriteFile(path, []byte(x), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// startCollector starts (or restarts) collector c on its spool.
func (e *faultEnv) startCollector(c string) *proc {
	e.t.Helper()
	p := start(e.t, "tmon-collector", "-config", e.collConf, "-name", c, "-spool", e.spools[c])
	waitListening(e.t, p)
	e.procsMu.Lock()
	e.collProc[c] = p
	e.procsMu.Unlock()
	return p
}

// runProbes starts both probes (paced replay) and returns them.
func (e *faultEnv) runProbes(drain time.Duration) []*proc {
	var ps []*proc
	for _, p := range []string{"pa", "pb"} {
		file := filepath.Join(e.traffic, map[string]string{"pa": "hop-a.pcap", "pb": "hop-b.pcap"}[p])
		ps = append(ps, start(e.t, "tmon-probe", "-config", e.probeCfg[p], "-name", p, "-read", file, "-speed", "1",
			"-drain", drain.String()))
	}
	return ps
}

// waitExit waits for a process and returns its exit error (not fatal).
func waitExit(t *testing.T, p *proc, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		t.Fatalf("%s did not finish within %v\n%s", p.name, timeout, p.log.String())
		return nil
	}
}

// setFaults sets the same faults on every proxy.
func (e *faultEnv) setFaults(up, down faultproxy.Faults) {
	for _, px := range e.proxies {
		px.SetFaults(up, down)
	}
}

// checkSpool checks collector c's spool against the truth: exact.
func (e *faultEnv) checkSpool(c string) *reports.Summary {
	e.t.Helper()
	s, err := reports.ReadSpool(e.spools[c])
	if err != nil {
		e.t.Fatal(err)
	}
	checkAgainstTruth(e.t, s, e.truth, 2*time.Second)
	return s
}

var invalidRe = regexp.MustCompile(`invalid="?\[([0-9 ]+)\]`)

// invalidCounts returns the receiver's refusal counters from a stopped
// collector's log (transport.Reason order).
func invalidCounts(t *testing.T, log string) []uint64 {
	t.Helper()
	m := invalidRe.FindAllStringSubmatch(log, -1)
	if m == nil {
		t.Fatalf("no receiver counters in the collector log:\n%s", log)
	}
	var out []uint64
	for _, f := range strings.Fields(m[len(m)-1][1]) {
		v, _ := strconv.ParseUint(f, 10, 64)
		out = append(out, v)
	}
	return out
}

// TestTransportLoss: 30 % of the datagrams lost each way, and some
// duplicated, reordered and corrupted: everything arrives, once.
func TestTransportLoss(t *testing.T) {
	e := newFaultEnv(t, 6, []string{"c1"}, "")
	coll := e.startCollector("c1")
	e.setFaults(faultproxy.Faults{Drop: 0.3, Duplicate: 0.05, Reorder: 0.05, Corrupt: 0.02},
		faultproxy.Faults{Drop: 0.3, Duplicate: 0.05, Reorder: 0.05, Corrupt: 0.02})
	for _, p := range e.runProbes(60 * time.Second) {
		p.wait(t, 2*time.Minute)
	}
	coll.stop(t)
	e.checkSpool("c1")
	inv := invalidCounts(t, coll.log.String())
	if inv[5]+inv[3]+inv[1]+inv[2]+inv[4] == 0 { // crc, length, short, magic, version: corruption is caught somewhere
		t.Errorf("no corrupted datagram refused: %v", inv)
	}
	for k, px := range e.proxies {
		st := px.Stats()
		t.Logf("%v: up %+v down %+v", k, st[0], st[1])
	}
}

// TestTransportPartitionShort: a 3 s partition of both probes (shorter
// than the final timeout): long-retry mode, then everything arrives.
func TestTransportPartitionShort(t *testing.T) {
	e := newFaultEnv(t, 8, []string{"c1"}, "")
	coll := e.startCollector("c1")
	ps := e.runProbes(60 * time.Second)
	time.Sleep(2500 * time.Millisecond)
	for _, px := range e.proxies {
		px.Partition(3 * time.Second)
	}
	for _, p := range ps {
		p.wait(t, 2*time.Minute)
	}
	coll.stop(t)
	s := e.checkSpool("c1")
	_ = s
	ev := readEvents(t, e.spools["c1"])
	if !strings.Contains(ev, "transport.long_retry") || !strings.Contains(ev, "transport.normal") {
		t.Errorf("no long-retry events in the spool:\n%s", ev)
	}
	if strings.Contains(ev, "transport.given_up") {
		t.Errorf("PDUs given up in a partition shorter than the final timeout:\n%s", ev)
	}
}

// TestTransportCollectorRestart: the collector is killed (SIGKILL) in the
// middle of the run and restarted 1 s later on the same spool: no probe
// restart, nothing lost, nothing counted twice.
func TestTransportCollectorRestart(t *testing.T) {
	e := newFaultEnv(t, 8, []string{"c1"}, "")
	e.startCollector("c1")
	ps := e.runProbes(60 * time.Second)
	time.Sleep(4 * time.Second) // two intervals closed, a third open
	old := e.collProc["c1"]
	old.cmd.Process.Signal(syscall.SIGKILL)
	<-old.done
	old.done <- nil
	time.Sleep(time.Second)
	coll := e.startCollector("c1")
	for _, p := range ps {
		p.wait(t, 2*time.Minute)
	}
	coll.stop(t)
	e.checkSpool("c1")
	if !strings.Contains(coll.log.String(), "replayed") {
		t.Errorf("the restarted collector did not replay its journal:\n%s", coll.log.String())
	}
}

// TestTransportRedundant: two collectors; c2 is down for the whole run.
// c1 gets everything; the probes keep c2's PDUs (flow definitions forever,
// the rest until given up) without slowing c1, back off their retries to
// c2 (long-retry mode: only the pilot keeps the initial timeout), and end
// with status 0 — a redundant collector down is a warning, not a failure —
// saying which collector missed what.
func TestTransportRedundant(t *testing.T) {
	e := newFaultEnv(t, 5, []string{"c1", "c2"}, "")
	coll := e.startCollector("c1")
	ps := e.runProbes(3 * time.Second)
	for _, p := range ps {
		if err := waitExit(t, p, 2*time.Minute); err != nil {
			t.Errorf("%s: %v although c1 acked everything:\n%s", p.name, err, p.log.String())
		}
		if !strings.Contains(p.log.String(), "redundant collector missed PDUs") {
			t.Errorf("%s does not say what c2 missed:\n%s", p.name, p.log.String())
		}
	}
	coll.stop(t)
	e.checkSpool("c1")
	for _, p := range []string{"pa", "pb"} {
		live, dead := e.proxies[[2]string{p, "c1"}].Stats()[0], e.proxies[[2]string{p, "c2"}].Stats()[0]
		t.Logf("%s: %d datagrams to c1, %d to the dead c2", p, live.In, dead.In)
		// Every PDU goes once to c2 (as to c1) and is retried with
		// exponential backoff (before it, at the 400 ms maximum timeout:
		// 950 datagrams for c1's 68; with it, ~300).
		if dead.In > 5*live.In {
			t.Errorf("%s sent %d datagrams to the dead c2, %d to c1: the retries do not back off", p, dead.In, live.In)
		}
	}
}

// TestTransportForgery: while the probes run, a forger floods the
// collector with PDUs under probe 1's id with a wrong key, with an unknown
// probe id, unsigned, malformed and oversized: all are refused and counted,
// none reaches the data, and the real probes are not starved.
func TestTransportForgery(t *testing.T) {
	e := newFaultEnv(t, 5, []string{"c1"}, "")
	coll := e.startCollector("c1")
	ps := e.runProbes(60 * time.Second)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		forge(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(e.ports["c1"])), stop)
	}()
	for _, p := range ps {
		p.wait(t, 2*time.Minute)
	}
	close(stop)
	wg.Wait()
	coll.stop(t)
	e.checkSpool("c1")
	inv := invalidCounts(t, coll.log.String())
	// Reason order: size short magic version length crc type malformed
	// direction window unknown_probe auth stale flood.
	if len(inv) < 14 || inv[10] == 0 || inv[11] == 0 || inv[0] == 0 {
		t.Errorf("refusals %v: want unknown_probe, auth and size counted", inv)
	}
	t.Logf("refused: %v", inv)
}

// forge sends forged datagrams until stop.
func forge(t *testing.T, to netip.AddrPort, stop chan struct{}) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	wrong := pdu.NewSigner(bytes.Repeat([]byte{1}, 32))
	var b pdu.Builder = *pdu.NewBuilder(1000)
	b.AddEvent(pdu.Event{TS: 1, Kind: "forged", Detail: "x"})
	body := b.Finish(pdu.Header{Type: pdu.TypeEvents, ProbeTime: 1})
	for i := uint32(1); ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		d := append([]byte(nil), body...)
		pdu.Restamp(d, 1, 0x7fffffff, i, 1) // probe 1's id, wrong key
		sd, _ := wrong.Sign(d)
		c.Write(sd)
		d = append([]byte(nil), body...)
		pdu.Restamp(d, 99, 1, i, 1) // unknown probe
		sd, _ = wrong.Sign(d)
		c.Write(sd)
		d = append([]byte(nil), body...)
		pdu.Restamp(d, 2, 1, i, 1) // unsigned
		c.Write(d)
		c.Write(make([]byte, 1300)) // oversized garbage
		if i%64 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

func readEvents(t *testing.T, spoolDir string) string {
	t.Helper()
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(spoolDir, "events", "*.tsv"))
	for _, f := range files {
		x, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(x)
	}
	return b.String()
}

// TestTransportPartitionLong: probe pb's link to the collector is cut for
// 10 s, longer than the final timeout (6 s): pb enters long-retry mode,
// keeps its break-border window, gives up the sightings older than the
// final timeout, and once the link is back says so. The collector waits
// for pb meanwhile (silent, not gone) and counts the packets whose B
// sighting was given up as dropped: every packet is measured exactly, or
// lost as in the truth, or dropped within the given-up span — never lost
// or missed because of the partition, never counted twice.
func TestTransportPartitionLong(t *testing.T) {
	e := newFaultEnv(t, 16, []string{"c1"}, "")
	coll := e.startCollector("c1")
	ps := e.runProbes(60 * time.Second)
	time.Sleep(3 * time.Second)
	e.proxies[[2]string{"pb", "c1"}].Partition(10 * time.Second)
	for _, p := range ps {
		p.wait(t, 2*time.Minute)
	}
	coll.stop(t)
	s, err := reports.ReadSpool(e.spools["c1"])
	if err != nil {
		t.Fatal(err)
	}
	ev := readEvents(t, e.spools["c1"])
	var spans [][2]int64
	for _, line := range strings.Split(ev, "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 4 || f[2] != "transport.given_up" {
			continue
		}
		if f[1] != "probe:pb" {
			t.Errorf("given up by %s, only pb was cut off: %s", f[1], line)
		}
		var a, b, c, d, fr, to int64
		if _, err := fmt.Sscanf(f[3], "seqs=%d-%d sightings=%d others=%d from=%d to=%d", &a, &b, &c, &d, &fr, &to); err != nil {
			t.Fatalf("notice %q: %v", f[3], err)
		}
		spans = append(spans, [2]int64{fr, to})
	}
	if len(spans) == 0 {
		t.Fatalf("nothing given up in a partition longer than the final timeout:\n%s", ev)
	}
	for _, k := range []string{"transport.long_retry", "transport.normal", "probe.unreachable", "probe.reachable"} {
		if !strings.Contains(ev, k) {
			t.Errorf("no %s event", k)
		}
	}
	inSpan := func(tb int64) bool {
		for _, sp := range spans {
			if tb >= sp[0]-int64(time.Second) && tb <= sp[1]+int64(time.Second) {
				return true
			}
		}
		return false
	}
	if len(s.Pairs) != 1 {
		t.Fatalf("pairs %d", len(s.Pairs))
	}
	p := s.Pairs[0]
	var delivered, lost, dropped int
	for _, r := range e.truth {
		if !inClass(r) {
			continue
		}
		if r.Lost {
			lost++
		} else {
			delivered++
		}
		got, ok := s.Packets[r.TA]
		switch {
		case ok && r.Lost:
			t.Errorf("lost packet seq %d measured", r.Seq)
		case ok && got != r.Delay:
			t.Errorf("seq %d: delay %d, truth %d", r.Seq, got, r.Delay)
		case ok:
		case r.Lost && s.Lost[r.TA]:
		case inSpan(r.TA):
			dropped++ // its B sighting (if any) was given up
		default:
			t.Errorf("seq %d (lost %v) neither measured, lost nor in a given-up span", r.Seq, r.Lost)
		}
	}
	if p.Missed != 0 || s.Missed != 0 {
		t.Errorf("missed %d/%d, want 0", p.Missed, s.Missed)
	}
	if int(p.Dropped) != dropped || s.Dropped != dropped {
		t.Errorf("dropped %d (per packet %d), want %d", p.Dropped, s.Dropped, dropped)
	}
	if int(p.Count+p.Lost+p.Dropped) != delivered+lost {
		t.Errorf("count %d + lost %d + dropped %d ≠ truth %d delivered + %d lost", p.Count, p.Lost, p.Dropped, delivered, lost)
	}
	if dropped == 0 || int(p.Count) < delivered/3 {
		t.Errorf("dropped %d, measured %d of %d: the partition should cost some, not most", dropped, p.Count, delivered)
	}
	t.Logf("measured %d, lost %d, dropped %d of %d packets; %d given-up notices", p.Count, p.Lost, p.Dropped, delivered+lost, len(spans))
}
