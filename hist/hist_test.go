package hist

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// exactQuantile is the obvious reference: nearest rank on a sorted copy.
func exactQuantile(sorted []int64, q float64) int64 {
	r := int(math.Ceil(q * float64(len(sorted))))
	r = max(1, min(r, len(sorted)))
	return sorted[r-1]
}

func TestKeyBounds(t *testing.T) {
	vals := []int64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 1<<40 + 12345, math.MaxInt64, -1, -64, -65, -1000, math.MinInt64 + 1, math.MinInt64}
	for _, v := range vals {
		k := Key(v)
		lo, hi := Bounds(k)
		if v < lo || v > hi {
			t.Errorf("Key(%d)=%d: bounds [%d,%d] do not hold it", v, k, lo, hi)
		}
		if k < MinKey || k > MaxKey {
			t.Errorf("Key(%d)=%d out of range", v, k)
		}
		// Width within 1/64 of the lower magnitude: the relative bound.
		if v != 0 {
			w := float64(hi) - float64(lo)
			if w > math.Abs(float64(v))/sub+1e-9*math.Abs(float64(v)) && w > 0 {
				t.Errorf("Key(%d): width %v above |v|/64", v, w)
			}
		}
	}
	// Keys are contiguous and monotone: each bucket starts one after the last.
	for k := int32(MinKey); k < MaxKey; k++ {
		_, hi := Bounds(k)
		lo, _ := Bounds(k + 1)
		if hi+1 != lo {
			t.Fatalf("bucket %d ends at %d, bucket %d starts at %d", k, hi, k+1, lo)
		}
	}
	if lo, _ := Bounds(MinKey); lo != math.MinInt64 {
		t.Errorf("lowest bucket starts at %d", lo)
	}
	if _, hi := Bounds(MaxKey); hi != math.MaxInt64 {
		t.Errorf("highest bucket ends at %d", hi)
	}
}

type dist struct {
	name string
	draw func(r *rand.Rand) int64
}

var dists = []dist{
	{"uniform-1us-100s", func(r *rand.Rand) int64 { return 1000 + r.Int64N(100e9) }},
	{"uniform-narrow", func(r *rand.Rand) int64 { return 18e6 + r.Int64N(4e6) }},
	{"pareto-a1.2", func(r *rand.Rand) int64 { return int64(1000 / math.Pow(1-r.Float64(), 1/1.2)) }},
	{"lognormal", func(r *rand.Rand) int64 { return int64(math.Exp(13 + 2*r.NormFloat64())) }},
	{"bimodal", func(r *rand.Rand) int64 {
		if r.IntN(10) < 7 {
			return int64(2e6 + 1e5*r.NormFloat64())
		}
		return int64(250e6 + 5e6*r.NormFloat64())
	}},
	{"signed-ipdv", func(r *rand.Rand) int64 { return int64(3e5 * r.NormFloat64()) }},
	{"small-exact", func(r *rand.Rand) int64 { return r.Int64N(64) }},
}

var qs = []float64{0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1}

// TestQuantileBound checks, against exact sorted quantiles, that every
// quantile lies within its stated error and the error within RelErr.
func TestQuantileBound(t *testing.T) {
	for _, d := range dists {
		for _, n := range []int{1, 2, 7, 100, 10007, 200000} {
			r := rand.New(rand.NewPCG(uint64(n), 42))
			var h Hist
			vals := make([]int64, n)
			for i := range vals {
				vals[i] = d.draw(r)
				h.Add(vals[i])
			}
			slices.Sort(vals)
			if h.Min() != vals[0] || h.Max() != vals[n-1] || h.Count() != uint64(n) {
				t.Fatalf("%s n=%d: min/max/count %d/%d/%d, want %d/%d/%d", d.name, n, h.Min(), h.Max(), h.Count(), vals[0], vals[n-1], n)
			}
			prev := int64(math.MinInt64)
			for _, q := range qs {
				got, e := h.Quantile(q)
				want := exactQuantile(vals, q)
				if absDiff(got, want) > e {
					t.Errorf("%s n=%d q=%v: %d ± %d, exact %d", d.name, n, q, got, e, want)
				}
				if float64(e) > RelErr*math.Abs(float64(want))+0.5 {
					t.Errorf("%s n=%d q=%v: error bound %d above %.4f%% of %d", d.name, n, q, e, 100*RelErr, want)
				}
				if got < h.Min() || got > h.Max() || got < prev {
					t.Errorf("%s n=%d q=%v: %d outside [min %d, max %d] or below the previous quantile %d", d.name, n, q, got, h.Min(), h.Max(), prev)
				}
				prev = got
			}
		}
	}
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// TestMergeExact: the merge of per-interval histograms equals the histogram
// of all values, bucket for bucket, and survives the sparse spool form.
func TestMergeExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var all, merged, parsed Hist
	for iv := 0; iv < 10; iv++ {
		var h Hist
		for i := 0; i < 1000; i++ {
			v := dists[iv%len(dists)].draw(r)
			h.Add(v)
			all.Add(v)
		}
		merged.Merge(&h)
		if err := parsed.AddSparse(string(h.AppendSparse(nil))); err != nil {
			t.Fatal(err)
		}
	}
	if merged.counts != all.counts || merged.n != all.n || merged.min != all.min || merged.max != all.max {
		t.Fatal("merged histogram differs from the histogram of all values")
	}
	if parsed.counts != all.counts || parsed.n != all.n {
		t.Fatal("histogram merged from sparse forms differs")
	}
	parsed.SetRange(all.Min(), all.Max())
	for _, q := range qs {
		a, ea := all.Quantile(q)
		p, ep := parsed.Quantile(q)
		if a != p || ea != ep {
			t.Errorf("q=%v: %d±%d from values, %d±%d from the spool form", q, a, ea, p, ep)
		}
	}
}

func TestSparseForm(t *testing.T) {
	var h Hist
	for _, v := range []int64{-3, 0, 0, 5, 1000} {
		h.Add(v)
	}
	got := string(h.AppendSparse(nil))
	k := Key(1000)
	want := "-3:1,0:2,5:1," + itoa(int64(k)) + ":1"
	if got != want {
		t.Errorf("sparse %q, want %q", got, want)
	}
	for _, bad := range []string{"1", "1:", ":1", "1:2,", "x:1", "99999:1", "1:-1"} {
		var p Hist
		if err := p.AddSparse(bad); err == nil {
			t.Errorf("AddSparse(%q): no error", bad)
		} else if p.Count() != 0 {
			t.Errorf("AddSparse(%q) changed the histogram", bad)
		}
	}
	var e Hist
	if s := e.AppendSparse(nil); len(s) != 0 {
		t.Errorf("empty histogram: %q", s)
	}
	if v, err := e.Quantile(0.5); v != 0 || err != 0 {
		t.Errorf("empty quantile %d±%d", v, err)
	}
}

func itoa(v int64) string { return string(appendInt(nil, v)) }

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		return appendInt(append(b, '-'), -v)
	}
	if v >= 10 {
		b = appendInt(b, v/10)
	}
	return append(b, byte('0'+v%10))
}

func TestReset(t *testing.T) {
	var h Hist
	h.Add(5)
	h.Add(-7e9)
	h.Reset()
	var z Hist
	if h != z {
		t.Fatal("Reset left state behind")
	}
}

func TestNoAllocs(t *testing.T) {
	var h, o Hist
	o.Add(3)
	buf := make([]byte, 0, 1024)
	v := int64(1)
	if n := testing.AllocsPerRun(1000, func() {
		v = v*31 + 7
		h.Add(v)
		h.Merge(&o)
		h.Quantile(0.99)
		buf = h.AppendSparse(buf[:0])
	}); n != 0 {
		t.Errorf("%v allocations per run", n)
	}
}

// A histogram read back from its sparse form knows its extremes only to a
// bucket: the first and last ranks then carry the bucket's error, not 0;
// after SetRange (the spool's exact min and max) they are exact again.
func TestQuantileExtremesFromSparse(t *testing.T) {
	var h Hist
	for _, v := range []int64{1_000_003, 2_000_000, 3_000_007} {
		h.Add(v)
	}
	var r Hist
	if err := r.AddSparse(string(h.AppendSparse(nil))); err != nil {
		t.Fatal(err)
	}
	for _, q := range []float64{0, 1} {
		v, e := r.Quantile(q)
		want := h.Min()
		if q == 1 {
			want = h.Max()
		}
		if e == 0 || v-e > want || v+e < want {
			t.Errorf("q=%v from sparse: %d ± %d, true value %d", q, v, e, want)
		}
	}
	r.SetRange(h.Min(), h.Max())
	if v, e := r.Quantile(0); v != h.Min() || e != 0 {
		t.Errorf("after SetRange: min %d ± %d, want %d ± 0", v, e, h.Min())
	}
	// Merging an exact value into a rough histogram whose bucket holds it
	// cannot make the minimum exact (the rough part's own minimum is
	// unknown within the bucket); below every bucket, it can.
	var m Hist
	m.AddSparse(string(h.AppendSparse(nil)))
	var x Hist
	x.Add(1_000_003)
	m.Merge(&x)
	if v, e := m.Quantile(0); e == 0 || v-e > 1_000_003 || v+e < 1_000_003 {
		t.Errorf("merged in one bucket: min %d ± %d, must be rough and hold 1000003", v, e)
	}
	var y Hist
	y.Add(5)
	m.Merge(&y)
	if v, e := m.Quantile(0); v != 5 || e != 0 {
		t.Errorf("merged below: min %d ± %d, want exact 5", v, e)
	}
}

// SetMin makes only the minimum exact: the last rank keeps its bucket's
// error when the maximum is not known.
func TestSetMinKeepsMaxRough(t *testing.T) {
	var h Hist
	for _, v := range []int64{1_000_003, 3_000_007} {
		h.Add(v)
	}
	var r Hist
	if err := r.AddSparse(string(h.AppendSparse(nil))); err != nil {
		t.Fatal(err)
	}
	r.SetMin(1_000_003)
	if v, e := r.Quantile(0); v != 1_000_003 || e != 0 {
		t.Errorf("min %d ± %d, want exact", v, e)
	}
	if v, e := r.Quantile(1); e == 0 || v-e > 3_000_007 || v+e < 3_000_007 {
		t.Errorf("max %d ± %d must be rough and hold 3000007", v, e)
	}
}
