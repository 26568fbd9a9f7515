package reconcile

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
)

// benchTraffic is 2-hop traffic of 1000 flows at one packet per µs (data
// time), delays 1–20 ms, 1 % lost, delivered as the two probes would: in
// batches of 64 sightings from each, alternately.
type benchTraffic struct {
	order []Sighting
	wm    []int64 // watermark after each batch
	span  int64   // data time covered
}

func makeBenchTraffic(packets int) *benchTraffic {
	rng := rand.New(rand.NewPCG(1, 2))
	var a, b []Sighting
	for i := range packets {
		t := int64(i) * 1000
		f := uint32(i % 1000)
		sig := rng.Uint32()
		a = append(a, Sighting{Flow: f, Hop: 0, Sig: sig, TS: t})
		if rng.IntN(100) != 0 {
			b = append(b, Sighting{Flow: f, Hop: 1, Sig: sig, TS: t + 1*ms + rng.Int64N(19*ms)})
		}
	}
	slices.SortFunc(b, func(x, y Sighting) int { return int(x.TS - y.TS) })
	tr := &benchTraffic{span: int64(packets) * 1000}
	const batch = 64
	for i, j := 0, 0; i < len(a) || j < len(b); {
		for k := 0; k < batch && i < len(a); k++ {
			tr.order = append(tr.order, a[i])
			i++
		}
		for k := 0; k < batch && j < len(b); k++ {
			tr.order = append(tr.order, b[j])
			j++
		}
		w := tr.span
		if i < len(a) {
			w = a[i].TS
		}
		if j < len(b) {
			w = min(w, b[j].TS)
		}
		for len(tr.wm) < len(tr.order) {
			tr.wm = append(tr.wm, 0)
		}
		tr.wm[len(tr.order)-1] = w
	}
	return tr
}

// BenchmarkReconcile2Hop reconciles benchTraffic in steady state, with the
// maximum transit of the other reconcile benchmarks (100 ms) and with the
// configuration's default (1 s, timeout 2 s): the longer it is, the more
// completed packets the reconciler remembers for clashes.
//
// The traffic is replayed round after round, 1.05 s of data time each: at
// maxTransit 1 s every packet then meets the remembered completion of its
// own signature one round earlier, just expired — a repetition real
// traffic, whose 32-bit signatures rarely recur within a flow, does not
// have. The "fresh" run gives each round's signatures a new salt (the same
// at both hops), so that they do not recur; the plain one is kept as the
// figure earlier sessions quoted.
func BenchmarkReconcile2Hop(b *testing.B) {
	tr := makeBenchTraffic(1 << 20)
	for _, maxT := range []time.Duration{100 * time.Millisecond, time.Second} {
		b.Run("maxTransit="+maxT.String(), func(b *testing.B) { benchReconcile2Hop(b, tr, maxT, false) })
	}
	b.Run("maxTransit=1s,fresh", func(b *testing.B) { benchReconcile2Hop(b, tr, time.Second, true) })
}

func benchReconcile2Hop(b *testing.B, tr *benchTraffic, maxT time.Duration, fresh bool) {
	cfg := &conf.Config{Interval: time.Second, Classes: []conf.Class{{Name: "x", OneWay: &conf.OneWay{
		Hops: hops("in", "out"), MaxTransit: maxT, Timeout: 2 * maxT,
		DupWindow: time.Millisecond,
		Pairs:     []conf.HopPair{{From: 0, To: 1, Slices: durs(2*ms, 5*ms, 10*ms, 15*ms)}},
	}}}}
	r := benchReconciler(b, cfg)
	var base int64 = t0
	var salt uint32
	i := 0
	feed := func() {
		s := tr.order[i]
		s.TS += base
		s.Sig ^= salt
		r.Add(s)
		if w := tr.wm[i]; w != 0 {
			if err := r.Advance(base + w); err != nil {
				b.Fatal(err)
			}
		}
		if i++; i == len(tr.order) {
			i, base = 0, base+tr.span
			if fresh {
				salt = salt*0x9E3779B9 + 0x7F4A7C15 // a new salt each round
			}
		}
	}
	// Reach steady state: every pool grown, several slots closed.
	for range 3 * len(tr.order) {
		feed()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), threadCPU()
	for range b.N {
		feed()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sightings/s")
	if cpu := threadCPU() - cpu; cpu > 0 {
		b.ReportMetric(float64(b.N)/(float64(cpu)/1e9), "sightings/cpu-s")
	}
	b.ReportMetric(float64(r.Counters().Live), "live")
}

// BenchmarkReconcileWaiting measures the memory a sighting takes while it
// waits for its other hop (B/waiting): a million packets seen at the first
// hop of a 2-hop path, their second hop not arrived yet (the watermark
// holds), as when one probe's PDUs lag the other's. The heap in use after
// a garbage collection, less before, over the sightings held.
func BenchmarkReconcileWaiting(b *testing.B) {
	cfg := &conf.Config{Interval: time.Second, Classes: []conf.Class{{Name: "x", OneWay: &conf.OneWay{
		Hops: hops("in", "out"), MaxTransit: 100 * time.Millisecond, Timeout: 200 * time.Millisecond,
		DupWindow: time.Millisecond,
		Pairs:     []conf.HopPair{{From: 0, To: 1, Slices: durs(2*ms, 5*ms, 10*ms, 15*ms)}},
	}}}}
	const n = 1 << 20
	rng := rand.New(rand.NewPCG(3, 4))
	sigs := make([]uint32, n)
	for i := range sigs {
		sigs[i] = rng.Uint32()
	}
	var per float64
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := benchReconciler(b, cfg)
		b.StartTimer()
		for i, sig := range sigs {
			// 1 µs apart: a million sightings span 1 s, within the
			// timeout of none, so all wait.
			r.Add(Sighting{Flow: uint32(i % 1000), Hop: 0, Sig: sig, TS: t0 + int64(i)*1000})
		}
		b.StopTimer()
		if live := r.Counters().Live; live != n {
			b.Fatalf("%d records live, want %d", live, n)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(r)
		b.StartTimer()
	}
	b.ReportMetric(per, "B/waiting")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sighting")
}

// BenchmarkIntervalDelays measures the memory an open interval keeps per
// delay measured (B/delay) until it closes, for reordering and the
// metrics: the 2-hop traffic of BenchmarkReconcile2Hop (1000 flows, a
// million packets in a second of data time) in one 60-second interval,
// every packet decided as it goes (the watermark follows the traffic) but
// the interval still open. The heap in use after a garbage collection at
// the end, less at the middle, over the delays measured in between: the
// working set of the packets in flight and of the recent completions is
// the same at both points and drops out.
func BenchmarkIntervalDelays(b *testing.B) {
	cfg := &conf.Config{Interval: time.Minute, Classes: []conf.Class{{Name: "x", OneWay: &conf.OneWay{
		Hops: hops("in", "out"), MaxTransit: 100 * time.Millisecond, Timeout: 200 * time.Millisecond,
		DupWindow: time.Millisecond,
		Pairs:     []conf.HopPair{{From: 0, To: 1, Slices: durs(2*ms, 5*ms, 10*ms, 15*ms)}},
	}}}}
	tr := makeBenchTraffic(1 << 21)
	// Data time from the start of a minute: the traffic in one interval.
	base := (t0/int64(time.Minute) + 1) * int64(time.Minute)
	var per float64
	b.ReportAllocs()
	for range b.N {
		r := benchReconciler(b, cfg)
		var heap [2]uint64
		var done [2]uint64
		for half := range 2 {
			n := len(tr.order) / 2
			for i := half * n; i < (half+1)*n; i++ {
				s := tr.order[i]
				s.TS += base
				r.Add(s)
				if w := tr.wm[i]; w != 0 {
					if err := r.Advance(base + w); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			heap[half], done[half] = m.HeapAlloc, r.Counters().Completed
			b.StartTimer()
		}
		if k := r.Counters(); k.Intervals != 0 {
			b.Fatalf("%d intervals closed: want the interval open with every packet in it", k.Intervals)
		}
		per = (float64(heap[1]) - float64(heap[0])) / float64(done[1]-done[0])
		runtime.KeepAlive(r)
	}
	b.ReportMetric(per, "B/delay")
}

// benchReconciler is a reconciler of cfg with the 1000 flows of the
// benchmark traffic.
func benchReconciler(b *testing.B, cfg *conf.Config) *Reconciler {
	b.Helper()
	r, err := New(cfg, discard{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for f := range uint32(1000) {
		if err := r.AddFlow(f, 0); err != nil {
			b.Fatal(err)
		}
	}
	return r
}
