//go:build linux

package probe

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tmon-project/tmon/collector"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/internal/testenv"
)

// TestLiveFanoutPair runs a whole live probe in a fresh network namespace:
// one interface read through a two-socket fanout, paired with the other
// port of a "tap" (two veth pairs, one direction each), and a collector on
// the namespace's loopback. Every datagram sent on either port is sieved
// once, the four kernel rings drop nothing, and the end by cancellation
// (SIGINT) is clean: flushed, acked, no error.
func TestLiveFanoutPair(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "live probe test needs root (network namespaces and AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.Skipf(t, "live probe test needs the ip command (iproute2)")
	}
	ns := fmt.Sprintf("tmprobe-%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up")
	for i, p := range []string{"a", "b"} {
		ip("-n", ns, "link", "add", p+"0", "type", "veth", "peer", "name", p+"1")
		ip("-n", ns, "addr", "add", fmt.Sprintf("10.78.%d.1/24", i), "dev", p+"0")
		ip("-n", ns, "link", "set", p+"0", "up")
		ip("-n", ns, "link", "set", p+"1", "up")
		out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", p+"1").Output()
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(out))
		for k := range f {
			if f[k] == "link/ether" {
				ip("-n", ns, "neigh", "replace", fmt.Sprintf("10.78.%d.2", i), "lladdr", f[k+1], "dev", p+"0", "nud", "permanent")
			}
		}
	}
	cfg, err := conf.Parse(strings.NewReader(`<tmon version="live" interval="1s">
  <transport maxBuildTime="100ms" minGap="1ms" heartbeat="1s"/>
  <capture blocks="8" retire="10ms" poll="20ms"/>
  <clock assumeSynced="true"/>
  <collector name="c1" address="127.0.0.1:47399"/>
  <probe name="p" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="a1" pair="b1" fanout="2"/></probe>
  <flowClass name="udp"><filter><match field="ip.proto" value="udp"/></filter><granular fields="ip.src ip.dst l4.dport"/></flowClass>
</tmon>`), "live.xml")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		quiet = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	// in runs f on a thread inside the namespace; the thread is never
	// handed back (no UnlockOSThread) and dies with the goroutine.
	in := func(f func()) {
		go func() {
			runtime.LockOSThread()
			fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err == nil {
				err = unix.Setns(fd, unix.CLONE_NEWNET)
				unix.Close(fd)
			}
			if err != nil {
				t.Error(err)
				return
			}
			f()
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	collDone := make(chan error, 1)
	in(func() {
		collDone <- collector.Run(ctx, collector.Options{Config: cfg, Name: "c1", Spool: t.TempDir(), Logger: quiet, Ready: ready})
	})
	<-ready
	pctx, stop := context.WithCancel(context.Background())
	type result struct {
		res Result
		err error
	}
	probeDone := make(chan result, 1)
	started := make(chan struct{})
	in(func() {
		r, err := Run(pctx, Options{Config: cfg, Name: "p", Live: true, Logger: quiet, DrainTimeout: 10 * time.Second, Ready: started})
		probeDone <- result{r, err}
	})
	select {
	case <-started:
	case r := <-probeDone:
		t.Fatalf("probe ended before capturing: %v", r.err)
	}
	const n = 2000
	sent := make(chan error, 1)
	in(func() {
		sent <- func() error {
			var cs [2]*net.UDPConn
			for i := range cs {
				c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 78, byte(i), 2), Port: 7000})
				if err != nil {
					return err
				}
				defer c.Close()
				cs[i] = c
			}
			var b [16]byte
			for k := range n {
				b[0] = byte(k)
				// many source ports: flows spread over the fanout
				if _, err := cs[k%2].Write(b[:]); err != nil {
					return err
				}
			}
			return nil
		}()
	})
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	var r result
	select {
	case r = <-probeDone:
	case <-time.After(30 * time.Second):
		t.Fatal("probe did not stop after cancellation")
	}
	cancel()
	<-collDone
	if r.err != nil {
		t.Fatalf("probe: %v", r.err)
	}
	if len(r.res.Capture) != 4 {
		t.Fatalf("%d sockets, want 2 ports × fanout 2", len(r.res.Capture))
	}
	var kernel, drops uint64
	for _, c := range r.res.Capture {
		kernel += c.Packets
		drops += c.Drops
	}
	if drops != 0 || r.res.Sieve.Packets < n || r.res.Sieve.Wanted < n {
		t.Fatalf("kernel %d packets, %d drops (%+v); sieve %+v; analyser %+v", kernel, drops, r.res.Capture, r.res.Sieve, r.res.Analyser)
	}
	if st := r.res.Transport.Collectors[0]; st.Pending != 0 || st.Acked == 0 {
		t.Fatalf("transport %+v", st)
	}
}
