//go:build linux

package capture

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Where the kernel stamps a frame depends on the whole host, not on the
// socket that reads it. The stamp is taken in the network core (netif_rx /
// netif_receive_skb for a received frame, dev_queue_xmit_nit for a sent
// one, before any packet socket sees it) only while some socket on the
// host has asked for software receive timestamps: that request turns on a
// global static key (net_enable_timestamp). While nothing holds the key,
// every TPACKET ring takes its own time when the frame is delivered to it,
// microseconds later and different for every socket on the interface
// (issue 10 item 13: 0 of 19 807 delays matched an independent capture to
// the ns, per-packet errors up to 204 µs). PACKET_TIMESTAMP does not help:
// it only chooses which existing stamp the ring reports and leaves the key
// alone (checked on Linux 6.18: two rings on one veth agree on 0 of 128
// stamps with PACKET_TIMESTAMP=SOF_TIMESTAMPING_SOFTWARE, on all 128 with
// SO_TIMESTAMPING=RX_SOFTWARE|SOFTWARE or SO_TIMESTAMPNS on one of them).
//
// So the capture socket asks for software receive timestamps itself; the
// key stays on as long as the socket is open, whatever else runs on the
// host. The ring still reports the stamp in its frame header; no control
// message is ever read.

// Receive stamping modes a LiveSource reports ([LiveSource.Stamping]).
const (
	// StampAtReceive: the socket holds SO_TIMESTAMPING with
	// SOF_TIMESTAMPING_RX_SOFTWARE, the kernel stamps in the network core.
	StampAtReceive = "SO_TIMESTAMPING rx-software: stamped in the network core (netif_receive_skb / dev_queue_xmit_nit)"
	// StampAtReceiveNS: the same through SO_TIMESTAMPNS, for a kernel that
	// refuses SO_TIMESTAMPING on packet sockets.
	StampAtReceiveNS = "SO_TIMESTAMPNS: stamped in the network core (netif_receive_skb / dev_queue_xmit_nit)"
)

// stampOps is the system interface of enableReceiveStamps, replaced in
// tests.
type stampOps interface {
	setsockopt(fd, level, opt, value int) error
}

type realStamp struct{}

func (realStamp) setsockopt(fd, level, opt, value int) error {
	return unix.SetsockoptInt(fd, level, opt, value)
}

// enableReceiveStamps makes the kernel stamp every frame for fd in the
// network core and returns the mode (StampAtReceive or StampAtReceiveNS).
// It fails only when the kernel refuses both requests: stamps taken at
// socket delivery differ per socket by microseconds, which a tool that
// reports nanoseconds must not hide.
func enableReceiveStamps(ops stampOps, fd int) (string, error) {
	err := ops.setsockopt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, unix.SOF_TIMESTAMPING_RX_SOFTWARE|unix.SOF_TIMESTAMPING_SOFTWARE)
	if err == nil {
		return StampAtReceive, nil
	}
	errNS := ops.setsockopt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	if errNS == nil {
		return StampAtReceiveNS, nil
	}
	return "", fmt.Errorf("turning on the kernel's receive timestamps (without them the kernel stamps each frame late, at socket delivery): SO_TIMESTAMPING: %w; SO_TIMESTAMPNS: %w", err, errNS)
}
