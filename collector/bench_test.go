package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
// 50th lost before B; the PDUs are built beforehand.
//
// With TMON_BENCH_SUSTAIN=D (e.g. 60s) the sustained variant runs instead:
// the senders build their PDUs as they go and send for D as fast as the
// collector acknowledges, and it reports the rate over the whole run and
// the largest heap sampled every second in the first and the second half of
// the run (both sides are in this process).
func BenchmarkCollectorEndToEnd(b *testing.B) {
	if v := os.Getenv("TMON_BENCH_SUSTAIN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("TMON_BENCH_SUSTAIN=%q: %v", v, err)
		}
		b.Run("sustained", func(b *testing.B) { benchSustained(b, d) })
		return
	}
	for _, perPacket := range []bool{false, true} {
		b.Run(fmt.Sprintf("perPacket=%v", perPacket), func(b *testing.B) { benchEndToEnd(b, perPacket) })
	}
}

const benchKeyA = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
const benchKeyB = "f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"

// benchCollector runs a collector of two probes for the benchmark.
func benchCollector(b *testing.B, perPacket bool) (*conf.Config, netip.AddrPort) {
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
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Name: "c", Spool: b.TempDir(), Ready: ready, Logger: benchQuiet})
	}()
	select {
	case <-ready:
	case err := <-done:
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	return cfg, addr
}

var benchQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// sendHops runs one sender per probe of cfg; send gives hop h's PDUs to
// its sender. It returns when both closed, with their retries.
func sendHops(cfg *conf.Config, addr netip.AddrPort, send func(h int, s *transport.Sender) error) (retries uint64, err error) {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	var retried atomic.Uint64
	for h, p := range cfg.Probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := transport.NewSender(cfg.Transport, []netip.AddrPort{addr}, p.ID, transport.SessionID(time.Now()), transport.SenderOptions{Logger: benchQuiet, Key: p.Key})
			if err != nil {
				errs[h] = err
				return
			}
			err = send(h, s)
			cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
			defer ccancel()
			st, cerr := s.Close(cctx)
			switch c := st.Collectors[0]; {
			case err != nil:
				errs[h] = err
			case cerr != nil:
				errs[h] = fmt.Errorf("close: %w", cerr)
			case c.GivenUp != 0 || c.Pending != 0:
				errs[h] = fmt.Errorf("%d PDUs given up, %d pending", c.GivenUp, c.Pending)
			}
			retried.Add(st.Collectors[0].Retried)
		}()
	}
	wg.Wait()
	return retried.Load(), errors.Join(errs...)
}

func benchEndToEnd(b *testing.B, perPacket bool) {
	cfg, addr := benchCollector(b, perPacket)
	base := time.Now().Truncate(time.Second).UnixNano()
	pdus := make([][][]byte, 2)
	size := transport.BuildSize(cfg.Transport, cfg.Probes[0].Key)
	for h := range pdus {
		hopPDUs(b.N, h, base, size, func(d []byte, _ int) bool {
			pdus[h] = append(pdus[h], append([]byte(nil), d...))
			return true
		})
	}
	var m1 runtime.MemStats
	runtime.GC()
	b.ResetTimer()
	start := time.Now()
	retries, err := sendHops(cfg, addr, func(h int, s *transport.Sender) error {
		for _, d := range pdus[h] {
			if _, err := s.Send(d); err != nil {
				return err
			}
		}
		return nil
	})
	el := time.Since(start).Seconds()
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(2*b.N)/el, "sightings/s")
	b.ReportMetric(float64(len(pdus[0])+len(pdus[1]))/el, "PDUs/s")
	b.ReportMetric(float64(retries)/float64(len(pdus[0])+len(pdus[1])), "retries/PDU")
	b.ReportMetric(float64(m1.HeapInuse)/1e6, "heapMB")
}

// benchSustained sends for d as fast as the collector acknowledges.
func benchSustained(b *testing.B, d time.Duration) {
	cfg, addr := benchCollector(b, false)
	base := time.Now().Truncate(time.Second).UnixNano()
	size := transport.BuildSize(cfg.Transport, cfg.Probes[0].Key)
	stop := make(chan struct{})
	var heaps []uint64 // one a second
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			runtime.ReadMemStats(&m)
			heaps = append(heaps, m.HeapInuse)
		}
	}()
	var sent, sightings [2]atomic.Int64
	b.ResetTimer()
	start := time.Now()
	deadline := start.Add(d)
	retries, err := sendHops(cfg, addr, func(h int, s *transport.Sender) error {
		var serr error
		high := transport.SaturationFactor * s.Window()
		hopPDUs(1<<62, h, base, size, func(p []byte, n int) bool {
			// As a full-speed replay does (probe's shedder): no deeper
			// backlog than the saturation mark, so that the rate is
			// what the collector confirms.
			for s.Backlog() > high {
				time.Sleep(100 * time.Microsecond)
			}
			if _, serr = s.Send(p); serr != nil {
				return false
			}
			sent[h].Add(1)
			sightings[h].Add(int64(n))
			return time.Now().Before(deadline)
		})
		return serr
	})
	el := time.Since(start).Seconds()
	b.StopTimer()
	close(stop)
	<-sampled
	if err != nil {
		b.Fatal(err)
	}
	pdus := sent[0].Load() + sent[1].Load()
	b.ReportMetric(float64(sightings[0].Load()+sightings[1].Load())/el, "sightings/s")
	b.ReportMetric(float64(pdus)/el, "PDUs/s")
	b.ReportMetric(float64(retries)/float64(pdus), "retries/PDU")
	// Bounded memory: the second half of the run needs no more than
	// the first (the reconciler's windows are full after a few seconds).
	half := len(heaps) / 2
	b.ReportMetric(float64(slices.Max(append(heaps[:half:half], 0)))/1e6, "maxHeapMB-1st-half")
	b.ReportMetric(float64(slices.Max(append(heaps[half:], 0)))/1e6, "maxHeapMB-2nd-half")
	b.ReportMetric(el, "s")
}

// hopPDUs gives emit hop h's sightings of n packets as finished PDUs of at
// most size bytes with the number of sightings in each, the flows declared
// in the first, until emit returns false. The slice is reused after emit
// returns.
func hopPDUs(n, h int, base int64, size int, emit func(p []byte, sightings int) bool) {
	const flows = 64
	bu := pdu.NewBuilder(size)
	clock := base // the probe's data clock: the last sighting's time
	sightings := 0
	finish := func() bool {
		ok := emit(bu.Finish(pdu.Header{ProbeTime: clock}), sightings)
		sightings = 0
		bu.Reset()
		return ok
	}
	for f := range flows {
		k := flow.Key{Class: 0, Fields: flow.Set(0).With(flow.Dst), Dst: netip.AddrFrom4([4]byte{10, 0, 0, byte(f)})}
		if !bu.AddFlowDef(pdu.FlowDef{ID: uint32(f), Iface: 0, Key: k}) {
			if !finish() {
				return
			}
			bu.AddFlowDef(pdu.FlowDef{ID: uint32(f), Iface: 0, Key: k})
		}
	}
	if !finish() { // a PDU holds one type of record
		return
	}
	for i := range n {
		if h == 1 && i%50 == 0 {
			continue
		}
		fl := uint32(i % flows)
		s := pdu.Sighting{Flow: fl, Sig: uint32(i+1) * 2654435761, TS: base + int64(i)*1000 + int64(h)*5e6}
		if !bu.AddSighting(fl, 0, false, s) {
			if !finish() {
				return
			}
			bu.AddSighting(fl, 0, false, s)
		}
		sightings++
		clock = s.TS
	}
	if bu.Len() > 0 {
		finish()
	}
}
