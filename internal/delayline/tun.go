package delayline

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// TUN is a TUN device opened in IFF_TUN|IFF_NO_PI mode: each read returns
// one IP packet, each write injects one as if received on the device.
type TUN struct {
	f    *os.File
	name string
}

var _ Device = (*TUN)(nil)

// OpenTUN attaches to the TUN device name (creating it if it does not
// exist; a device created this way disappears when closed, one made with
// `ip tuntap add` stays). The device must be in the current network
// namespace.
func OpenTUN(name string) (*TUN, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("delayline: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("delayline: TUN name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("delayline: TUNSETIFF %s: %w", name, err)
	}
	// Non-blocking, so that os.File puts the descriptor in Go's poller and
	// Close interrupts a pending Read.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("delayline: %s: non-blocking: %w", name, err)
	}
	return &TUN{f: os.NewFile(uintptr(fd), "/dev/net/tun:"+name), name: ifr.Name()}, nil
}

// Name is the device's name.
func (t *TUN) Name() string { return t.name }

// ReadPacket reads one IP packet.
func (t *TUN) ReadPacket(buf []byte) (int, error) { return t.f.Read(buf) }

// WritePacket writes one IP packet back to the kernel.
func (t *TUN) WritePacket(p []byte) error {
	n, err := t.f.Write(p)
	if err == nil && n != len(p) {
		err = fmt.Errorf("short write %d of %d", n, len(p))
	}
	return err
}

// Close detaches from the device and ends a pending ReadPacket.
func (t *TUN) Close() error { return t.f.Close() }
