//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tmon-project/tmon/internal/testenv"
)

// netnsLab is a fresh network namespace with a veth pair v0 (10.77.0.1)
// – v1 (no address; the neighbour 10.77.0.2 is v1's MAC), deleted at
// cleanup.
type netnsLab struct{ name string }

func newNetnsLab(t *testing.T) *netnsLab {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "live capture test needs root (network namespaces and AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.Skipf(t, "live capture test needs the ip command (iproute2)")
	}
	l := &netnsLab{name: fmt.Sprintf("tmcap-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)}
	l.ip(t, "netns", "add", l.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.name).Run() })
	l.ip(t, "-n", l.name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	l.ip(t, "-n", l.name, "addr", "add", "10.77.0.1/24", "dev", "v0")
	l.ip(t, "-n", l.name, "link", "set", "v0", "up")
	l.ip(t, "-n", l.name, "link", "set", "v1", "up")
	out, err := exec.Command("ip", "-n", l.name, "-o", "link", "show", "v1").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	mac := ""
	for i := range f {
		if f[i] == "link/ether" && i+1 < len(f) {
			mac = f[i+1]
		}
	}
	l.ip(t, "-n", l.name, "neigh", "replace", "10.77.0.2", "lladdr", mac, "dev", "v0", "nud", "permanent")
	return l
}

func (l *netnsLab) ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// in runs f on an OS thread moved into the namespace. The thread is never
// given back to the Go scheduler (no UnlockOSThread): it ends with the
// goroutine, so no other goroutine ever runs in the namespace by accident.
// Sockets f opens stay in the namespace wherever they are used later.
func (l *netnsLab) in(f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+l.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns: %w", err)
			return
		}
		done <- f()
	}()
	return <-done
}

// TestLiveVeth sends a few thousand UDP datagrams from one end of a veth
// pair in a fresh namespace and captures them on the other end: every one
// arrives, stamped by the kernel in ns, in order, between the start and the
// end of the test; the datagrams to the "collector" are left out by the
// pre-filter; an idle socket times out and moves its clock on.
func TestLiveVeth(t *testing.T) {
	l := newNetnsLab(t)
	const n, own = 3000, 100
	collector := netip.MustParseAddrPort("10.77.0.2:47390")
	prog, err := PreFilter([]netip.AddrPort{collector}, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := AssembleFilter(prog)
	if err != nil {
		t.Fatal(err)
	}
	var src *LiveSource
	err = l.in(func() (err error) {
		src, err = OpenLive(LiveConfig{Iface: "v1", Index: 3, BlockSize: 1 << 20, Blocks: 8, Poll: 50 * time.Millisecond, Filter: raw})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	if src.TimestampSource() != "kernel" || src.TimestampFallback() == nil {
		t.Errorf("veth: timestamps %q (fallback %v), want kernel with a reason", src.TimestampSource(), src.TimestampFallback())
	}
	// Drain what the namespace sent before the filter was attached.
	for {
		if _, _, _, _, err := src.ReadPacket(); err != nil {
			break
		}
	}

	start := time.Now().UnixNano()
	sent := make(chan error, 1)
	go func() {
		sent <- l.in(func() error {
			c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 77, 0, 1)}, &net.UDPAddr{IP: net.IPv4(10, 77, 0, 2), Port: 9})
			if err != nil {
				return err
			}
			defer c.Close()
			pdu, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(collector))
			if err != nil {
				return err
			}
			defer pdu.Close()
			var b [32]byte
			for i := range n {
				binary.BigEndian.PutUint32(b[:], uint32(i))
				if _, err := c.Write(b[:]); err != nil {
					return err
				}
				if i%(n/own) == 0 {
					if _, err := pdu.Write(b[:]); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}()

	var got, other, back int
	var last int64
	deadline := time.Now().Add(10 * time.Second)
	for got < n && time.Now().Before(deadline) {
		data, ts, iface, lt, err := src.ReadPacket()
		if err != nil {
			if isTimeout(err) {
				continue
			}
			t.Fatal(err)
		}
		if iface != 3 || lt != LinkTypeEthernet {
			t.Fatalf("iface %d link type %d", iface, lt)
		}
		// The kernel stamps a frame where it enters the network core, on
		// whichever CPU handles it: two frames handled on different CPUs
		// can be stamped a hair out of their delivery order (seen once in
		// a loaded run). The order the capture delivers is the datagrams'
		// (checked below); a stamp may step back by a little, not by
		// what would be an hour, a second or a wrong unit.
		if ts < last-int64(time.Millisecond) {
			t.Fatalf("packet %d: time %d is %v before the previous %d", got, ts, time.Duration(last-ts), last)
		}
		if ts < last {
			back++
			t.Logf("packet %d: stamped %v before the previous", got, time.Duration(last-ts))
		}
		last = max(last, ts)
		if len(data) < 42 || binary.BigEndian.Uint16(data[12:]) != 0x0800 || data[23] != 17 {
			other++
			continue
		}
		switch binary.BigEndian.Uint16(data[36:]) {
		case 9:
			if seq := binary.BigEndian.Uint32(data[42:]); seq != uint32(got) {
				t.Fatalf("datagram %d arrived as number %d", seq, got)
			}
			got++
		case collector.Port():
			t.Fatal("a datagram to the collector passed the pre-filter")
		default:
			other++
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	end := time.Now().UnixNano()
	if got != n {
		t.Fatalf("captured %d of %d datagrams (%d other frames)", got, n, other)
	}
	if back > n/100 {
		t.Errorf("%d of %d stamps before their predecessor's: not the order of delivery", back, n)
	}
	if last < start || last > end {
		t.Fatalf("last stamp %d outside the test's [%d, %d]: not a kernel time in ns", last, start, end)
	}
	// Idle: a timeout, and the clock moves past the last packet.
	for {
		_, _, _, _, err := src.ReadPacket()
		if isTimeout(err) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := src.Clock(); c < last || c > time.Now().UnixNano() {
		t.Fatalf("idle clock %d, last packet %d", c, last)
	}
	st, err := src.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets < n || st.Drops != 0 {
		t.Fatalf("kernel counters %+v", st)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := src.ReadPacket(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestLiveNoInterface and the privilege message need no namespace.
func TestLiveNoInterface(t *testing.T) {
	_, err := OpenLive(LiveConfig{Iface: "tmon-no-such0"})
	if err == nil || !strings.Contains(err.Error(), "no such interface") {
		t.Fatalf("%v", err)
	}
}
