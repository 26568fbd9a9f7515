package sieve

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
)

// benchConfig has the classes of a typical probe: prefixes, port ranges,
// protocols, a one-way class that signs the measured traffic.
func benchConfig() *conf.Config {
	cfg := testConfig()
	cfg.Classes = append(cfg.Classes,
		conf.Class{Name: "owd-udp", Filter: all(eq(flow.Proto, 17), pfx(flow.Src, "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"),
			rng(flow.Length, 100, 1500)), Mask: 1 << flow.DSCP, OneWay: &conf.OneWay{}},
		conf.Class{Name: "ssh-or-bgp", Filter: and(or(eq(flow.Proto, 6)), or(eq(flow.DstPort, 22), eq(flow.SrcPort, 22), eq(flow.DstPort, 179), eq(flow.SrcPort, 179)))},
		conf.Class{Name: "not-mgmt-vlan", Filter: conf.Filter{Not: true, Groups: []conf.OrGroup{or(rng(flow.VLAN, 1, 9))}}},
		conf.Class{Name: "high-ports", Filter: and(or(rng(flow.DstPort, 49152, 65535)), or(pfx(flow.Dst, "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")))},
	)
	return cfg
}

// mixedTrace is the packets of the two-point capture's hop A (UDP with 100
// bytes of payload, ARP, ND) plus synthetic TCP, IPv6, VLAN, ICMP frames.
func mixedTrace(b *testing.B) []frame {
	synth := []frame{
		{data: fixUDP4, link: LinkEthernet},
		{data: fixQinQTCP6, link: LinkEthernet},
		{data: fixICMPUnreach, link: LinkRaw},
		{data: ether(0x8100, vlanTag(5, 0x0800), ip4(6, "10.9.8.7", "198.51.100.20", 0, nil, tcpHdr(22, 50123, 0x18, make([]byte, 200)))), link: LinkEthernet},
		{data: ether(0x86dd, ip6(17, "fd00::1", "2001:db8::7", udpHdr(4000, 53000, make([]byte, 400)))), link: LinkEthernet},
		{data: ether(0x0800, ip4(1, "192.168.1.1", "10.0.0.1", 0, nil, icmpHdr(8, 0, make([]byte, 56)))), link: LinkEthernet},
		{data: ether(0x0800, ip4(17, "10.1.1.1", "10.2.2.2", 185, nil, make([]byte, 1000))), link: LinkEthernet},
		{data: ether(0x0806, make([]byte, 28)), link: LinkEthernet},
	}
	trace := append([]frame(nil), synth...)
	if dir := corpusDirQuiet(); dir != "" {
		frames, _ := readCapture(filepath.Join(dir, "twopoint", "hop-a.pcap"), 1<<20)
		// interleave: one synthetic frame every 4 captured ones
		for i, f := range frames {
			trace = append(trace, f)
			if i%4 == 3 {
				trace = append(trace, synth[i/4%len(synth)])
			}
		}
	} else {
		b.Log("shared/corpus not found: synthetic frames only")
	}
	return trace
}

func corpusDirQuiet() string {
	var dir string
	func() {
		defer func() { _ = recover() }()
		tb := &quietTB{}
		dir = corpusDir(tb, "twopoint")
		if tb.skipped {
			dir = ""
		}
		dir = filepath.Dir(dir)
	}()
	return dir
}

// quietTB lets corpusDir report "absent" without skipping a benchmark.
type quietTB struct {
	testing.TB
	skipped bool
}

func (q *quietTB) Helper()              {}
func (q *quietTB) Skipf(string, ...any) { q.skipped = true; panic("skip") }
func (q *quietTB) Fatal(...any)         { q.skipped = true; panic("fatal") }
func (q *quietTB) Logf(string, ...any)  {}

// BenchmarkSieve: dissect + classify + sign over a mixed trace, one core.
func BenchmarkSieve(b *testing.B) {
	trace := mixedTrace(b)
	s, err := Compile(benchConfig())
	if err != nil {
		b.Fatal(err)
	}
	var rec Record
	// The thread's own CPU time as well as the wall clock: on a shared
	// machine the wall clock measures the other tenants too.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), threadCPU()
	n := 0
	for b.Loop() {
		f := &trace[n%len(trace)]
		s.Packet(f.data, f.ts, 0, f.link, &rec)
		n++
	}
	el := time.Since(start)
	b.ReportMetric(float64(n)/el.Seconds(), "packets/s")
	if cpu := threadCPU() - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu)/float64(n), "cpu-ns/packet")
	}
	st := s.Stats()
	b.ReportMetric(float64(st.Wanted)/float64(st.Packets)*100, "%wanted")
	b.ReportMetric(float64(st.Signed)/float64(st.Packets)*100, "%signed")
}

// BenchmarkDissect: dissection alone over the same trace.
func BenchmarkDissect(b *testing.B) {
	trace := mixedTrace(b)
	var rec Record
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		f := &trace[n%len(trace)]
		Dissect(f.data, f.link, &rec)
		n++
	}
}

// BenchmarkSign: the signature of one UDP packet of 100 and 1500 bytes.
func BenchmarkSign(b *testing.B) {
	s, err := Compile(oneWayConfig(1<<flow.Src | 1<<flow.SrcPort))
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{100, 1500} {
		pkt := ip4(17, "10.0.0.1", "10.0.0.2", 0, nil, udpHdr(1, 2, make([]byte, size-28)))
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				s.Sign(pkt)
			}
		})
	}
}
