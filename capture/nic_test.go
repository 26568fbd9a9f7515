//go:build linux

package capture

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

type fakeTS struct {
	info             *unix.EthtoolTsInfo
	infoErr, hwErr   error
	hwFilter         int32 // what the driver answers
	pktErr           error
	hwCalls, pktCall int
}

func (f *fakeTS) tsInfo(string) (*unix.EthtoolTsInfo, error) { return f.info, f.infoErr }
func (f *fakeTS) setHW(_ string, c *unix.HwTstampConfig) error {
	f.hwCalls++
	if f.hwErr == nil {
		c.Rx_filter = f.hwFilter
	}
	return f.hwErr
}
func (f *fakeTS) setPacketTS(int, int) error { f.pktCall++; return f.pktErr }

func TestTimestampFallbacks(t *testing.T) {
	hw := &unix.EthtoolTsInfo{So_timestamping: unix.SOF_TIMESTAMPING_RAW_HARDWARE | unix.SOF_TIMESTAMPING_RX_HARDWARE, Rx_filters: 1 << unix.HWTSTAMP_FILTER_ALL}
	veth := &unix.EthtoolTsInfo{So_timestamping: unix.SOF_TIMESTAMPING_RX_SOFTWARE | unix.SOF_TIMESTAMPING_SOFTWARE}
	ptpOnly := &unix.EthtoolTsInfo{So_timestamping: unix.SOF_TIMESTAMPING_RAW_HARDWARE, Rx_filters: 1 << 12}
	for _, tc := range []struct {
		name    string
		ops     *fakeTS
		mode    string
		src     string
		why     string // substring of the fallback reason
		wantErr bool
	}{
		{"kernel asked", &fakeTS{info: hw, hwFilter: unix.HWTSTAMP_FILTER_ALL}, "kernel", "kernel", "", false},
		{"hardware available", &fakeTS{info: hw, hwFilter: unix.HWTSTAMP_FILTER_ALL}, "auto", "hardware", "", false},
		{"veth: software only", &fakeTS{info: veth}, "auto", "kernel", "software timestamping only", false},
		{"PTP packets only", &fakeTS{info: ptpOnly}, "auto", "kernel", "only some packets", false},
		{"ethtool fails", &fakeTS{infoErr: unix.EOPNOTSUPP}, "auto", "kernel", "capabilities", false},
		{"not permitted", &fakeTS{info: hw, hwErr: unix.EPERM}, "auto", "kernel", "CAP_NET_ADMIN", false},
		{"driver stamps nothing", &fakeTS{info: hw, hwFilter: unix.HWTSTAMP_FILTER_NONE}, "auto", "kernel", "stamps nothing", false},
		{"socket option refused", &fakeTS{info: hw, hwFilter: unix.HWTSTAMP_FILTER_ALL, pktErr: unix.EINVAL}, "auto", "kernel", "PACKET_TIMESTAMP", false},
		{"hardware required, veth", &fakeTS{info: veth}, "hardware", "", "", true},
		{"bad mode", &fakeTS{info: hw}, "gps", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, why, err := EnableTimestamps(tc.ops, "eth0", 3, tc.mode)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if src != tc.src {
				t.Fatalf("source %q, want %q", src, tc.src)
			}
			if tc.why == "" && why != nil || tc.why != "" && (why == nil || !strings.Contains(why.Error(), tc.why)) {
				t.Fatalf("fallback reason %v, want one containing %q", why, tc.why)
			}
		})
	}
}

// fakeEthtool is a NIC whose features are a map; fixed features refuse
// silently, unsupported ones answer EOPNOTSUPP, denied ones EPERM.
type fakeEthtool struct {
	val         map[uint32]uint32 // by get command
	fixed       map[uint32]bool
	unsupported map[uint32]bool
	denied      bool
}

func (f *fakeEthtool) get(_ string, cmd uint32) (uint32, error) {
	if f.unsupported[cmd] {
		return 0, unix.EOPNOTSUPP
	}
	return f.val[cmd], nil
}

func (f *fakeEthtool) set(_ string, cmd, v uint32) error {
	for _, o := range Offloads {
		if o.Set != cmd {
			continue
		}
		if f.denied {
			return unix.EPERM
		}
		if !f.fixed[o.Get] {
			f.val[o.Get] = v
		}
		return nil
	}
	return unix.EINVAL
}

func TestDisableOffloads(t *testing.T) {
	all := func() map[uint32]uint32 {
		return map[uint32]uint32{unix.ETHTOOL_GGRO: 1, unix.ETHTOOL_GFLAGS: ethFlagLRO | 1<<20, unix.ETHTOOL_GTSO: 1,
			unix.ETHTOOL_GGSO: 1, unix.ETHTOOL_GRXCSUM: 1, unix.ETHTOOL_GTXCSUM: 1}
	}
	t.Run("everything off", func(t *testing.T) {
		f := &fakeEthtool{val: all()}
		r := disableOffloads(f, "eth0")
		if !r.OK() || len(r.Off) != 6 {
			t.Fatalf("%+v", r)
		}
		if f.val[unix.ETHTOOL_GFLAGS] != 1<<20 {
			t.Fatalf("flags %#x: LRO off, other flags kept", f.val[unix.ETHTOOL_GFLAGS])
		}
	})
	t.Run("already off, fixed, unsupported", func(t *testing.T) {
		v := all()
		v[unix.ETHTOOL_GGRO] = 0
		f := &fakeEthtool{val: v, fixed: map[uint32]bool{unix.ETHTOOL_GTSO: true}, unsupported: map[uint32]bool{unix.ETHTOOL_GFLAGS: true}}
		r := disableOffloads(f, "veth0")
		if !r.OK() || strings.Join(r.WasOff, " ") != "gro" || strings.Join(r.Unsupported, " ") != "lro tso" {
			t.Fatalf("%+v", r)
		}
		if !strings.Contains(r.String(), "not changeable: lro tso") {
			t.Fatalf("%s", r)
		}
	})
	t.Run("not permitted", func(t *testing.T) {
		r := disableOffloads(&fakeEthtool{val: all(), denied: true}, "eth0")
		if r.OK() || !r.Denied || len(r.Failed) != 6 {
			t.Fatalf("%+v", r)
		}
		if s := r.String(); !strings.Contains(s, "STILL ON") || !strings.Contains(s, "CAP_NET_ADMIN") {
			t.Fatalf("%s", s)
		}
	})
}

func TestPrivError(t *testing.T) {
	err := privError("eth0", "open an AF_PACKET socket", "CAP_NET_RAW", unix.EPERM)
	if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "capturing on eth0 needs CAP_NET_RAW") ||
		!strings.Contains(err.Error(), "setcap cap_net_raw,cap_net_admin+eip") {
		t.Fatalf("%v", err)
	}
	if err := privError("eth0", "x", "CAP_NET_RAW", unix.ENODEV); strings.Contains(err.Error(), "setcap") {
		t.Fatalf("%v", err)
	}
}
