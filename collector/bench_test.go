package collector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/transport"
)

// BenchmarkCollectorEndToEnd is the live headroom of issue 11 past the
// transport: two probes' senders (hops A and B, HMAC on, the default
// transport) send full sightings PDUs over UDP on loopback to a real
// collector (collector.Run: receiver, journal with group-commit fsync,
// reconciliation, spool). One op is one packet seen at both hops; the
// clock stops when both senders' Close returned, i.e. every PDU was acked,
// which the collector does only once it is handled and its journal record
// is on disk. The packets are 1 µs apart in data time over 64 flows, every
// 50th lost before B.
func BenchmarkCollectorEndToEnd(b *testing.B) {
	for _, perPacket := range []bool{false, true} {
		b.Run(fmt.Sprintf("perPacket=%v", perPacket), func(b *testing.B) { benchEndToEnd(b, perPacket) })
	}
}

const benchKeyA = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
const benchKeyB = "f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"

func benchEndToEnd(b *testing.B, perPacket bool) {
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	addr := l.LocalAddr().(*net.UDPAddr).AddrPort()
	l.Close()
	xml := fmt.Sprintf(`<tmon version="bench" interval="1s">
  <collector name="c" address="%s"/>
  <probe name="pa" id="1" key="%s"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2" key="%s"><interface name="b0" hop="B"/></probe>
  <flowClass name="u"><granular fields="ip.dst"/><oneWay hops="A B" perPacket="%v" maxTransit="1s" timeout="2s"/></flowClass>
</tmon>`, addr, benchKeyA, benchKeyB, perPacket)
	cfg, err := conf.Parse(strings.NewReader(xml), "bench.xml")
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Name: "c", Spool: b.TempDir(), Ready: ready, Logger: quiet})
	}()
	select {
	case <-ready:
	case err := <-done:
		b.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()

	base := time.Now().Truncate(time.Second).UnixNano()
	pdus := make([][][]byte, 2)
	size := transport.BuildSize(cfg.Transport, cfg.Probes[0].Key)
	for h := range pdus {
		pdus[h] = benchPDUs(b.N, h, base, size)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for h, p := range cfg.Probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := transport.NewSender(cfg.Transport, []netip.AddrPort{addr}, p.ID, transport.SessionID(time.Now()), transport.SenderOptions{Logger: quiet, Key: p.Key})
			if err != nil {
				errs[h] = err
				return
			}
			for _, d := range pdus[h] {
				if _, err := s.Send(d); err != nil {
					errs[h] = err
					return
				}
			}
			cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
			defer ccancel()
			st, err := s.Close(cctx)
			if err != nil {
				errs[h] = fmt.Errorf("close: %w", err)
			} else if c := st.Collectors[0]; c.GivenUp != 0 || c.Pending != 0 {
				errs[h] = fmt.Errorf("%d PDUs given up, %d pending", c.GivenUp, c.Pending)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2*b.N)/el, "sightings/s")
	b.ReportMetric(float64(len(pdus[0])+len(pdus[1]))/el, "PDUs/s")
	b.ReportMetric(float64(m1.HeapInuse)/1e6, "heapMB")
}

// benchPDUs returns hop h's sightings of n packets as finished PDUs of at
// most size bytes, the flows declared in the first.
func benchPDUs(n, h int, base int64, size int) [][]byte {
	const flows = 64
	bu := pdu.NewBuilder(size)
	var out [][]byte
	clock := base // the probe's data clock: the last sighting's time
	emit := func() {
		out = append(out, append([]byte(nil), bu.Finish(pdu.Header{ProbeTime: clock})...))
		bu.Reset()
	}
	for f := range flows {
		k := flow.Key{Class: 0, Fields: flow.Set(0).With(flow.Dst), Dst: netip.AddrFrom4([4]byte{10, 0, 0, byte(f)})}
		if !bu.AddFlowDef(pdu.FlowDef{ID: uint32(f), Iface: 0, Key: k}) {
			emit()
			bu.AddFlowDef(pdu.FlowDef{ID: uint32(f), Iface: 0, Key: k})
		}
	}
	emit() // a PDU holds one type of record
	for i := range n {
		if h == 1 && i%50 == 0 {
			continue
		}
		fl := uint32(i % flows)
		s := pdu.Sighting{Flow: fl, Sig: uint32(i+1) * 2654435761, TS: base + int64(i)*1000 + int64(h)*5e6}
		if !bu.AddSighting(fl, 0, false, s) {
			emit()
			bu.AddSighting(fl, 0, false, s)
		}
		clock = s.TS
	}
	if bu.Len() > 0 {
		emit()
	}
	return out
}
