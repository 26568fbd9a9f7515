package netlab

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/tmon-project/tmon/internal/delayline"
	"golang.org/x/sys/unix"
)

// testFrames keeps the A→B test datagrams (Ethernet, IPv4, UDP to 9000).
func testFrames(f *Frame) bool {
	if len(f.Data) < 14 || f.Data[12] != 0x08 || f.Data[13] != 0x00 {
		return false
	}
	in, ok := delayline.Parse(f.Data[14:])
	return ok && in.Proto == 17 && in.Dport == 9000
}

// TestDo: code runs inside the namespace and the thread comes back.
func TestDo(t *testing.T) {
	l := New(t)
	ns := l.AddNS("x")
	var inside uint64
	if err := ns.Do(func() error {
		var st unix.Stat_t
		err := unix.Stat("/proc/thread-self/ns/net", &st)
		inside = st.Ino
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var want unix.Stat_t
	if err := unix.Stat("/run/netns/"+string(ns), &want); err != nil {
		t.Fatal(err)
	}
	if inside != want.Ino {
		t.Fatalf("Do ran in netns %d, want %d", inside, want.Ino)
	}
	// Every thread of the process is back home (a cheap check: ours).
	for range 20 {
		if err := ns.Do(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if home, _ := os.Readlink("/proc/thread-self/ns/net"); home != self {
		t.Fatalf("this thread is in %s, the process in %s", home, self)
	}
}

// TestPathDirect: the path without a delay line forwards A→B, and both
// captures see every datagram, B after A.
func TestPathDirect(t *testing.T) {
	p := NewPath(t, PathOptions{})
	runPath(t, p, 2000, 5000, nil)
}

// TestPathDelayLine: with the delay line in R, each datagram's delay
// between the captures at A and B is what the line applied plus the
// forwarding time, and the datagrams lost are the ones it dropped.
func TestPathDelayLine(t *testing.T) {
	p := NewPath(t, PathOptions{DelayDev: "dl0"})
	var tun *delayline.TUN
	if err := p.R.Do(func() (err error) { tun, err = delayline.OpenTUN("dl0"); return err }); err != nil {
		t.Fatal(err)
	}
	var rec bytes.Buffer
	line, err := delayline.New(delayline.Config{Delay: 10 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.02, Seed: 1, Record: &rec}, tun)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- line.Run(ctx) }()
	stop := func() {
		cancel()
		tun.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	runPath(t, p, 2000, 2000, func(delivered, lost int, delays []int64) {
		stop()
		entries, err := delayline.ReadRecord(&rec)
		if err != nil {
			t.Fatal(err)
		}
		var drops int
		for _, e := range entries {
			if e.Dropped() && e.Proto == 17 && e.Dport == 9000 {
				drops++
			}
		}
		if lost != drops {
			t.Errorf("lost %d between the captures, the delay line dropped %d", lost, drops)
		}
		for _, d := range delays {
			// At least the shortest delay drawn; the upper bound is loose,
			// as a loaded machine can keep the line from its schedule.
			if d < int64(9*time.Millisecond) || d > int64(500*time.Millisecond) {
				t.Errorf("delay %v outside 10ms ± 1ms plus forwarding", time.Duration(d))
				break
			}
		}
	})
}

func runPath(t *testing.T, p *Path, n int, rate float64, check func(delivered, lost int, delays []int64)) {
	t.Helper()
	sa, err := Sniff(p.A, IfaceA, SnifferOptions{Keep: testFrames, OwnStamps: true})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := Sniff(p.B, IfaceB, SnifferOptions{Keep: testFrames, OwnStamps: true})
	if err != nil {
		sa.Stop()
		t.Fatal(err)
	}
	rcv, err := Listen(p.B, AddrB, 9000, 9001)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Send(context.Background(), p.A, TrafficOptions{To: AddrB, Packets: n, Rate: rate, TCPEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	udp, tcpBytes := rcv.Close()
	da, err := sa.Stop()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sb.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if da != 0 || db != 0 {
		t.Fatalf("capture drops: A %d, B %d", da, db)
	}
	if st.UDP != n || tcpBytes != int64(st.TCP)*20 {
		t.Errorf("sent %d datagrams and %d TCP writes; TCP receiver got %d bytes", st.UDP, st.TCP, tcpBytes)
	}
	atA := map[int64]int64{}
	for _, f := range sa.Frames() {
		in, _ := delayline.Parse(f.Data[14:])
		if f.PktType != unix.PACKET_OUTGOING {
			t.Fatalf("frame at A of type %d", f.PktType)
		}
		atA[in.Seq] = f.TS
	}
	if len(atA) != n {
		t.Fatalf("A captured %d distinct datagrams of %d", len(atA), n)
	}
	var delays []int64
	for _, f := range sb.Frames() {
		in, _ := delayline.Parse(f.Data[14:])
		ta, ok := atA[in.Seq]
		if !ok {
			t.Fatalf("B saw seq %d that A did not", in.Seq)
		}
		if f.TS <= ta {
			t.Fatalf("seq %d at B (%d) not after A (%d)", in.Seq, f.TS, ta)
		}
		delays = append(delays, f.TS-ta)
	}
	if int64(len(delays)) != udp {
		t.Errorf("B captured %d datagrams, the receiver read %d", len(delays), udp)
	}
	t.Logf("sent %d UDP + %d TCP in %v; %d delivered", st.UDP, st.TCP, st.Elapsed.Round(time.Millisecond), len(delays))
	if check != nil {
		check(len(delays), n-len(delays), delays)
	} else if len(delays) != n {
		t.Errorf("%d of %d delivered on a path without loss", len(delays), n)
	}
}

// TestKernelStampsOn: a socket that turns software receive timestamping on
// (a Sniffer with OwnStamps) makes the kernel stamp frames in its network
// core, which KernelStampsOn sees from another namespace: the key is
// global. (That it is off while no socket holds it cannot be asserted:
// any process on the host may hold it.)
func TestKernelStampsOn(t *testing.T) {
	l := New(t)
	a, b := l.AddNS("a"), l.AddNS("b")
	before, err := KernelStampsOn(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Sniff(a, "lo", SnifferOptions{OwnStamps: true, Keep: func(*Frame) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		on, err := KernelStampsOn(b)
		if err != nil {
			t.Fatal(err)
		}
		if on {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a socket holds SOF_TIMESTAMPING_RX_SOFTWARE, yet after 5 s the kernel does not stamp frames on receive")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("kernel stamps on receive: %v before the sniffer, true with it", before)
}
