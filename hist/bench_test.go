package hist

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkAdd is the cost per value inserted (one per delay sighting).
func BenchmarkAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	vals := make([]int64, 4096)
	for i := range vals {
		vals[i] = dists[2].draw(r)
	}
	var h Hist
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		h.Add(vals[i&4095])
	}
}

func BenchmarkQuantile(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	var h Hist
	for range 100000 {
		h.Add(dists[4].draw(r))
	}
	b.ReportAllocs()
	for b.Loop() {
		h.Quantile(0.999)
	}
}

func BenchmarkMergeAndSparse(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	var h, m Hist
	for range 10000 {
		h.Add(dists[1].draw(r))
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		m.Merge(&h)
		buf = h.AppendSparse(buf[:0])
	}
}
