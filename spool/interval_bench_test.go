package spool

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/tmon-project/tmon/reconcile"
)

// BenchmarkWriteInterval: one interval of 50 000 per-packet rows (as tmon
// owd's benchmark captures make), formatted and written to a volatile
// spool (no fsyncs): the spool's share of tmon owd. One op is one
// interval; ns/row is per owd_packet row.
func BenchmarkWriteInterval(b *testing.B) {
	w, err := New(b.TempDir(), testConfig())
	if err != nil {
		b.Fatal(err)
	}
	w.SetVolatile()
	const n = 50000
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	iv := reconcile.Interval{Start: start, Length: time.Minute}
	for i := range n {
		from := start + int64(i)*1_000_000 + rng.Int64N(1000)
		iv.Packets = append(iv.Packets, reconcile.Packet{Flow: uint32(i % 6), Class: 1, Pair: i % 2, Sig: rng.Uint32(),
			From: from, To: from + 18_000_000 + rng.Int64N(4_000_000)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		iv.Start += int64(time.Minute) // a new set each time
		if err := w.WriteInterval(&iv); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/row")
	// The process's CPU time too (GC and the kernel's copy included): on
	// a shared machine the wall clock measures the other tenants as well.
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N)/n, "cpu-ns/row")
}

func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
