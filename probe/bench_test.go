package probe

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tmon-project/tmon/collector"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/internal/gen"
)

// The whole-probe benchmark (issue 11): a real probe replaying the
// generated throughput trace (gen.DefaultMix: 1 236 000 frames, ≈ 600 MB)
// at full speed to a real collector over UDP on loopback, counting only
// (nine classes) and with one of ten classes one-way. One op is one replay
// of the whole trace. TMON_BENCH_MIX=N scales the trace to N UDP datagrams
// (two small to one large); the trace is written once into the temporary
// directory and reused.

const benchClasses = `
  <flowClass name="udp-site"><filter><match field="ip.proto" value="udp"/><match field="ip.src" value="10.1.0.0/16"/></filter><granular fields="ip.src ip.dst l4.dport"/></flowClass>
  <flowClass name="tcp"><filter><match field="ip.proto" value="tcp"/></filter><granular fields="ip.src ip.dst l4.sport"/></flowClass>
  <flowClass name="v6"><filter><match field="ip.src" value="fd00::/8"/></filter></flowClass>
  <flowClass name="dns"><filter><match field="l4.dport" value="53"/></filter></flowClass>
  <flowClass name="web"><filter><match field="l4.dport" value="443"/></filter></flowClass>
  <flowClass name="ports-low"><filter><match field="l4.dport" value="5000-5031"/></filter></flowClass>
  <flowClass name="ports-high"><filter><match field="l4.dport" value="5032-5063"/></filter></flowClass>
  <flowClass name="ntp"><filter><match field="l4.dport" value="123"/></filter></flowClass>
  <flowClass name="other"><filter not="true"><match field="ip.src" value="10.1.0.0/16"/></filter></flowClass>`

const benchOneWay = `
  <flowClass name="owd">
    <filter><match field="ip.proto" value="udp"/><match field="ip.dst" value="10.2.0.0/16"/></filter>
    <granular fields="ip.src ip.dst l4.dport"/>
    <oneWay hops="A B" maxTransit="1s" timeout="2s"/>
  </flowClass>`

var (
	mixOnce sync.Once
	mixPath string
	mixErr  error
)

// benchTrace returns the path of the throughput trace, writing it once.
func benchTrace(b *testing.B) string {
	b.Helper()
	mixOnce.Do(func() {
		c := gen.DefaultMix()
		if v := os.Getenv("TMON_BENCH_MIX"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 3 {
				mixErr = fmt.Errorf("TMON_BENCH_MIX=%q: want a number of datagrams ≥ 3", v)
				return
			}
			c.Small, c.Large = n-n/3, n/3
		}
		mixPath = filepath.Join(os.TempDir(), fmt.Sprintf("tmon-bench-mix-%d-%d-%d.pcap", c.Seed, c.Small, c.Large))
		if _, err := os.Stat(mixPath); err == nil {
			return
		}
		tmp := mixPath + fmt.Sprintf(".%d.tmp", os.Getpid())
		f, err := os.Create(tmp)
		if err != nil {
			mixErr = err
			return
		}
		_, mixErr = gen.WriteMix(f, c)
		if err := f.Close(); mixErr == nil {
			mixErr = err
		}
		if mixErr == nil {
			mixErr = os.Rename(tmp, mixPath)
		}
	})
	if mixErr != nil {
		b.Fatal(mixErr)
	}
	return mixPath
}

func BenchmarkProbeReplay(b *testing.B) {
	trace := benchTrace(b)
	b.Run("count", func(b *testing.B) { benchReplay(b, trace, benchClasses) })
	b.Run("oneway", func(b *testing.B) { benchReplay(b, trace, benchClasses+benchOneWay) })
}

func benchReplay(b *testing.B, trace, classes string) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	x := fmt.Sprintf(`<tmon interval="5s">
  <collector name="c1" address="127.0.0.1:%d"/>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2" key="f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"><interface name="b0" hop="B"/></probe>%s
</tmon>`, port, classes)
	cfg, err := conf.Parse(strings.NewReader(x), "bench.xml")
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	collDone := make(chan error, 1)
	go func() {
		collDone <- collector.Run(ctx, collector.Options{Config: cfg, Name: "c1", Spool: b.TempDir(), Logger: quiet, Ready: ready})
	}()
	select {
	case <-ready:
	case err := <-collDone:
		b.Fatalf("collector: %v", err)
	}
	var packets, sightings, pduBytes uint64
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for b.Loop() {
		res, err := Run(ctx, Options{Config: cfg, Name: "pa", Files: []string{trace}, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		packets += res.Sieve.Packets
		sightings += res.Sightings
		pduBytes += res.PDUBytes
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	el := b.Elapsed().Seconds()
	b.ReportMetric(float64(packets)/el, "packets/s")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(packets), "allocs/packet")
	if sightings > 0 {
		b.ReportMetric(float64(pduBytes)/float64(sightings), "bytes/sighting")
		b.ReportMetric(float64(sightings)/el, "sightings/s")
	}
	cancel()
	if err := <-collDone; err != nil {
		b.Errorf("collector: %v", err)
	}
}
