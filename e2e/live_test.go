package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/internal/delayline"
	"github.com/tmon-project/tmon/internal/netlab"
	"github.com/tmon-project/tmon/internal/testenv"
	"github.com/tmon-project/tmon/reports"
	"golang.org/x/sys/unix"
)

// The live tests build a real path in network namespaces,
//
//	A (probe pa on veth-a) — R (tmon-delayline: 20 ms ± 2 ms, 1 % loss; tmon-collector) — B (probe pb on veth-b)
//
// send UDP and TCP traffic from A to B through it, and check what the
// collector wrote against two independent witnesses: a plain AF_PACKET
// socket on each measured interface (netlab.Sniffer: while some socket
// holds receive timestamping on, the kernel stamps each frame once in its
// network core for every socket on the interface, so the probe must report
// the same nanoseconds) and the delay line's record of what it dropped.
//
// In the live test nothing of the test turns receive timestamping on but
// the probes (the sniffers only read the core's stamp): a probe that left
// it to other processes would get stamps taken at its own socket's
// delivery, and the sniffers no stamp at all (netlab.ErrNoStamp). The collector listens in R on A's gateway address;
// observations cross the measured interfaces (the probes' own PDUs are
// not in any flow class) but never the delay line.

// liveOpts size a run.
type liveOpts struct {
	packets  int     // UDP datagrams
	rate     float64 // packets per second, UDP and TCP together
	tcpEvery int     // one TCP write after every tcpEvery datagrams
	live     string  // tmon-probe's live flag; "" replays the independent captures
	seed     uint64
	// bench: findings are returned (liveResult.problems), not test errors,
	// and the delay line does not spin (its CPU goes to the probes).
	bench bool
}

// liveResult is what a run measured.
type liveResult struct {
	truth     *liveTruth
	spool     spoolCheck
	residuals []int64
	probeLogs []string
	drops     []int // kernel ring drops per probe (-1: not reported)
	sendRate  float64
	elapsed   time.Duration
	problems  []string // bench: what tmon got wrong
	lab       []string // bench: where the lab strayed (the truth still holds)
	noTruth   bool     // bench: the independent captures dropped frames
}

// TestLivePath is the proof of live capture: two real probes capturing on
// the lab's interfaces must report every delivered packet's delay exactly
// as the independent captures' kernel timestamps say, and as lost exactly
// the packets the delay line dropped. -short runs a smaller load.
func TestLivePath(t *testing.T) {
	flag, missing := probeLiveFlag(t)
	if missing != "" {
		testenv.Skipf(t, "%s", missing)
	}
	o := liveOpts{packets: 20000, rate: 2200, tcpEvery: 10, live: flag, seed: 1}
	if testing.Short() {
		o.packets, o.rate = 4000, 2000
	}
	r := runLive(t, o)
	reportLive(t, r)
}

// TestLivePathReplay runs the same lab with the probes replaying the
// independent captures (written as pcap) instead of capturing live: it
// proves the lab, the delay line and the truth bookkeeping without live
// capture, and is what stands in for TestLivePath until the probe has it.
func TestLivePathReplay(t *testing.T) {
	r := runLive(t, liveOpts{packets: 4000, rate: 2000, tcpEvery: 10, seed: 2})
	reportLive(t, r)
}

func reportLive(t *testing.T, r *liveResult) {
	t.Helper()
	tr := r.truth
	t.Logf("%d test packets left A at %.0f/s; %d delivered, %d lost (= delay line drops %d), %d ambiguous; took %v",
		tr.sent, r.sendRate, len(tr.delivered), len(tr.lost), tr.drops, tr.ambiguous, r.elapsed.Round(time.Millisecond))
	if len(r.residuals) > 0 {
		t.Logf("residual (measured delay − delay line's intended delay) over %d packets: p50 %v, p99 %v, max %v",
			len(r.residuals), percentile(r.residuals, 0.5), percentile(r.residuals, 0.99), time.Duration(r.residuals[len(r.residuals)-1]))
	}
}

// runLive builds the lab, runs the traffic through it with the collector,
// the delay line, two probes and the independent captures, and checks the
// spool against the truth.
func runLive(t *testing.T, o liveOpts) *liveResult {
	t.Helper()
	begin := time.Now()
	c := &liveCheck{t: t, tolerant: o.bench}
	p := netlab.NewPath(t, netlab.PathOptions{DelayDev: "dl0", NoOffload: true}) // or skip
	buildDelayline(t)
	dir := t.TempDir()
	cfg := writeLiveConf(t, dir)
	spoolDir := filepath.Join(dir, "spool")
	recordPath := filepath.Join(dir, "delayline.tsv")

	spin := "200us"
	if o.bench {
		spin = "-1ns"
	}
	line := startIn(t, p.R, "tmon-delayline", "-dev", "dl0", "-delay", "20ms", "-jitter", "2ms", "-loss", "0.01",
		"-seed", fmt.Sprint(o.seed), "-record", recordPath, "-spin", spin)
	line.waitLog(t, "delayline ready", 20*time.Second)
	coll := startIn(t, p.R, "tmon-collector", "-config", cfg, "-name", "c1", "-spool", spoolDir)
	waitListening(t, coll)

	pcapA, pcapB := "", ""
	if o.live == "" {
		pcapA, pcapB = filepath.Join(dir, "hop-a.pcap"), filepath.Join(dir, "hop-b.pcap")
	}
	// Replay: the sniffers stand alone and turn the kernel's receive
	// stamps on themselves. Live: only the probes may.
	own := o.live == ""
	stampsBefore, err := netlab.KernelStampsOn(p.R)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := netlab.Sniff(p.A, netlab.IfaceA, netlab.SnifferOptions{Keep: testFrame(unix.PACKET_OUTGOING), Pcap: pcapA, OwnStamps: own})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := netlab.Sniff(p.B, netlab.IfaceB, netlab.SnifferOptions{Keep: testFrame(unix.PACKET_HOST), Pcap: pcapB, OwnStamps: own})
	if err != nil {
		sa.Stop()
		t.Fatal(err)
	}
	if own {
		// The sniffers' request turns the kernel's stamping on through a
		// deferred work item: a test frame sent before it runs would go
		// unstamped (ErrNoStamp). Wait for it.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			on, err := netlab.KernelStampsOn(p.R)
			if err != nil {
				t.Fatal(err)
			}
			if on {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the sniffers asked for receive stamps, yet the kernel does not stamp frames after 5 s")
			}
		}
	}
	var probes []*proc
	if o.live != "" {
		probes = append(probes,
			startIn(t, p.A, "tmon-probe", "-config", cfg, "-name", "pa", o.live),
			startIn(t, p.B, "tmon-probe", "-config", cfg, "-name", "pb", o.live))
		for _, pr := range probes {
			pr.waitLog(t, "probe starting", 20*time.Second)
			pr.waitLog(t, "stamped in the network core", 20*time.Second)
		}
		// The log line comes as the sockets open; give the rings a moment.
		time.Sleep(500 * time.Millisecond)
		waitKernelStamps(t, p.R, stampsBefore)
	}

	rcv, err := netlab.Listen(p.B, netlab.AddrB, liveUDPPort, liveTCPPort)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := netlab.Send(ctx, p.A, netlab.TrafficOptions{To: netlab.AddrB, UDPPort: liveUDPPort, TCPPort: liveTCPPort,
		Packets: o.packets, Rate: o.rate, TCPEvery: o.tcpEvery})
	if err != nil {
		t.Fatal(err)
	}
	// The last packets are at most ~25 ms behind; the TCP stream closed
	// gracefully, so nothing is left to retransmit.
	time.Sleep(300 * time.Millisecond)
	rcv.Close()
	noTruth := false
	dropsA, errA := sa.Stop()
	dropsB, errB := sb.Stop()
	if errA != nil || errB != nil {
		t.Fatalf("independent captures: %v, %v", errA, errB)
	}
	if dropsA != 0 || dropsB != 0 {
		if !o.bench {
			t.Fatalf("the independent captures dropped frames (A %d, B %d): no ground truth", dropsA, dropsB)
		}
		c.Labf("the independent captures dropped frames (A %d, B %d): no ground truth", dropsA, dropsB)
		noTruth = true
	}

	if o.live != "" {
		// Let the probes' rings hand over their last blocks, then stop them;
		// they drain their observations to the collector before exiting.
		time.Sleep(time.Second)
		for _, pr := range probes {
			pr.stop(t)
		}
	} else {
		probes = append(probes,
			startIn(t, p.A, "tmon-probe", "-config", cfg, "-name", "pa", "-read", pcapA),
			startIn(t, p.B, "tmon-probe", "-config", cfg, "-name", "pb", "-read", pcapB))
		for _, pr := range probes {
			pr.wait(t, 2*time.Minute)
		}
	}
	coll.stop(t)
	line.stop(t)

	f, err := os.Open(recordPath)
	if err != nil {
		t.Fatal(err)
	}
	record, err := delayline.ReadRecord(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	tr := buildTruth(c, sa.Frames(), sb.Frames(), record)
	// TCP may put several writes in one segment (the window is full) or
	// send one twice (a retransmission): only datagrams are counted.
	if tr.sentUDP != st.UDP {
		c.Errorf("A's capture has %d test datagrams; the sender wrote %d", tr.sentUDP, st.UDP)
	}
	if len(tr.lost) != tr.drops || tr.lineSent+tr.drops != tr.sent {
		c.Labf("captures: %d sent, %d lost; delay line: %d passed, %d dropped", tr.sent, len(tr.lost), tr.lineSent, tr.drops)
	}
	s, err := reports.ReadSpool(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	res := &liveResult{truth: tr, sendRate: float64(st.UDP+st.TCP) / st.Elapsed.Seconds()}
	if !noTruth {
		res.spool = checkSpool(c, s, tr)
		res.residuals = res.spool.residuals
	}
	for _, r := range res.residuals {
		if r < 0 {
			c.Errorf("a packet took %v less than the delay line held it", time.Duration(-r))
			break
		}
	}
	for _, pr := range probes {
		log := pr.log.String()
		res.probeLogs = append(res.probeLogs, log)
		d, ok := kernelDrops(log)
		switch {
		case !ok && o.live != "":
			d = -1
			c.Errorf("%s did not report its kernel ring drops", pr.name)
		case d != 0:
			c.Errorf("%s: the kernel dropped %d packets of its capture ring", pr.name, d)
		}
		res.drops = append(res.drops, d)
	}
	res.problems, res.lab, res.noTruth = c.problems, c.lab, noTruth
	if c.failed() && !o.bench {
		for _, pr := range probes {
			t.Logf("%s:\n%s", pr.name, tail(pr.log.String(), 20))
		}
		t.Logf("tmon-delayline:\n%s", line.log.String())
	}
	res.elapsed = time.Since(begin)
	return res
}

// waitKernelStamps waits until the kernel stamps frames in its network
// core, which the probes' sockets must have asked for (the key is turned on
// by a deferred work item). before says whether it already did before the
// probes started: then something else on the host holds it, and this run
// shows the probes' stamps are exact but not that they turned it on.
func waitKernelStamps(t *testing.T, ns netlab.NS, before bool) {
	t.Helper()
	if before {
		t.Logf("the kernel already stamped frames on receive before the probes started (another process on the host holds receive timestamping on)")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		on, err := netlab.KernelStampsOn(ns)
		if err != nil {
			t.Fatal(err)
		}
		if on {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the probes run, yet the kernel does not stamp frames in its network core: they did not turn receive timestamping on")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
