package netlab

import (
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// KernelStampsOn reports whether the kernel currently stamps frames in its
// network core, that is whether some socket anywhere on the host holds
// software receive timestamping on (the static key is global, not per
// namespace). It sends one datagram over ns's loopback and reads it from a
// packet socket that asks to be told the core's stamp without turning the
// key on itself (SOF_TIMESTAMPING_SOFTWARE alone): the stamp is there iff
// the key is on. The key follows a socket's request after a short deferred
// work item in the kernel, so a caller polls.
func KernelStampsOn(ns NS) (bool, error) {
	var on bool
	err := ns.Do(func() error {
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return fmt.Errorf("stamps probe: %w", err)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("stamps probe: socket: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING_NEW, unix.SOF_TIMESTAMPING_SOFTWARE); err != nil {
			return fmt.Errorf("stamps probe: SO_TIMESTAMPING: %w", err)
		}
		tv := unix.NsecToTimeval(int64(time.Second))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return fmt.Errorf("stamps probe: SO_RCVTIMEO: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: lo.Index}); err != nil {
			return fmt.Errorf("stamps probe: bind: %w", err)
		}
		c, err := net.Dial("udp4", "127.0.0.1:9")
		if err != nil {
			return fmt.Errorf("stamps probe: %w", err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("tmon stamps probe")); err != nil {
			return fmt.Errorf("stamps probe: %w", err)
		}
		buf, oob := make([]byte, 2048), make([]byte, 256)
		_, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
		if err != nil {
			return fmt.Errorf("stamps probe: recvmsg: %w", err)
		}
		ts, err := timestampNS(oob[:oobn])
		on = ts != 0
		return err
	})
	return on, err
}
