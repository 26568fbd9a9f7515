package spool

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestAppendDecimal: appendDecInt and appendDecUint write what strconv writes,
// for every power of ten and its neighbours (where the digit count
// changes), the extremes and a million random values of every magnitude.
func TestAppendDecimal(t *testing.T) {
	check := func(v int64) {
		t.Helper()
		if got, want := string(appendDecInt([]byte("x"), v)), strconv.AppendInt([]byte("x"), v, 10); got != string(want) {
			t.Fatalf("appendDecInt(%d) = %q, strconv %q", v, got, want)
		}
		u := uint64(v)
		if got, want := string(appendDecUint(nil, u)), strconv.FormatUint(u, 10); got != want {
			t.Fatalf("appendDecUint(%d) = %q, strconv %q", u, got, want)
		}
	}
	for _, v := range []int64{0, 1, 9, 10, 11, 99, 100, math.MaxInt64, math.MinInt64, math.MinInt64 + 1, -1} {
		check(v)
	}
	for p := int64(1); p <= math.MaxInt64/10; p *= 10 {
		for _, d := range []int64{-1, 0, 1} {
			check(p + d)
			check(-(p + d))
		}
	}
	if got := string(appendDecUint(nil, math.MaxUint64)); got != strconv.FormatUint(math.MaxUint64, 10) {
		t.Fatalf("appendDecUint(MaxUint64) = %q", got)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000000 {
		check(rng.Int64() >> rng.UintN(63))
	}
}
