package netlab

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Frame is one frame a Sniffer saw, with the kernel's timestamp.
type Frame struct {
	TS      int64  // SCM_TIMESTAMPING software stamp: ns since the Unix epoch, CLOCK_REALTIME
	PktType uint8  // unix.PACKET_HOST, PACKET_OUTGOING, ...
	Data    []byte // the whole frame (Ethernet header on)
}

// Sniffer is an independent capture for ground truth: a plain AF_PACKET
// socket (not a TPACKET ring, and none of tmon's capture code) bound to one
// interface, reading each frame with recvmsg and its kernel timestamp from
// the SCM_TIMESTAMPING control message.
//
// The kernel stamps a frame once, in the network core before any packet
// socket sees it, but only while some socket on the host has turned
// software receive timestamping on (a global static key); every packet
// socket on the interface then sees the same stamp, and a probe capturing
// there must report the very same nanoseconds. While nothing has turned it
// on, each socket takes its own time at delivery. A Sniffer asks only to
// be told the core's stamp (SOF_TIMESTAMPING_SOFTWARE without RX_SOFTWARE):
// it does not turn the key on, so it cannot hide a probe that relies on
// someone else having done so; a kept frame without a stamp is an error
// (see [ErrNoStamp]). SnifferOptions.OwnStamps makes it turn the key on
// itself, for tests where it stands alone.
type Sniffer struct {
	fd     int
	iface  string
	keep   func(*Frame) bool
	mu     sync.Mutex
	frames []Frame
	stop   atomic.Bool
	done   chan error
	pcap   *bufio.Writer
	pcapF  *os.File
}

// SnifferOptions configure a Sniffer.
type SnifferOptions struct {
	// Keep selects the frames to remember (all when nil). It runs on the
	// reading goroutine; Data is a copy it may keep.
	Keep func(*Frame) bool
	// Pcap, when set, is a file the kept frames are also written to, as a
	// nanosecond pcap, in the order read.
	Pcap string
	// RcvBuf is the socket receive buffer (default 64 MiB), big enough
	// that a descheduled reader does not cost drops.
	RcvBuf int
	// OwnStamps makes the Sniffer turn the kernel's receive timestamping
	// on itself (SOF_TIMESTAMPING_RX_SOFTWARE). Leave it off where a probe
	// under test must do that.
	OwnStamps bool
}

// ErrNoStamp is the Sniffer's error for a kept frame the kernel did not
// stamp in its network core: no socket on the host had turned receive
// timestamping on.
var ErrNoStamp = errors.New("the kernel did not stamp the frame on receive: no socket on the host turned receive timestamping on")

// Sniff starts capturing on iface inside ns.
func Sniff(ns NS, iface string, o SnifferOptions) (*Sniffer, error) {
	if o.RcvBuf == 0 {
		o.RcvBuf = 64 << 20
	}
	s := &Sniffer{fd: -1, iface: iface, keep: o.Keep, done: make(chan error, 1)}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return fmt.Errorf("sniff: %w", err)
		}
		// Protocol 0 at creation: the socket receives nothing until bind
		// names the interface, so no frame of another interface slips in.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("sniff %s: socket: %w", iface, err)
		}
		s.fd = fd
		flags := unix.SOF_TIMESTAMPING_SOFTWARE
		if o.OwnStamps {
			flags |= unix.SOF_TIMESTAMPING_RX_SOFTWARE
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING_NEW, flags); err != nil {
			return fmt.Errorf("sniff %s: SO_TIMESTAMPING: %w", iface, err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, o.RcvBuf); err != nil {
			return fmt.Errorf("sniff %s: SO_RCVBUFFORCE: %w", iface, err)
		}
		// recvmsg cannot be interrupted by close; a timeout lets Stop work.
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return fmt.Errorf("sniff %s: SO_RCVTIMEO: %w", iface, err)
		}
		sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
		if err := unix.Bind(fd, sa); err != nil {
			return fmt.Errorf("sniff %s: bind: %w", iface, err)
		}
		return nil
	})
	if err != nil {
		if s.fd >= 0 {
			unix.Close(s.fd)
		}
		return nil, err
	}
	if o.Pcap != "" {
		f, err := os.Create(o.Pcap)
		if err != nil {
			unix.Close(s.fd)
			return nil, fmt.Errorf("sniff %s: %w", iface, err)
		}
		s.pcapF, s.pcap = f, bufio.NewWriterSize(f, 1<<20)
		if err := writePcapHeader(s.pcap); err != nil {
			f.Close()
			unix.Close(s.fd)
			return nil, fmt.Errorf("sniff %s: pcap: %w", o.Pcap, err)
		}
	}
	go func() { s.done <- s.loop() }()
	return s, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *Sniffer) loop() error {
	buf := make([]byte, 65536)
	oob := make([]byte, 128)
	for !s.stop.Load() {
		n, oobn, flags, from, err := unix.Recvmsg(s.fd, buf, oob, unix.MSG_TRUNC)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("sniff %s: recvmsg: %w", s.iface, err)
		}
		if flags&unix.MSG_TRUNC != 0 || n > len(buf) {
			return fmt.Errorf("sniff %s: frame of %d bytes truncated", s.iface, n)
		}
		ts, err := timestampNS(oob[:oobn])
		if err != nil {
			return fmt.Errorf("sniff %s: %w", s.iface, err)
		}
		f := Frame{TS: ts, Data: append([]byte(nil), buf[:n]...)}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			f.PktType = ll.Pkttype
		}
		if s.keep != nil && !s.keep(&f) {
			continue
		}
		if ts == 0 {
			return fmt.Errorf("sniff %s: frame %d: %w", s.iface, len(s.Frames())+1, ErrNoStamp)
		}
		if s.pcap != nil {
			if err := writePcapRecord(s.pcap, f.TS, f.Data); err != nil {
				return fmt.Errorf("sniff %s: pcap: %w", s.iface, err)
			}
		}
		s.mu.Lock()
		s.frames = append(s.frames, f)
		s.mu.Unlock()
	}
	return nil
}

// timestampNS returns the software stamp of an SCM_TIMESTAMPING control
// message (struct scm_timestamping64: three __kernel_timespec, the first
// the software stamp), 0 when the kernel sent none: it does so only for a
// frame it stamped in the network core.
func timestampNS(oob []byte) (int64, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, fmt.Errorf("control message: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPING_NEW && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return sec*1e9 + nsec, nil
		}
	}
	return 0, nil
}

// Frames returns the frames kept so far (shared; do not modify).
func (s *Sniffer) Frames() []Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames[:len(s.frames):len(s.frames)]
}

// Stop ends the capture and returns the kernel's count of frames this
// socket dropped (a full receive buffer), which ground truth needs to be 0.
func (s *Sniffer) Stop() (drops uint32, err error) {
	s.stop.Store(true)
	err = <-s.done
	s.done <- err // a second Stop sees the same
	st, serr := unix.GetsockoptTpacketStats(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if serr == nil {
		drops = st.Drops
	} else if err == nil {
		err = fmt.Errorf("sniff %s: PACKET_STATISTICS: %w", s.iface, serr)
	}
	if s.pcap != nil {
		if ferr := s.pcap.Flush(); ferr != nil && err == nil {
			err = fmt.Errorf("sniff %s: pcap: %w", s.iface, ferr)
		}
		if ferr := s.pcapF.Close(); ferr != nil && err == nil {
			err = fmt.Errorf("sniff %s: pcap: %w", s.iface, ferr)
		}
		s.pcap = nil
	}
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
	return drops, err
}

// A nanosecond pcap (magic a1b23c4d), Ethernet link type, native order.
func writePcapHeader(w io.Writer) error {
	var h [24]byte
	binary.NativeEndian.PutUint32(h[0:], 0xa1b23c4d)
	binary.NativeEndian.PutUint16(h[4:], 2)
	binary.NativeEndian.PutUint16(h[6:], 4)
	binary.NativeEndian.PutUint32(h[16:], 262144)
	binary.NativeEndian.PutUint32(h[20:], 1)
	_, err := w.Write(h[:])
	return err
}

func writePcapRecord(w io.Writer, ts int64, data []byte) error {
	var h [16]byte
	binary.NativeEndian.PutUint32(h[0:], uint32(ts/1e9))
	binary.NativeEndian.PutUint32(h[4:], uint32(ts%1e9))
	binary.NativeEndian.PutUint32(h[8:], uint32(len(data)))
	binary.NativeEndian.PutUint32(h[12:], uint32(len(data)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}
