//go:build linux

package capture

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/afpacket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// LiveConfig configures a [LiveSource]: one AF_PACKET socket with a
// TPACKET_V3 ring on one OS interface. Zero values take the defaults below.
type LiveConfig struct {
	Iface string // OS interface name, e.g. "eth0"
	Index uint8  // probe interface index delivered with every packet

	BlockSize int           // bytes of one ring block, a multiple of the page size; default 1 MiB
	Blocks    int           // blocks in the ring; default 64
	Retire    time.Duration // the kernel hands over a block that is not full after this; default 10ms
	Poll      time.Duration // ReadPacket returns ErrNoTraffic after waiting this long; default 100ms

	// Filter is the kernel pre-filter (see PreFilter); nil accepts every
	// frame whole.
	Filter []bpf.RawInstruction

	// FanoutGroup, when Fanout is true, joins the socket to that
	// PACKET_FANOUT group (hash by flow): every socket of a group gets a
	// share of the interface's packets, all packets of a flow in one.
	Fanout      bool
	FanoutGroup uint16

	// Timestamps is "auto" (default), "kernel" or "hardware" (see
	// [EnableTimestamps]).
	Timestamps string

	Logger *slog.Logger // nil: slog.Default()
}

// Defaults of LiveConfig.
const (
	DefaultBlockSize = 1 << 20
	DefaultBlocks    = 64
	DefaultRetire    = 10 * time.Millisecond
	DefaultPoll      = 100 * time.Millisecond
)

// ErrNoTraffic is returned by a LiveSource's ReadPacket when no packet came
// within LiveConfig.Poll. Its Timeout method reports true, so the sieve's
// Run checks for shutdown and reads again.
var ErrNoTraffic error = noTraffic{}

type noTraffic struct{}

func (noTraffic) Error() string { return "capture: no packet within the poll timeout" }
func (noTraffic) Timeout() bool { return true }

// LiveStats are the kernel's counters of one socket since it was opened.
type LiveStats struct {
	Packets uint64 // frames the filter accepted, dropped ones included (the kernel counts them so)
	Drops   uint64 // frames lost because the ring was full
	Freezes uint64 // times the ring was full (TPACKET_V3 queue freezes)
}

// LiveSource captures one interface through an AF_PACKET socket with a
// memory-mapped TPACKET_V3 ring: the kernel stamps each frame on arrival
// (or the NIC does, see EnableTimestamps) and writes it into the ring, and
// ReadPacket hands out the frame where it lies, without copying.
//
// Buffer lifetime: data returned by ReadPacket points into the ring. It is
// valid until the next ReadPacket (which may give the ring block back to
// the kernel) or Close, and must not be written to.
//
// Concurrency: one goroutine reads. Clock, Stats and TimestampSource may be
// called from any goroutine. Close waits for a ReadPacket in progress (at
// most Poll) and unmaps the ring: the reader must not use the last packet's
// data after Close, so the usual order is to stop the reader (cancel the
// sieve's context: it sees ErrNoTraffic within Poll) and close after.
type LiveSource struct {
	cfg    LiveConfig
	tp     *afpacket.TPacket
	margin int64 // how far behind now a packet may still arrive, ns
	tsSrc  string
	tsWhy  error  // why "auto" fell back to kernel stamps
	stamp  string // how the kernel is made to stamp in the network core (stamp.go)

	mu       sync.Mutex // held by ReadPacket; Close takes it
	clock    atomic.Int64
	closed   atomic.Bool
	pollErrs uint64
}

var _ Source = (*LiveSource)(nil)

// OpenLive opens a live capture on cfg.Iface. It needs CAP_NET_RAW (and
// CAP_NET_ADMIN for hardware timestamps and fanout on some kernels); the
// error says so.
func OpenLive(cfg LiveConfig) (*LiveSource, error) {
	if cfg.BlockSize == 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.Blocks == 0 {
		cfg.Blocks = DefaultBlocks
	}
	if cfg.Retire == 0 {
		cfg.Retire = DefaultRetire
	}
	if cfg.Poll == 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Timestamps == "" {
		cfg.Timestamps = "auto"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if _, err := net.InterfaceByName(cfg.Iface); err != nil {
		return nil, fmt.Errorf("capture: open %s: no such interface (%w)", cfg.Iface, err)
	}
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(cfg.Iface),
		afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptFrameSize(4096), // TPACKET_V3 packs frames of any size into a block; this only has to divide it
		afpacket.OptBlockSize(cfg.BlockSize),
		afpacket.OptNumBlocks(cfg.Blocks),
		afpacket.OptBlockTimeout(cfg.Retire),
		afpacket.OptPollTimeout(cfg.Poll),
	)
	if err != nil {
		return nil, privError(cfg.Iface, "open an AF_PACKET socket", "CAP_NET_RAW", err)
	}
	s := &LiveSource{cfg: cfg, tp: tp, margin: int64(2*cfg.Retire + 10*time.Millisecond)}
	if cfg.Filter != nil {
		if err := tp.SetBPF(cfg.Filter); err != nil {
			tp.Close()
			return nil, fmt.Errorf("capture: open %s: attach pre-filter: %w", cfg.Iface, err)
		}
	}
	if cfg.Fanout {
		if err := tp.SetFanout(afpacket.FanoutHash, cfg.FanoutGroup); err != nil {
			tp.Close()
			return nil, privError(cfg.Iface, fmt.Sprintf("join fanout group %d", cfg.FanoutGroup), "CAP_NET_RAW", err)
		}
	}
	src, why, err := EnableTimestamps(realTS{}, cfg.Iface, socketFD(tp), cfg.Timestamps)
	if err != nil {
		tp.Close()
		return nil, fmt.Errorf("capture: open %s: %w", cfg.Iface, err)
	}
	s.tsSrc, s.tsWhy = src, why
	// Software stamps in the network core in every mode: they are the
	// kernel mode's stamps, and hardware mode's for a frame the NIC did
	// not stamp.
	if s.stamp, err = enableReceiveStamps(realStamp{}, socketFD(tp)); err != nil {
		tp.Close()
		return nil, fmt.Errorf("capture: open %s: %w", cfg.Iface, err)
	}
	return s, nil
}

// privError turns a permission failure into the message an operator needs.
func privError(iface, what, capName string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("capture: capturing on %s needs %s (%s: %w): run as root or `setcap cap_net_raw,cap_net_admin+eip bin/tmon-probe`",
			iface, capName, what, err)
	}
	return fmt.Errorf("capture: open %s: %s: %w", iface, what, err)
}

// socketFD reads the socket of a TPacket, which afpacket does not export:
// PACKET_TIMESTAMP and SO_TIMESTAMPING must be set on it. Reading an unexported int field
// through reflect is allowed (only Interface() is not).
func socketFD(tp *afpacket.TPacket) int {
	return int(reflect.ValueOf(tp).Elem().FieldByName("fd").Int())
}

// ReadPacket returns the next frame from the ring with its capture time
// (kernel or hardware stamp, ns since the epoch), the configured interface
// index and LINKTYPE_ETHERNET. After Poll without a packet it returns
// ErrNoTraffic. It does not allocate (but for VLAN-tagged frames whose tag
// the kernel removed: afpacket records the tag in a slice).
func (s *LiveSource) ReadPacket() ([]byte, int64, uint8, uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, 0, 0, 0, ErrClosed
	}
	data, ci, err := s.tp.ZeroCopyReadPacketData()
	if err != nil {
		switch {
		case errors.Is(err, afpacket.ErrTimeout):
		case errors.Is(err, afpacket.ErrPoll):
			// POLLERR: the interface went down, or a socket error is
			// pending. The capture goes on when it comes back; the
			// sieve keeps checking for shutdown meanwhile.
			s.pollErrs++
			if s.pollErrs == 1 || s.pollErrs%100 == 0 {
				s.cfg.Logger.Warn("capture: poll error on the capture socket; retrying", "iface", s.cfg.Iface, "count", s.pollErrs)
			}
			time.Sleep(s.cfg.Poll)
		default:
			return nil, 0, 0, 0, fmt.Errorf("capture: read %s: %w", s.cfg.Iface, err)
		}
		// Idle: a packet not delivered yet was stamped after now minus
		// the time a block may stay open, so the clock moves on.
		s.advance(time.Now().UnixNano() - s.margin)
		return nil, 0, 0, 0, ErrNoTraffic
	}
	ts := ci.Timestamp.UnixNano()
	s.advance(ts)
	return data, ts, s.cfg.Index, LinkTypeEthernet, nil
}

func (s *LiveSource) advance(t int64) {
	if t > s.clock.Load() {
		s.clock.Store(t)
	}
}

// Clock returns the latest of the last packet's stamp and, once the socket
// was found idle, the current time minus a margin (twice the block retire
// timeout plus 10ms): no later packet is stamped before it. It is 0 before
// the first packet or idle poll.
func (s *LiveSource) Clock() int64 { return s.clock.Load() }

// TimestampSource says where capture times come from: "kernel" or
// "hardware".
func (s *LiveSource) TimestampSource() string { return s.tsSrc }

// Stamping says how the socket makes the kernel stamp frames where they
// enter the network core rather than on delivery to the socket
// (StampAtReceive or StampAtReceiveNS; see stamp.go).
func (s *LiveSource) Stamping() string { return s.stamp }

// TimestampFallback says why "auto" uses kernel stamps, nil otherwise.
func (s *LiveSource) TimestampFallback() error { return s.tsWhy }

// Iface returns the OS interface name.
func (s *LiveSource) Iface() string { return s.cfg.Iface }

// Stats returns the kernel's counters since the socket was opened.
func (s *LiveSource) Stats() (LiveStats, error) {
	if s.closed.Load() {
		return LiveStats{}, ErrClosed
	}
	_, v3, err := s.tp.SocketStats()
	if err != nil {
		return LiveStats{}, fmt.Errorf("capture: statistics of %s: %w", s.cfg.Iface, err)
	}
	return LiveStats{Packets: uint64(v3.Packets()), Drops: uint64(v3.Drops()), Freezes: uint64(v3.QueueFreezes())}, nil
}

// Close releases the socket and its ring; see the type's doc for the
// order with the reader. It is safe to call more than once.
func (s *LiveSource) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tp.Close()
	return nil
}
