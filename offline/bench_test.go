package offline

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/internal/gen"
)

// BenchmarkOwd: `tmon owd` on two generated 50 000-packet captures (hop A
// and hop B of a path with 1 % loss, duplicates, fragments, clash pairs),
// one-way class with per-packet delays, spool written: the figure issue
// 11 compares with a tshark field extraction and join of the same files.
func BenchmarkOwd(b *testing.B) {
	gc := gen.DefaultConfig()
	gc.Seed, gc.Count, gc.Rate, gc.IPv6, gc.Background = 9, 50000, 10000, 0, 0
	dir := b.TempDir()
	sum, _, err := gen.Generate(gc, dir)
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := conf.Parse(strings.NewReader(`<tmon interval="1s">
  <collector name="c1" address="127.0.0.1:47390"/>
  <probe name="pa" id="1"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2"><interface name="b0" hop="B"/></probe>
  <flowClass name="site">
    <filter><match field="ip.src" value="10.1.0.0/16"/><match field="ip.dst" value="10.2.0.0/16"/></filter>
    <granular fields="ip.src ip.dst l4.dport"/>
    <oneWay hops="A B" maxTransit="1s" timeout="2s" perPacket="true"/>
  </flowClass>
</tmon>`), "bench.xml")
	if err != nil {
		b.Fatal(err)
	}
	files := []string{filepath.Join(dir, gen.FileHopA), filepath.Join(dir, gen.FileHopB)}
	var packets uint64
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		res, err := Run(context.Background(), Options{Config: cfg, Files: files, Spool: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		packets += res.Sieve.Packets
	}
	b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "packets/s")
	// The process's CPU time (GC included) as well: on a shared machine
	// the wall clock measures the other tenants too.
	if cpu := processCPU() - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu)/1e6/float64(b.N), "cpu-ms/op")
	}
	b.ReportMetric(float64(sum.FramesA+sum.FramesB), "packets/op")
}

func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
