//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/afpacket"
	"golang.org/x/sys/unix"

	"github.com/tmon-project/tmon/internal/netlab"
)

type fakeStamp struct {
	refuse map[int]error // by option
	set    map[int]int
}

func (f *fakeStamp) setsockopt(fd, level, opt, value int) error {
	if err := f.refuse[opt]; err != nil {
		return err
	}
	if f.set == nil {
		f.set = map[int]int{}
	}
	f.set[opt] = value
	return nil
}

func TestEnableReceiveStamps(t *testing.T) {
	f := &fakeStamp{}
	mode, err := enableReceiveStamps(f, 3)
	if err != nil || mode != StampAtReceive {
		t.Fatalf("mode %q, %v", mode, err)
	}
	if got := f.set[unix.SO_TIMESTAMPING]; got&unix.SOF_TIMESTAMPING_RX_SOFTWARE == 0 {
		t.Fatalf("SO_TIMESTAMPING %#x: RX_SOFTWARE, which turns the kernel's stamping on, is missing", got)
	}
	f = &fakeStamp{refuse: map[int]error{unix.SO_TIMESTAMPING: unix.ENOPROTOOPT}}
	if mode, err = enableReceiveStamps(f, 3); err != nil || mode != StampAtReceiveNS || f.set[unix.SO_TIMESTAMPNS] != 1 {
		t.Fatalf("SO_TIMESTAMPING refused: mode %q, %v, set %v", mode, err, f.set)
	}
	f = &fakeStamp{refuse: map[int]error{unix.SO_TIMESTAMPING: unix.ENOPROTOOPT, unix.SO_TIMESTAMPNS: unix.EINVAL}}
	_, err = enableReceiveStamps(f, 3)
	if !errors.Is(err, unix.ENOPROTOOPT) || !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "socket delivery") {
		t.Fatalf("both refused: %v", err)
	}
}

// TestLiveStampsInCore: a LiveSource makes the kernel stamp frames in its
// network core, so that a second, plain TPACKET ring on the same interface
// (one that asks for nothing) reports the very same nanoseconds for every
// frame. Without it, each ring takes its own time at delivery and no stamp
// agrees (unless another process on the host holds receive timestamping
// on: the kernel's switch is global; the test says so when it finds it on
// before the source opens).
func TestLiveStampsInCore(t *testing.T) {
	l := newNetnsLab(t)
	const n = 500
	var src *LiveSource
	var plain *afpacket.TPacket
	l.ip(t, "-n", l.name, "link", "set", "lo", "up")
	ns := netlab.NS(l.name)
	before, err := netlab.KernelStampsOn(ns)
	if err != nil {
		t.Fatal(err)
	}
	err = l.in(func() (err error) {
		src, err = OpenLive(LiveConfig{Iface: "v1", BlockSize: 1 << 16, Blocks: 64, Poll: 50 * time.Millisecond})
		if err != nil {
			return err
		}
		plain, err = afpacket.NewTPacket(afpacket.OptInterface("v1"), afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
			afpacket.OptBlockSize(1<<16), afpacket.OptNumBlocks(64), afpacket.OptPollTimeout(50*time.Millisecond))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(); plain.Close() })
	if before {
		t.Log("the kernel already stamped in its network core before the source opened: another process holds receive timestamping on")
	}
	if src.Stamping() != StampAtReceive {
		t.Errorf("stamping %q, want %q", src.Stamping(), StampAtReceive)
	}
	flags, err := unix.GetsockoptInt(socketFD(src.tp), unix.SOL_SOCKET, unix.SO_TIMESTAMPING)
	if err != nil || flags&unix.SOF_TIMESTAMPING_RX_SOFTWARE == 0 {
		t.Fatalf("the capture socket's SO_TIMESTAMPING is %#x (%v): RX_SOFTWARE not set", flags, err)
	}
	// The kernel turns its switch on in a deferred work item.
	deadline := time.Now().Add(5 * time.Second)
	for {
		on, err := netlab.KernelStampsOn(ns)
		if err != nil {
			t.Fatal(err)
		}
		if on {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the source is open, yet the kernel does not stamp in its network core")
		}
		time.Sleep(10 * time.Millisecond)
	}

	seq := func(data []byte) (uint32, bool) {
		if len(data) < 50 || binary.BigEndian.Uint16(data[12:]) != 0x0800 || data[23] != 17 || binary.BigEndian.Uint32(data[42:]) != 0x746d6f6e {
			return 0, false
		}
		return binary.BigEndian.Uint32(data[46:]), true
	}
	// Both rings are read while the datagrams are sent (a ring's block is
	// retired after a timeout even when nearly empty, so an unread ring
	// fills up with few packets).
	type stamps struct {
		ts  map[uint32]int64
		err error
	}
	read := func(next func() ([]byte, int64, error)) chan stamps {
		c := make(chan stamps, 1)
		go func() {
			m := map[uint32]int64{}
			deadline := time.Now().Add(10 * time.Second)
			for len(m) < n {
				data, ts, err := next()
				if (isTimeout(err) || errors.Is(err, afpacket.ErrTimeout)) && time.Now().Before(deadline) {
					continue
				}
				if err != nil {
					c <- stamps{m, err}
					return
				}
				if s, ok := seq(data); ok {
					m[s] = ts
				}
			}
			c <- stamps{m, nil}
		}()
		return c
	}
	oursC := read(func() ([]byte, int64, error) {
		data, ts, _, _, err := src.ReadPacket()
		return data, ts, err
	})
	plainC := read(func() ([]byte, int64, error) {
		data, ci, err := plain.ZeroCopyReadPacketData()
		return data, ci.Timestamp.UnixNano(), err
	})
	err = l.in(func() error {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 77, 0, 2), Port: 9})
		if err != nil {
			return err
		}
		defer c.Close()
		var b [16]byte
		for i := range n {
			binary.BigEndian.PutUint64(b[:], 0x746d6f6e<<32|uint64(i))
			if _, err := c.Write(b[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ours, other := <-oursC, <-plainC
	if ours.err != nil || other.err != nil {
		t.Fatalf("the source delivered %d of %d datagrams (%v), the plain ring %d (%v)", len(ours.ts), n, ours.err, len(other.ts), other.err)
	}
	equal := 0
	var worst time.Duration
	for s, ts := range other.ts {
		d := time.Duration(ts - ours.ts[s])
		if d == 0 {
			equal++
		}
		worst = max(worst, d.Abs())
	}
	if equal != n {
		t.Fatalf("%d of %d stamps equal to an independent ring's (worst difference %v): the kernel stamped at socket delivery", equal, n, worst)
	}
}
