//go:build linux

package capture

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Interface settings a probe makes before it captures: hardware
// timestamps where the NIC has them, and no offloads, so that the capture
// sees packets as they are on the wire (trafMon 1.4: a NIC that coalesces
// segments (GRO/LRO) or leaves checksums to the hardware shows the probe
// packets that never existed on the link, and their signatures match
// nothing at the other hops).

// tsOps is the system interface of EnableTimestamps, replaced in tests.
type tsOps interface {
	tsInfo(iface string) (*unix.EthtoolTsInfo, error)
	setHW(iface string, c *unix.HwTstampConfig) error
	setPacketTS(fd int, flags int) error
}

// EnableTimestamps chooses the capture time source of the packet socket
// fd on iface and returns it, "kernel" or "hardware", and when "auto" fell
// back to the kernel's stamp, why.
//
// mode "kernel" keeps the kernel's receive stamp. mode "hardware" and
// "auto" ask the NIC to stamp every received packet (SIOCSHWTSTAMP with
// HWTSTAMP_FILTER_ALL) and the socket to put the NIC's raw stamp in the ring
// (PACKET_TIMESTAMP with SOF_TIMESTAMPING_RAW_HARDWARE); "hardware" fails
// when any step does, "auto" falls back to the kernel's stamp (veth, most
// virtual NICs). A hardware stamp is the NIC's PTP clock: keep it locked to
// the system clock (phc2sys) or the delays are meaningless.
func EnableTimestamps(ops tsOps, iface string, fd int, mode string) (src string, fallback error, err error) {
	switch mode {
	case "kernel":
		return "kernel", nil, nil
	case "", "auto", "hardware":
	default:
		return "", nil, fmt.Errorf("timestamps %q: want auto, kernel or hardware", mode)
	}
	why := hwStamps(ops, iface, fd)
	if why == nil {
		return "hardware", nil, nil
	}
	if mode == "hardware" {
		return "", nil, fmt.Errorf("hardware timestamps: %w", why)
	}
	return "kernel", why, nil
}

func checkTsInfo(info *unix.EthtoolTsInfo) error {
	if info.So_timestamping&unix.SOF_TIMESTAMPING_RAW_HARDWARE == 0 {
		return errors.New("the NIC does not stamp packets (software timestamping only)")
	}
	if info.Rx_filters&(1<<unix.HWTSTAMP_FILTER_ALL) == 0 {
		return errors.New("the NIC stamps only some packets (PTP), not all")
	}
	return nil
}

func hwStamps(ops tsOps, iface string, fd int) error {
	info, err := ops.tsInfo(iface)
	if err != nil {
		return fmt.Errorf("reading the timestamping capabilities: %w", err)
	}
	if err := checkTsInfo(info); err != nil {
		return err
	}
	c := unix.HwTstampConfig{Tx_type: unix.HWTSTAMP_TX_OFF, Rx_filter: unix.HWTSTAMP_FILTER_ALL}
	if err := ops.setHW(iface, &c); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("enabling them needs CAP_NET_ADMIN: %w", err)
		}
		return fmt.Errorf("enabling them (SIOCSHWTSTAMP): %w", err)
	}
	if c.Rx_filter == unix.HWTSTAMP_FILTER_NONE {
		return errors.New("the driver accepted the request but stamps nothing")
	}
	if err := ops.setPacketTS(fd, unix.SOF_TIMESTAMPING_RAW_HARDWARE|unix.SOF_TIMESTAMPING_RX_HARDWARE); err != nil {
		return fmt.Errorf("PACKET_TIMESTAMP: %w", err)
	}
	return nil
}

type realTS struct{}

func (realTS) tsInfo(iface string) (*unix.EthtoolTsInfo, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return unix.IoctlGetEthtoolTsInfo(fd, iface)
}

func (realTS) setHW(iface string, c *unix.HwTstampConfig) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.IoctlSetHwTstamp(fd, iface, c)
}

func (realTS) setPacketTS(fd int, flags int) error {
	return unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_TIMESTAMP, flags)
}

// Offload is one NIC offload feature and its legacy ethtool commands.
type Offload struct {
	Name     string // as ethtool -K names it
	Get, Set uint32 // ETHTOOL_G*, ETHTOOL_S*
	Flag     uint32 // for features that are a bit of ETHTOOL_GFLAGS; 0 otherwise
}

// Offloads are the features DisableOffloads turns off, in this order
// (checksum offload before the segmentation offloads that depend on it).
var Offloads = []Offload{
	{Name: "gro", Get: unix.ETHTOOL_GGRO, Set: ethtoolSGRO},
	{Name: "lro", Get: unix.ETHTOOL_GFLAGS, Set: ethtoolSFLAGS, Flag: ethFlagLRO},
	{Name: "tso", Get: unix.ETHTOOL_GTSO, Set: ethtoolSTSO},
	{Name: "gso", Get: unix.ETHTOOL_GGSO, Set: ethtoolSGSO},
	{Name: "rx", Get: unix.ETHTOOL_GRXCSUM, Set: ethtoolSRXCSUM},
	{Name: "tx", Get: unix.ETHTOOL_GTXCSUM, Set: ethtoolSTXCSUM},
}

// Legacy ethtool set commands and the LRO flag (linux/ethtool.h); x/sys
// names only some.
const (
	ethtoolSRXCSUM = 0x15
	ethtoolSTXCSUM = 0x17
	ethtoolSTSO    = 0x1f
	ethtoolSGSO    = 0x24
	ethtoolSFLAGS  = 0x26
	ethtoolSGRO    = 0x2c
	ethFlagLRO     = 1 << 15
)

// ethtoolOps is the system interface of DisableOffloads, replaced in tests.
type ethtoolOps interface {
	get(iface string, cmd uint32) (uint32, error)
	set(iface string, cmd, val uint32) error
}

// OffloadReport says what DisableOffloads did on one interface: the
// features turned off, those already off, those the driver does not have
// or cannot change (fine: nothing to undo), and those it failed to turn
// off (a problem: say so to the operator).
type OffloadReport struct {
	Iface                    string
	Off, WasOff, Unsupported []string
	Failed                   []string // "name: error"
	Denied                   bool     // a failure was EPERM: the probe lacks CAP_NET_ADMIN
}

// OK reports that no offload is left on.
func (r OffloadReport) OK() bool { return len(r.Failed) == 0 }

func (r OffloadReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: offloads", r.Iface)
	if len(r.Off) > 0 {
		fmt.Fprintf(&b, " turned off: %s;", strings.Join(r.Off, " "))
	}
	if len(r.WasOff) > 0 {
		fmt.Fprintf(&b, " already off: %s;", strings.Join(r.WasOff, " "))
	}
	if len(r.Unsupported) > 0 {
		fmt.Fprintf(&b, " not changeable: %s;", strings.Join(r.Unsupported, " "))
	}
	if len(r.Failed) > 0 {
		fmt.Fprintf(&b, " STILL ON: %s;", strings.Join(r.Failed, "; "))
		if r.Denied {
			b.WriteString(" turning offloads off needs CAP_NET_ADMIN (run as root or setcap cap_net_raw,cap_net_admin+eip);")
		}
		b.WriteString(" the capture may see coalesced segments that were never on the wire")
	}
	return strings.TrimSuffix(b.String(), ";")
}

// DisableOffloads turns off GRO, LRO, TSO, GSO and rx/tx checksum offload
// on iface, like `ethtool -K iface gro off lro off tso off gso off rx off tx off`,
// through the SIOCETHTOOL ioctl (no ethtool binary needed).
func DisableOffloads(iface string) OffloadReport {
	return disableOffloads(realEthtool{}, iface)
}

func disableOffloads(ops ethtoolOps, iface string) OffloadReport {
	r := OffloadReport{Iface: iface}
	for _, o := range Offloads {
		v, err := ops.get(iface, o.Get)
		if err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
				r.Unsupported = append(r.Unsupported, o.Name)
			} else {
				r.Failed = append(r.Failed, fmt.Sprintf("%s: read: %v", o.Name, err))
				r.Denied = r.Denied || errors.Is(err, unix.EPERM)
			}
			continue
		}
		on := v != 0
		nv := uint32(0)
		if o.Flag != 0 {
			on = v&o.Flag != 0
			nv = v &^ o.Flag
		}
		if !on {
			r.WasOff = append(r.WasOff, o.Name)
			continue
		}
		if err := ops.set(iface, o.Set, nv); err != nil {
			switch {
			case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL):
				r.Unsupported = append(r.Unsupported, o.Name)
			default:
				r.Failed = append(r.Failed, fmt.Sprintf("%s: %v", o.Name, err))
				r.Denied = r.Denied || errors.Is(err, unix.EPERM)
			}
			continue
		}
		// A driver may refuse silently (a fixed feature): read back.
		if v2, err := ops.get(iface, o.Get); err == nil && ((o.Flag == 0 && v2 != 0) || (o.Flag != 0 && v2&o.Flag != 0)) {
			r.Unsupported = append(r.Unsupported, o.Name)
			continue
		}
		r.Off = append(r.Off, o.Name)
	}
	return r
}

type realEthtool struct{}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd, data uint32
}

// ifreqData is struct ifreq with ifr_data: 16 bytes of name, a pointer,
// padding to the union's 24 bytes.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

func (realEthtool) do(iface string, v *ethtoolValue) error {
	if len(iface) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q too long", iface)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var ifr ifreqData
	copy(ifr.name[:], iface)
	ifr.data = unsafe.Pointer(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return errno
	}
	return nil
}

func (e realEthtool) get(iface string, cmd uint32) (uint32, error) {
	v := ethtoolValue{cmd: cmd}
	err := e.do(iface, &v)
	return v.data, err
}

func (e realEthtool) set(iface string, cmd, val uint32) error {
	return e.do(iface, &ethtoolValue{cmd: cmd, data: val})
}
