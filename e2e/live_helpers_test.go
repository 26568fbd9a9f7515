package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tmon-project/tmon/internal/delayline"
	"github.com/tmon-project/tmon/internal/netlab"
	"github.com/tmon-project/tmon/reports"
	"golang.org/x/sys/unix"
)

// The live tests' helpers: processes inside the lab's namespaces, the
// ground truth from the independent captures, and its comparison with the
// collector's spool.

var (
	delaylineOnce sync.Once
	delaylineErr  error
)

// buildDelayline builds tmon-delayline beside the other binaries (once;
// TestMain builds only tmon's own daemons).
func buildDelayline(t *testing.T) {
	t.Helper()
	delaylineOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", binDir+"/", "../cmd/tmon-delayline").CombinedOutput()
		if err != nil {
			delaylineErr = fmt.Errorf("building tmon-delayline: %v\n%s", err, out)
		}
	})
	if delaylineErr != nil {
		t.Fatal(delaylineErr)
	}
}

// startIn starts one of the built binaries inside a namespace. The
// process is the binary itself (ip netns exec execs it), so proc.stop's
// SIGTERM reaches it.
func startIn(t *testing.T, ns netlab.NS, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name + "@" + string(ns), log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = ns.Command(filepath.Join(binDir, name), args...)
	p.cmd.Stderr = p.log
	p.cmd.Stdout = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.log.String())
		}
	})
	return p
}

// waitLog waits until the process has written s.
func (p *proc) waitLog(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.log.String(), s) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s exited (%v) before logging %q:\n%s", p.name, err, s, p.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %v:\n%s", p.name, s, timeout, p.log.String())
		}
	}
}

// probeLiveFlag returns the flag that makes tmon-probe capture live on its
// configured interfaces, or "" and what is missing.
func probeLiveFlag(t *testing.T) (flag, missing string) {
	t.Helper()
	out, _ := exec.Command(filepath.Join(binDir, "tmon-probe"), "-h").CombinedOutput()
	if bytes.Contains(out, []byte("\n  -live")) {
		return "-live", ""
	}
	return "", "tmon-probe has no live capture yet (no -live flag in `tmon-probe -h`); " +
		"TestLivePathReplay runs the same lab with the probes replaying the independent captures"
}

// testFrame keeps the frames of the test traffic going from A to B: UDP
// to 9000 and TCP to 9001, leaving A (outgoing) or arriving at B (host).
func testFrame(pktType uint8) func(*netlab.Frame) bool {
	return func(f *netlab.Frame) bool {
		if f.PktType != pktType || len(f.Data) < 34 || f.Data[12] != 0x08 || f.Data[13] != 0x00 {
			return false
		}
		in, ok := delayline.Parse(f.Data[14:])
		return ok && isTestPacket(in)
	}
}

func isTestPacket(in delayline.Info) bool {
	return in.Proto == unix.IPPROTO_UDP && in.Dport == liveUDPPort || in.Proto == unix.IPPROTO_TCP && in.Dport == liveTCPPort
}

const (
	liveUDPPort  = 9000
	liveTCPPort  = 9001
	liveCollPort = 47390
)

// liveConf is the configuration of the live lab: the collector in R on
// A's gateway address (reached from B through R's local table; never
// through the delay line), one probe per end, one class per protocol.
// Offload is left to the lab (gso_max_segs 1 on veth-a): veth has no
// ethtool-visible offload worth turning off, and ethtool may be missing.
const liveConf = `<tmon version="live" interval="1s">
  <transport heartbeat="500ms"/>
  <capture timestamps="kernel" offload="false"/>
  <clock assumeSynced="true"/>
  <collector name="c1" address="%s:%d"/>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="%s" hop="A"/></probe>
  <probe name="pb" id="2" key="f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"><interface name="%s" hop="B"/></probe>
  <flowClass name="udp">
    <filter>
      <match field="ip.proto" value="udp"/>
      <match field="l4.dport" value="%d"/>
    </filter>
    <granular fields="ip.src ip.dst l4.dport"/>
    <oneWay hops="A B" maxTransit="1s" timeout="2s" perPacket="true">
      <hopPair from="A" to="B" slices="18ms 19ms 20ms 21ms 22ms 23ms 25ms"/>
    </oneWay>
  </flowClass>
  <flowClass name="tcp">
    <filter>
      <match field="ip.proto" value="tcp"/>
      <match field="l4.dport" value="%d"/>
    </filter>
    <granular fields="ip.src ip.dst l4.dport"/>
    <oneWay hops="A B" maxTransit="1s" timeout="2s" perPacket="true">
      <hopPair from="A" to="B" slices="18ms 19ms 20ms 21ms 22ms 23ms 25ms"/>
    </oneWay>
  </flowClass>
</tmon>`

func writeLiveConf(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "tmon.xml")
	x := fmt.Sprintf(liveConf, netlab.AddrRA, liveCollPort, netlab.IfaceA, netlab.IfaceB, liveUDPPort, liveTCPPort)
	if err := os.WriteFile(path, []byte(x), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// liveTruth is what the independent captures and the delay line's record
// say happened to the test packets.
type liveTruth struct {
	sent      int             // test packets captured leaving A
	sentUDP   int             // of which UDP datagrams
	delivered map[int64]int64 // A's capture time → B's − A's, unambiguous packets
	lost      map[int64]bool  // A's capture time of packets B never saw
	applied   map[int64]int64 // A's capture time → delay the line meant to apply
	ambiguous int             // packets whose bytes repeat (identical retransmissions)
	drops     int             // test packets the delay line dropped
	lineSent  int             // test packets the delay line passed
}

// buildTruth pairs A's and B's frames by the packet's identity (its bytes
// without what hops change), and joins the delay line's record.
func buildTruth(c *liveCheck, atA, atB []netlab.Frame, record []delayline.Entry) *liveTruth {
	c.t.Helper()
	byKey := func(frames []netlab.Frame) map[uint64][]int64 {
		m := map[uint64][]int64{}
		for _, f := range frames {
			in, _ := delayline.Parse(f.Data[14:])
			m[in.Key] = append(m[in.Key], f.TS)
		}
		return m
	}
	a, b := byKey(atA), byKey(atB)
	tr := &liveTruth{delivered: map[int64]int64{}, lost: map[int64]bool{}, applied: map[int64]int64{}}
	for _, f := range atA {
		if f.Data[14+9] == unix.IPPROTO_UDP {
			tr.sentUDP++
		}
	}
	line := map[uint64][]delayline.Entry{}
	for _, e := range record {
		in := delayline.Info{Proto: e.Proto, Dport: e.Dport}
		if !isTestPacket(in) {
			continue
		}
		line[e.Key] = append(line[e.Key], e)
		if e.Dropped() {
			tr.drops++
		} else {
			tr.lineSent++
		}
	}
	for k, ta := range a {
		tr.sent += len(ta)
		tb := b[k]
		if len(ta) > 1 || len(tb) > 1 || len(line[k]) > 1 {
			tr.ambiguous += len(ta)
			continue
		}
		if len(tb) == 0 {
			tr.lost[ta[0]] = true
			continue
		}
		if tb[0] <= ta[0] {
			c.Errorf("packet %016x at B (%d) before A (%d)", k, tb[0], ta[0])
		}
		tr.delivered[ta[0]] = tb[0] - ta[0]
		if es := line[k]; len(es) == 1 && !es[0].Dropped() {
			tr.applied[ta[0]] = es[0].Applied
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			c.Errorf("packet %016x seen at B but not at A", k)
		}
	}
	return tr
}

// checkSpool compares the collector's spool with the truth: every
// delivered packet reconciled with its exact delay, every lost packet
// reported lost, nothing else.
func checkSpool(c *liveCheck, s *reports.Summary, tr *liveTruth) spoolCheck {
	c.t.Helper()
	var exact, wrong, missing, lostFound int
	var residuals []int64
	for ta, owd := range tr.delivered {
		d, ok := s.Packets[ta]
		switch {
		case !ok:
			missing++
			if missing <= 5 {
				c.Errorf("packet at A %d (delay %d) not reconciled (reported lost: %v)", ta, owd, s.Lost[ta])
			}
		case d != owd:
			wrong++
			if wrong <= 5 {
				c.Errorf("packet at A %d: tmon says %d ns, the captures %d ns", ta, d, owd)
			}
		default:
			exact++
		}
		if ap, ok := tr.applied[ta]; ok {
			residuals = append(residuals, owd-ap)
		}
	}
	for ta := range tr.lost {
		if s.Lost[ta] {
			lostFound++
		} else if _, ok := s.Packets[ta]; ok {
			c.Errorf("packet at A %d was lost, yet tmon measured %d ns", ta, s.Packets[ta])
		}
	}
	if exact != len(tr.delivered) {
		c.Errorf("%d of %d delivered packets reconciled exactly (%d with another delay, %d missing)", exact, len(tr.delivered), wrong, missing)
	}
	if lostFound != len(tr.lost) {
		c.Errorf("%d of %d lost packets reported lost", lostFound, len(tr.lost))
	}
	if tr.ambiguous == 0 {
		if len(s.Packets) != len(tr.delivered) || len(s.Lost) != len(tr.lost) {
			c.Errorf("spool has %d delays and %d losses; the captures %d and %d", len(s.Packets), len(s.Lost), len(tr.delivered), len(tr.lost))
		}
	}
	var count, lost uint64
	for _, p := range s.Pairs {
		count += p.Count
		lost += p.Lost
		if p.Missed != 0 || p.Duplicate != 0 {
			c.Errorf("pair %v: missed %d duplicates %d, want 0", p.PairKey, p.Missed, p.Duplicate)
		}
	}
	if int(lost) != len(tr.lost) {
		c.Errorf("owd_stats count %d lost; the captures %d", lost, len(tr.lost))
	}
	if tr.ambiguous == 0 && int(count) != len(tr.delivered) {
		c.Errorf("owd_stats count %d delays; the captures %d", count, len(tr.delivered))
	}
	slices.Sort(residuals)
	var clashes uint64
	for _, p := range s.Pairs {
		clashes += p.Clashes
	}
	return spoolCheck{exact: exact, wrong: wrong + missing, clashes: clashes, residuals: residuals}
}

// spoolCheck is how the spool compared with the truth.
type spoolCheck struct {
	exact, wrong int    // delivered packets with the captures' delay, and not
	clashes      uint64 // signature clashes the collector counted
	// residuals are measured delay − the delay line's intended delay,
	// sorted.
	residuals []int64
}

func percentile(sorted []int64, q float64) time.Duration {
	v, _ := reports.Percentile(sorted, q)
	return time.Duration(v)
}

// liveCheck collects what a live run found wrong: as test errors, or, for
// the benchmark (tolerant), as a list that ends the stepping up.
type liveCheck struct {
	t        *testing.T
	tolerant bool
	problems []string // tmon measured something other than the truth
	lab      []string // the lab did something other than asked (the truth still holds)
}

// Labf reports the lab straying from its brief (packets lost outside the
// delay line, a sender behind its rate): an error in a test, a note in the
// benchmark, where it marks the lab's own limit rather than the probe's.
func (c *liveCheck) Labf(format string, args ...any) {
	c.t.Helper()
	if c.tolerant {
		c.lab = append(c.lab, fmt.Sprintf(format, args...))
		return
	}
	c.t.Errorf(format, args...)
}

func (c *liveCheck) Errorf(format string, args ...any) {
	c.t.Helper()
	if c.tolerant {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
		return
	}
	c.t.Errorf(format, args...)
}

func (c *liveCheck) failed() bool { return c.t.Failed() || len(c.problems) > 0 }

var kernelDropsRE = regexp.MustCompile(`Drops:(\d+)`)

// kernelDrops sums the kernel ring drops a probe reported when it finished
// ("probe finished ... capture=[{Packets:… Drops:… Freezes:…}]"); ok is
// false when the log has no such figure.
func kernelDrops(log string) (drops int, ok bool) {
	i := strings.LastIndex(log, "probe finished")
	if i < 0 {
		return 0, false
	}
	for _, m := range kernelDropsRE.FindAllStringSubmatch(log[i:], -1) {
		n, _ := strconv.Atoi(m[1])
		drops += n
		ok = true
	}
	return drops, ok
}
