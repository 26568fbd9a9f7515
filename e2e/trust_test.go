package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/reports"
)

// The trust tests attack the collector as an adversary on the path would
// (issue 10): replays after a clean restart, forged heartbeats, floods from
// rotating sources, and configurations that cannot work.

// runTool runs a tmon binary to its end and returns its status and output.
func runTool(t *testing.T, name string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s %v did not end:\n%s", name, args, out.String())
		return 0, ""
	}
}

// TestConfigRefusedAtStart: a duration out of its range (the overflowing
// finalTimeout of issue 10) and a file without keys that does not opt out
// are refused by `tmon check` and by the collector itself, naming file,
// line and element; with the explicit opt-out the collector starts and
// says loudly that it is insecure.
func TestConfigRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	write := func(name, transport, keyAttr string) string {
		x := fmt.Sprintf(`<tmon version="t" interval="1s">
  %s
  <collector name="c1" address="127.0.0.1:%d"/>
  <probe name="pa" id="1"%s><interface name="a0" hop="A"/></probe>
</tmon>
`, transport, freePort(t), keyAttr)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(x), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key := ` key="` + keyA + `"`
	huge := write("huge.xml", `<transport finalTimeout="2562047h"/>`, key)
	for _, tool := range [][]string{{"tmon", "check", huge}, {"tmon-collector", "-config", huge, "-name", "c1", "-spool", filepath.Join(dir, "s1")}} {
		status, out := runTool(t, tool[0], tool[1:]...)
		want := huge + `:2: <transport>: finalTimeout="2562047h0m0s": must be between 1ms and 24h0m0s`
		if status == 0 || !strings.Contains(out, want) {
			t.Errorf("%s: status %d, output lacks %q:\n%s", tool[0], status, want, out)
		}
	}
	keyless := write("keyless.xml", `<transport/>`, "")
	for _, tool := range [][]string{{"tmon", "check", keyless}, {"tmon-collector", "-config", keyless, "-name", "c1", "-spool", filepath.Join(dir, "s2")},
		{"tmon-probe", "-config", keyless, "-name", "pa", "-read", "/dev/null"}} {
		status, out := runTool(t, tool[0], tool[1:]...)
		want := keyless + `:4: <probe name="pa">: no key: authentication is on by default`
		if status == 0 || !strings.Contains(out, want) {
			t.Errorf("%s: status %d, output lacks %q:\n%s", tool[0], status, want, out)
		}
	}
	insecure := write("insecure.xml", `<transport insecure="true"/>`, "")
	if status, out := runTool(t, "tmon", "check", insecure); status != 0 {
		t.Errorf("check of the opt-out: status %d\n%s", status, out)
	}
	coll := start(t, "tmon-collector", "-config", insecure, "-name", "c1", "-spool", filepath.Join(dir, "s3"))
	waitListening(t, coll)
	coll.stop(t)
	if !strings.Contains(coll.log.String(), "INSECURE") {
		t.Errorf("the insecure collector did not say so:\n%s", coll.log.String())
	}
	if ev := readEvents(t, filepath.Join(dir, "s3")); !strings.Contains(ev, "transport.insecure") {
		t.Errorf("no transport.insecure event:\n%s", ev)
	}
}

// TestReplayAfterCleanRestart: an eavesdropper records every datagram of
// both probes' signed sessions; the collector ends cleanly (its journal
// emptied), starts again, and the recording is replayed to it. Nothing of
// it may reach the spool (issue 10: 1.5× the delays): the collector kept
// the sessions' state, so the replayed PDUs are duplicates of ended
// sessions. The spool stays exact against the generator's truth.
func TestReplayAfterCleanRestart(t *testing.T) {
	e := newFaultEnv(t, 3, []string{"c1"}, "")
	for _, px := range e.proxies {
		px.Record()
	}
	coll := e.startCollector("c1")
	for _, p := range e.runProbes(30 * time.Second) {
		p.wait(t, 2*time.Minute)
	}
	coll.stop(t)
	e.checkSpool("c1")
	if fi, err := os.Stat(filepath.Join(e.spools["c1"], ".collector", "journal")); err != nil || fi.Size() != 0 {
		t.Fatalf("the journal was not emptied by the clean stop (%v): the test would not test a clean restart", err)
	}

	coll = e.startCollector("c1")
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(e.ports["c1"])))
	sent, acks := 0, 0
	for k, px := range e.proxies {
		rec := px.Recorded()
		if len(rec) == 0 {
			t.Fatalf("%v: nothing recorded", k)
		}
		c, err := net.DialUDP("udp", nil, to)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range rec {
			c.Write(d)
			sent++
			if i%32 == 31 {
				time.Sleep(time.Millisecond) // no socket buffer overflow
			}
		}
		// The collector answers each sequenced PDU it takes, duplicates
		// too: read until it has been quiet for a while.
		buf := make([]byte, 2048)
		for {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(buf); err != nil {
				break
			}
			acks++
		}
		c.Close()
	}
	coll.stop(t)
	t.Logf("replayed %d datagrams, %d acks", sent, acks)
	e.checkSpool("c1")
	ev := readEvents(t, e.spools["c1"])
	if strings.Count(ev, "probe.session") != 2 {
		t.Errorf("replayed sessions announced again as new:\n%s", ev)
	}
}

// TestForgedHeartbeatsAndRotatingFlood: before the probes start, forged
// heartbeats under both probes' ids (far-future probe times, which would
// close every interval ahead of the real sightings) and, while they run, a
// flood of forged PDUs from many source ports (each below the per-source
// limit). With authentication on by default none is taken; the flood
// guard, per source address, mutes the flood; the refusals reach the
// events spool while the attack runs, per reason, and the real
// observations are exact.
func TestForgedHeartbeatsAndRotatingFlood(t *testing.T) {
	e := newFaultEnv(t, 4, []string{"c1"}, "")
	coll := e.startCollector("c1")
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(e.ports["c1"])))
	wrong := pdu.NewSigner(bytes.Repeat([]byte{7}, 32))
	future := time.Now().Add(24 * time.Hour).UnixNano()
	for _, probe := range []uint16{1, 2} {
		c, err := net.DialUDP("udp", nil, to)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			h := pdu.Header{Type: pdu.TypeHeartbeat, Probe: probe, Session: uint32(time.Now().UnixMilli()) + uint32(i), Seq: 100, Floor: 101, ProbeTime: future}
			b, _ := wrong.Sign(pdu.AppendControl(nil, h))
			c.Write(b)
			c.Write(pdu.AppendControl(nil, h)) // unsigned
		}
		c.Close()
	}
	ps := e.runProbes(30 * time.Second)
	stop := make(chan struct{})
	flooded := make(chan int)
	go func() {
		n := 0
		defer func() { flooded <- n }()
		var b pdu.Builder = *pdu.NewBuilder(1000)
		b.AddEvent(pdu.Event{TS: 1, Kind: "forged", Detail: "x"})
		body := b.Finish(pdu.Header{Type: pdu.TypeEvents, ProbeTime: 1})
		for i := uint32(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// A new source port every 500 datagrams: under the old
			// per-(address, port) limit of 1000 a second.
			c, err := net.DialUDP("udp", nil, to)
			if err != nil {
				t.Error(err)
				return
			}
			for j := range uint32(500) {
				d := append([]byte(nil), body...)
				pdu.Restamp(d, 1, 0x7fffffff, i*1000+j, 1)
				sd, _ := wrong.Sign(d)
				c.Write(sd)
				n++
				if j%32 == 0 {
					time.Sleep(time.Millisecond) // ~30 k/s: the probes' datagrams are not lost in a full socket buffer
				}
			}
			c.Close()
		}
	}()
	for _, p := range ps {
		p.wait(t, 2*time.Minute)
	}
	close(stop)
	n := <-flooded
	coll.stop(t)
	e.checkSpool("c1")
	ev := readEvents(t, e.spools["c1"])
	var authTimes, floodTimes []string
	for line := range strings.SplitSeq(ev, "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 4 || f[2] != "transport.refused" {
			continue
		}
		switch {
		case strings.HasPrefix(f[3], "reason=auth "):
			authTimes = append(authTimes, f[0])
		case strings.HasPrefix(f[3], "reason=flood "):
			floodTimes = append(floodTimes, f[0])
		}
	}
	// Refusals are reported as they happen: one event a second per
	// reason while the flood runs (several seconds), not one at stop.
	if len(authTimes) < 2 || len(floodTimes) < 2 {
		t.Errorf("refusal events: %d auth, %d flood; want several of each while the attack runs:\n%s", len(authTimes), len(floodTimes), ev)
	}
	inv := invalidCounts(t, coll.log.String())
	if inv[13] == 0 { // flood
		t.Errorf("a flood of %d datagrams from rotating ports was never muted: %v", n, inv)
	}
	t.Logf("flood of %d datagrams; refused %v", n, inv)
	s, err := reports.ReadSpool(e.spools["c1"])
	if err != nil || len(s.Packets) == 0 {
		t.Fatalf("nothing measured: %v", err)
	}
}

// keyR is the key of the rogue probe of TestHostileInputBounded: a probe of
// the configuration whose key leaked, or a buggy one.
const keyR = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"

// procStatus returns a field of /proc/PID/status in kB (VmRSS, VmHWM).
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestHostileInputBounded: a probe with a valid key (leaked, or buggy)
// floods the collector while two real probes run: flow definitions with
// ids 2^24−1 and 2^24 (issue 10: 700 MB from one datagram) and a dense run
// of flow ids past maxFlows, 1500 sessions, and 3 × maxJournal of events
// PDUs (compactions keep the journal under the limit; past it only the
// probe over its share would be refused). The collector's peak RSS stays under
// the stated bound, the journal under its limit (plus one compaction's
// slack), the limits are reported as events, and the real probes' spool is
// exact. (The reconciler's record cap, maxRecords, is flooded in
// reconcile's own tests: a flood of records needs sightings at the
// path's hops, which only the real probes have.)
func TestHostileInputBounded(t *testing.T) {
	const (
		maxJournal = 2 << 20
		maxFlows   = 1 << 16
		// Peak RSS bound: the limits' worst case (64 Ki flow slots of 12 B,
		// 1024 sessions × 37 kB of duplicate window) plus the collector's
		// own working set, doubled for the race detector's shadow memory.
		rssBoundKB = 256 << 10
	)
	extra := fmt.Sprintf("/>\n  <limits maxJournal=\"%d\" maxFlows=\"%d\"", maxJournal, maxFlows)
	e := newFaultEnv(t, 4, []string{"c1"}, extra)
	// The rogue probe: in the configuration, with a key, on no hop.
	x, err := os.ReadFile(e.collConf)
	if err != nil {
		t.Fatal(err)
	}
	x = bytes.Replace(x, []byte("  <flowClass"), []byte(`  <probe name="rogue" id="3" key="`+keyR+`"><interface name="x0"/></probe>
  <flowClass`), 1)
	if err := os.WriteFile(e.collConf, x, 0o644); err != nil {
		t.Fatal(err)
	}
	coll := e.startCollector("c1")
	pid := coll.cmd.Process.Pid
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(e.ports["c1"])))
	ps := e.runProbes(30 * time.Second)

	c, err := net.DialUDP("udp", nil, to)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keyBytes := make([]byte, 32)
	for i := range keyBytes {
		keyBytes[i] = 0x5a
	}
	sg := pdu.NewSigner(keyBytes)
	session := uint32(time.Now().UnixMilli())
	seq := uint32(0)
	var journalMax int64
	jpath := filepath.Join(e.spools["c1"], ".collector", "journal")
	sent := 0
	send := func(b *pdu.Builder, typ pdu.Type) {
		seq++
		d := b.Finish(pdu.Header{Type: typ, ProbeTime: time.Now().UnixNano()})
		pdu.Restamp(d, 3, session, seq, seq)
		sd, _ := sg.Sign(d)
		c.Write(sd)
		b.Reset()
		if sent++; sent%32 == 0 {
			time.Sleep(time.Millisecond)
			if fi, err := os.Stat(jpath); err == nil {
				journalMax = max(journalMax, fi.Size())
			}
		}
	}
	b := pdu.NewBuilder(1200 - pdu.AuthSize) // maxPduSize less the MAC
	// Huge flow ids.
	for _, id := range []uint32{1<<24 - 1, 1 << 24} {
		b.AddFlowDef(pdu.FlowDef{ID: id, Key: flow.Key{Class: 0}})
		send(b, pdu.TypeFlowDef)
	}
	// A dense run of flow ids past maxFlows.
	for id := uint32(0); id < maxFlows+1<<12; id++ {
		if !b.AddFlowDef(pdu.FlowDef{ID: id, Key: flow.Key{Class: 0}}) {
			send(b, pdu.TypeFlowDef)
			b.AddFlowDef(pdu.FlowDef{ID: id, Key: flow.Key{Class: 0}})
		}
	}
	send(b, pdu.TypeFlowDef)
	// Thousands of sessions, each announced by a heartbeat. Heartbeats
	// are not acked: on a loaded machine some are lost in a full socket
	// buffer, so rounds of them go until the collector reports the limit
	// (at most 8 rounds: past that the limit is not enforced).
	n := uint32(0)
	for round := 0; round < 8 && !strings.Contains(coll.log.String(), "maxSessions="); round++ {
		for range 1500 {
			n++
			h := pdu.Header{Type: pdu.TypeHeartbeat, Probe: 3, Session: session + n, Seq: 0, Floor: 1, ProbeTime: 1}
			sd, _ := sg.Sign(pdu.AppendControl(nil, h))
			c.Write(sd)
			if n%2 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		waitFor := time.Now().Add(2 * time.Second)
		for time.Now().Before(waitFor) && !strings.Contains(coll.log.String(), "maxSessions=") {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Events that grow the journal past its limit.
	session += n + 1
	seq = 0
	detail := strings.Repeat("x", 1000)
	for range 3 * maxJournal / 1100 {
		b.AddEvent(pdu.Event{TS: time.Now().UnixNano(), Kind: "rogue", Detail: detail})
		send(b, pdu.TypeEvents)
	}
	for _, p := range ps {
		p.wait(t, 3*time.Minute)
	}
	hwm := procStatus(t, pid, "VmHWM")
	coll.stop(t)
	t.Logf("rogue sent %d PDUs; collector peak RSS %d MiB (bound %d MiB); journal at most %d bytes (limit %d)", sent, hwm>>10, rssBoundKB>>10, journalMax, maxJournal)
	if hwm > rssBoundKB {
		t.Errorf("collector peak RSS %d MiB, bound %d MiB", hwm>>10, rssBoundKB>>10)
	}
	if journalMax > maxJournal+1<<20 {
		t.Errorf("journal reached %d bytes, limit %d", journalMax, maxJournal)
	}
	e.checkSpool("c1")
	ev := readEvents(t, e.spools["c1"])
	for _, want := range []string{"maxFlows=", "maxSessions="} {
		if !strings.Contains(ev, want) {
			t.Errorf("no collector.limit event for %s", want)
		}
	}
}

// TestRecordLimitFlood: the collector's record limit (maxRecords, its
// lowest allowed value) flooded end to end by real probes. Probe pa replays
// its hop at full speed while pb has not started, so every sighting waits
// for pb's and the records pile up far past the limit; then pb replays its
// hop. Records forced out are dropped (fate unknown), and so are the later
// sightings of their packets: against the generator's truth, every delay
// measured is exact, nothing is called lost that was not lost, nothing
// missed, every sighting is accounted for, and the spool holds the
// reconcile.forced events.
func TestRecordLimitFlood(t *testing.T) {
	const maxRecords = 1024
	e := newFaultEnv(t, 4, []string{"c1"}, fmt.Sprintf("/>\n  <limits maxRecords=\"%d\"", maxRecords))
	coll := e.startCollector("c1")
	file := func(hop string) string { return filepath.Join(e.traffic, "hop-"+hop+".pcap") }
	pa := start(t, "tmon-probe", "-config", e.probeCfg["pa"], "-name", "pa", "-read", file("a"), "-speed", "0", "-drain", "1m")
	pa.wait(t, 2*time.Minute)
	pb := start(t, "tmon-probe", "-config", e.probeCfg["pb"], "-name", "pb", "-read", file("b"), "-speed", "0", "-drain", "1m")
	pb.wait(t, 2*time.Minute)
	coll.stop(t)

	s, inCls, measured, lostTrue, a := e.neverInvented(t, "c1")
	dropped := int(a["dropped"])
	if dropped == 0 || a["late"] != 0 {
		t.Errorf("accounting %v: want sightings dropped at the limit and none late", a)
	}
	if ev := readEvents(t, e.spools["c1"]); !strings.Contains(ev, "reconcile.forced") {
		t.Error("no reconcile.forced event in the spool")
	}
	t.Logf("%d packets in the class, %d measured exactly, %d of %d lost reported, %d sightings dropped at the limit; accounting %v",
		inCls, measured, len(s.Lost), lostTrue, dropped, a)
}

// TestShedUnderBudget: both probes replay at the original pace under a
// byte budget (bandwidth) far below what their sightings need, with a
// small window so that saturation shows within seconds. They shed by
// consistent hash instead of queueing without end, and say so; the
// collector counts the other hop's sightings of the packets left out as
// dropped. Against the generator's truth: every delay measured is exact,
// nothing is called lost that arrived, nothing is missed, every sighting
// is accounted for, and the spool holds the probes' shedding notices.
func TestShedUnderBudget(t *testing.T) {
	e := newFaultEnv(t, 10, []string{"c1"}, ` bandwidth="1300" window="4"`)
	coll := e.startCollector("c1")
	ps := e.runProbes(2 * time.Minute)
	for _, p := range ps {
		p.wait(t, 3*time.Minute)
	}
	coll.stop(t)
	s, inCls, measured, _, a := e.neverInvented(t, "c1")
	if a["dropped"] == 0 || a["late"] != 0 {
		t.Errorf("accounting %v: want the shed packets' other sightings dropped, none late", a)
	}
	ev := readEvents(t, e.spools["c1"])
	if !strings.Contains(ev, "probe.shed\tlevel=1 ") {
		t.Errorf("no shedding notice in the spool:\n%s", ev)
	}
	if measured == 0 || measured > inCls*3/4 {
		t.Errorf("measured %d of %d packets: the budget should force shedding, not stop measurement", measured, inCls)
	}
	for _, p := range ps {
		if !strings.Contains(p.log.String(), "shedding by consistent hash") {
			t.Errorf("%s did not log its shedding", p.name)
		}
	}
	t.Logf("%d packets in the class, %d measured exactly, %d lost reported; accounting %v", inCls, measured, len(s.Lost), a)
}

// neverInvented checks collector c's spool against the truth where the
// collector may have had to leave packets undecided (dropped): every delay
// measured is exact, nothing is called lost that arrived, nothing missed,
// and every accounting row balances. It returns the spool, the packets of
// the class, those measured, those truly lost, and the accounting sums.
func (e *faultEnv) neverInvented(t *testing.T, c string) (s *reports.Summary, inCls, measured, lostTrue int, acct map[string]uint64) {
	t.Helper()
	s, err := reports.ReadSpool(e.spools[c])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range e.truth {
		if !inClass(r) {
			continue
		}
		inCls++
		if r.Lost {
			lostTrue++
		}
		if d, ok := s.Packets[r.TA]; ok {
			measured++
			if r.Lost || d != r.Delay {
				t.Errorf("seq %d: delay %d, truth %d (lost %v)", r.Seq, d, r.Delay, r.Lost)
			}
		}
		if s.Lost[r.TA] && !r.Lost {
			t.Errorf("seq %d reported lost, truth: arrived after %d ns", r.Seq, r.Delay)
		}
	}
	if s.Missed != 0 {
		t.Errorf("%d packets reported missed; the truth has none", s.Missed)
	}
	acct, msg := readAccounting(e.spools[c])
	if msg != "" {
		t.Fatal(msg)
	}
	return s, inCls, measured, lostTrue, acct
}
