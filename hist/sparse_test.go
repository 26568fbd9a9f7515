package hist

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// dump is every observable of h: count, extremes, buckets, quantiles.
func dump(h *Hist) []int64 {
	out := []int64{int64(h.Count()), h.Min(), h.Max()}
	h.Each(func(k int32, n uint64) { out = append(out, int64(k), int64(n)) })
	for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 1} {
		v, e := h.Quantile(q)
		out = append(out, v, e)
	}
	return out
}

// TestMergeSparseEqualsAddSparse merges random forms (written by
// AppendSparse, and hand-made ones out of order and with repeated keys,
// which AddSparse accepts) both ways: MergeSparse then AddBuckets must give
// exactly the histogram of AddSparse of every form.
func TestMergeSparseEqualsAddSparse(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		var forms []string
		for range 1 + rng.IntN(40) {
			if rng.IntN(4) == 0 {
				// hand-made: any order, repeats, zero counts
				var parts []string
				for range 1 + rng.IntN(8) {
					k := rng.Int64N(2*MaxKey) - MaxKey
					parts = append(parts, strconv.FormatInt(k, 10)+":"+strconv.FormatUint(rng.Uint64N(5), 10))
				}
				forms = append(forms, strings.Join(parts, ","))
				continue
			}
			var h Hist
			center := rng.Int64N(1e9) - 1e8
			for range rng.IntN(300) {
				h.Add(center + rng.Int64N(1e7))
			}
			forms = append(forms, string(h.AppendSparse(nil)))
		}
		var want, got Hist
		var acc []Bucket
		for _, f := range forms {
			if err := want.AddSparse(f); err != nil {
				t.Fatal(err)
			}
			var err error
			if acc, err = MergeSparse(acc, []byte(f)); err != nil {
				t.Fatal(err)
			}
		}
		got.AddBuckets(acc)
		if a, b := dump(&got), dump(&want); !reflect.DeepEqual(a, b) {
			t.Fatalf("trial %d: merged %v, AddSparse %v", trial, a, b)
		}
		for i := 1; i < len(acc); i++ {
			if acc[i-1].Key >= acc[i].Key {
				t.Fatalf("trial %d: keys not ascending at %d: %v", trial, i, acc)
			}
		}
	}
}

// TestMergeSparseRejects: a form AddSparse rejects is rejected and changes
// nothing; one it accepts is accepted.
func TestMergeSparseRejects(t *testing.T) {
	base := []Bucket{{5, 2}, {70, 1}}
	for _, s := range []string{"", "5:1", "+5:1", "-0:3", "5:0", "5:1,", ",5:1", "5", "5:", ":1", "a:1", "5:-1", "5:+1", "5:1x", "5:1,,6:1",
		"99999999999999999999:1", "5:18446744073709551616", "5:18446744073709551615", strconv.Itoa(MaxKey+1) + ":1", strconv.Itoa(MinKey) + ":1", "1 :1"} {
		var h Hist
		werr := h.AddSparse(s)
		acc := append([]Bucket(nil), base...)
		got, err := MergeSparse(acc, []byte(s))
		if (err == nil) != (werr == nil) {
			t.Errorf("%q: MergeSparse error %v, AddSparse error %v", s, err, werr)
		}
		if err != nil && !reflect.DeepEqual(got, base) {
			t.Errorf("%q: rejected form changed the list: %v", s, got)
		}
	}
}

// benchForms are 100 flows' forms of one chart step: ~30 buckets each.
func benchForms() [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var out [][]byte
	for range 100 {
		var h Hist
		for range 2000 {
			h.Add(18e6 + rng.Int64N(4e6))
		}
		out = append(out, h.AppendSparse(nil))
	}
	return out
}

// BenchmarkMergeStep merges one class-wide chart step (100 forms) and takes
// its p99, as reports/query does: MergeSparse then AddBuckets.
func BenchmarkMergeStep(b *testing.B) {
	forms := benchForms()
	var h Hist
	for b.Loop() {
		var acc []Bucket
		for _, f := range forms {
			acc, _ = MergeSparse(acc, f)
		}
		h.Reset()
		h.AddBuckets(acc)
		h.Quantile(0.99)
	}
}

// BenchmarkAddSparseStep is the same step by AddSparse of every form (as
// the report did before MergeSparse).
func BenchmarkAddSparseStep(b *testing.B) {
	forms := benchForms()
	strs := make([]string, len(forms))
	for i, f := range forms {
		strs[i] = string(f)
	}
	var h Hist
	for b.Loop() {
		h.Reset()
		for _, s := range strs {
			_ = h.AddSparse(s)
		}
		h.Quantile(0.99)
	}
}
