package reports

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortDelays: sortDelays orders as slices.Sort does, for delays of
// every spread (all equal, one byte, sub-second, both signs, the extremes)
// and sizes on both sides of its small-slice cut-over.
func TestSortDelays(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	gens := map[string]func() int64{
		"equal":      func() int64 { return 20_000_000 },
		"one byte":   func() int64 { return 1000 + rng.Int64N(256) },
		"sub-second": func() int64 { return 18_000_000 + rng.Int64N(4_000_000) },
		"signed":     func() int64 { return rng.Int64N(2_000_000) - 1_000_000 },
		"any":        func() int64 { return int64(rng.Uint64()) },
		"extremes": func() int64 {
			return []int64{math.MinInt64, math.MaxInt64, 0, -1, 1}[rng.IntN(5)]
		},
	}
	for name, gen := range gens {
		for _, n := range []int{0, 1, 255, 256, 257, 5000, 50000} {
			d := make([]int64, n)
			for i := range d {
				d[i] = gen()
			}
			want := slices.Clone(d)
			slices.Sort(want)
			sortDelays(d)
			if !slices.Equal(d, want) {
				t.Fatalf("%s, %d delays: not sorted as slices.Sort sorts them", name, n)
			}
		}
	}
}

func BenchmarkSortDelays(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	src := make([]int64, 50000)
	for i := range src {
		src[i] = 18_000_000 + rng.Int64N(4_000_000)
	}
	d := make([]int64, len(src))
	for _, sorter := range []struct {
		name string
		f    func([]int64)
	}{{"radix", sortDelays}, {"slices.Sort", slices.Sort[[]int64]}} {
		b.Run(sorter.name, func(b *testing.B) {
			for b.Loop() {
				copy(d, src)
				sorter.f(d)
			}
		})
	}
}
