// Package hist is the log-linear histogram behind tmon's exact-enough
// percentiles: the collector's reconcile stage fills one per hop pair and
// interval (delays, delay variation), the spool writes it in a sparse text
// form, and the loader merges those forms across intervals without loss.
//
// Layout (HDR-like). A value's magnitude u = |v| goes to bucket
//
//	u                          when u < 64 (exact),
//	shift·64 + u>>shift        otherwise, shift = bits.Len64(u) − 7,
//
// so each power of two from 64 up is cut into 64 equal buckets of width
// 2^shift ≥ 1. A bucket's width is at most 1/64 of its lower edge, and a
// bucket's midpoint is within 1/128 (0.79 %) of any value in it: that is the
// relative error bound of every quantile (RelErr), for any int64, which
// covers 1 µs … 100 s with room to spare. Negative values (delays across
// skewed clocks, IPDV) mirror the positive buckets. Min and max are kept
// exactly, and quantiles are clamped to them, so p50 ≤ max always holds.
//
// A Hist has a fixed size (about 60 KiB, no pointers); Add and Merge do not
// allocate. The zero value is an empty histogram ready to use.
package hist

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// SubBits is the number of mantissa bits: 2^SubBits buckets per power of two.
const SubBits = 6

const (
	sub = 1 << SubBits
	// MinKey and MaxKey are the keys of math.MinInt64 (magnitude 2⁶³) and
	// math.MaxInt64.
	MinKey = -((63-SubBits)*sub + sub)
	MaxKey = (62-SubBits)*sub + 2*sub - 1
	size   = MaxKey - MinKey + 1
	zero   = -MinKey // array index of key 0
)

// RelErr is the bound on the relative error of Quantile: the returned
// value is within RelErr·|true value| of the exact nearest-rank quantile.
const RelErr = 1.0 / (2 * sub)

// Hist is a log-linear histogram of int64 values (ns in tmon).
//
// Concurrency: not safe for concurrent use.
type Hist struct {
	n        uint64
	min, max int64
	// rough: bit 0 when min, bit 1 when max is only a bucket edge (a
	// histogram read from its sparse form, before SetRange), not a value
	// seen; Quantile then gives no exact extreme.
	rough  uint8
	lo, hi int32 // lowest and highest array index with a count; valid when n > 0
	counts [size]uint64
}

// magKey returns the magnitude bucket of u.
func magKey(u uint64) int32 {
	if u < sub {
		return int32(u)
	}
	shift := bits.Len64(u) - 1 - SubBits
	return int32(shift*sub) + int32(u>>uint(shift))
}

// Key returns the bucket key of v: 0 for 0, positive for v > 0, negative
// for v < 0; keys are ordered like the values. It does not allocate.
func Key(v int64) int32 {
	if v >= 0 {
		return magKey(uint64(v))
	}
	return -magKey(-uint64(v)) // two's complement: right for math.MinInt64 too
}

// magBounds returns the smallest and largest magnitude of bucket k ≥ 0.
func magBounds(k int32) (lo, hi uint64) {
	if k < sub {
		return uint64(k), uint64(k)
	}
	shift := uint(k/sub - 1)
	m := uint64(k%sub + sub)
	lo = m << shift
	return lo, lo + (1 << shift) - 1
}

// Bounds returns the smallest and largest value of bucket key k.
func Bounds(k int32) (lo, hi int64) {
	if k >= 0 {
		l, h := magBounds(k)
		return clampU(l), clampU(h)
	}
	l, h := magBounds(-k)
	return negU(h), negU(l)
}

func clampU(u uint64) int64 {
	if u > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u)
}

func negU(u uint64) int64 {
	if u >= 1<<63 {
		return math.MinInt64
	}
	return -int64(u)
}

// Add counts one value. It does not allocate.
func (h *Hist) Add(v int64) { h.AddN(v, 1) }

// AddN counts c occurrences of v. It does not allocate.
func (h *Hist) AddN(v int64, c uint64) {
	if c == 0 {
		return
	}
	i := Key(v) + zero
	h.extend(v, v, 0, i, i)
	h.n += c
	h.counts[i] += c
}

// extend widens the range held to [lo, hi] (rough: which of the two are
// bucket edges only) and the bucket indexes to [ilo, ihi]. Call it before
// adding the counts.
func (h *Hist) extend(lo, hi int64, rough uint8, ilo, ihi int32) {
	if h.n == 0 {
		h.min, h.max, h.rough, h.lo, h.hi = lo, hi, rough, ilo, ihi
		return
	}
	switch {
	case lo < h.min:
		h.min, h.rough = lo, h.rough&^1|rough&1
	case lo == h.min && rough&1 == 0:
		h.rough &^= 1
	}
	switch {
	case hi > h.max:
		h.max, h.rough = hi, h.rough&^2|rough&2
	case hi == h.max && rough&2 == 0:
		h.rough &^= 2
	}
	h.lo, h.hi = min(h.lo, ilo), max(h.hi, ihi)
}

// Count returns the number of values.
func (h *Hist) Count() uint64 { return h.n }

// Min returns the smallest value; 0 when empty.
func (h *Hist) Min() int64 { return h.min }

// Max returns the largest value; 0 when empty.
func (h *Hist) Max() int64 { return h.max }

// Reset empties h. It costs the range of buckets used, not the whole array.
func (h *Hist) Reset() {
	if h.n > 0 {
		clear(h.counts[h.lo : h.hi+1])
	}
	h.n, h.min, h.max, h.rough, h.lo, h.hi = 0, 0, 0, 0, 0, 0
}

// Merge adds every count of o to h: merging the histograms of two
// intervals gives exactly the histogram of their union. It does not allocate.
func (h *Hist) Merge(o *Hist) {
	if o.n == 0 {
		return
	}
	h.extend(o.min, o.max, o.rough, o.lo, o.hi)
	for i := o.lo; i <= o.hi; i++ {
		h.counts[i] += o.counts[i]
	}
	h.n += o.n
}

// Quantile returns the nearest-rank q-quantile (the value of rank ⌈q·n⌉,
// at least 1, in ascending order) as v, with err such that the exact
// quantile lies in [v−err, v+err]; err ≤ RelErr·|exact|. q=0 gives the
// exact minimum, q=1 the exact maximum, and v always lies within
// [Min, Max]. An empty histogram returns 0, 0. It does not allocate.
func (h *Hist) Quantile(q float64) (v, err int64) {
	if h.n == 0 {
		return 0, 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(1, min(rank, h.n))
	if rank == 1 && h.rough&1 == 0 {
		return h.min, 0
	}
	if rank == h.n && h.rough&2 == 0 {
		return h.max, 0
	}
	var cum uint64
	i := h.lo
	for ; i < h.hi; i++ {
		cum += h.counts[i]
		if cum >= rank {
			break
		}
	}
	lo, hi := Bounds(i - zero)
	lo, hi = max(lo, h.min), min(hi, h.max)
	// Midpoint without overflow; err rounds up.
	d := uint64(hi) - uint64(lo)
	v = lo + int64(d/2)
	return v, int64(d - d/2)
}

// Each calls f for every non-empty bucket, in ascending key order.
func (h *Hist) Each(f func(key int32, count uint64)) {
	if h.n == 0 {
		return
	}
	for i := h.lo; i <= h.hi; i++ {
		if c := h.counts[i]; c != 0 {
			f(i-zero, c)
		}
	}
}

// AppendSparse appends the spool form of h: "key:count" for every
// non-empty bucket, ascending keys, comma-separated; nothing when empty.
// It does not allocate beyond growing b.
func (h *Hist) AppendSparse(b []byte) []byte {
	if h.n == 0 {
		return b
	}
	first := true
	for i := h.lo; i <= h.hi; i++ {
		c := h.counts[i]
		if c == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = strconv.AppendInt(b, int64(i-zero), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, c, 10)
	}
	return b
}

// ErrSyntax is wrapped by AddSparse for a malformed sparse form.
var ErrSyntax = errors.New("malformed sparse histogram")

// AddSparse adds the counts of a sparse form (AppendSparse) to h. The
// form does not carry the exact extremes: Min and Max become the bounds of
// the extreme buckets unless h already holds tighter ones; SetRange
// restores them from the spool's min and max columns. On error h is
// unchanged.
func (h *Hist) AddSparse(s string) error {
	if s == "" {
		return nil
	}
	// Validate first so that a bad form changes nothing.
	for pass := 0; pass < 2; pass++ {
		rest := s
		for rest != "" {
			item := rest
			if j := strings.IndexByte(rest, ','); j >= 0 {
				item, rest = rest[:j], rest[j+1:]
				if rest == "" {
					return fmt.Errorf("hist: %w: trailing comma", ErrSyntax)
				}
			} else {
				rest = ""
			}
			c := strings.IndexByte(item, ':')
			if c < 0 {
				return fmt.Errorf("hist: %w: %q has no ':'", ErrSyntax, item)
			}
			k, err := strconv.ParseInt(item[:c], 10, 32)
			if err != nil || k < MinKey || k > MaxKey {
				return fmt.Errorf("hist: %w: key %q", ErrSyntax, item[:c])
			}
			n, err := strconv.ParseUint(item[c+1:], 10, 64)
			if err != nil {
				return fmt.Errorf("hist: %w: count %q", ErrSyntax, item[c+1:])
			}
			if pass == 1 && n > 0 {
				lo, hi := Bounds(int32(k))
				i := int32(k) + zero
				h.extend(lo, hi, 3, i, i)
				h.n += n
				h.counts[i] += n
			}
		}
	}
	return nil
}

// SetRange narrows Min and Max to the exact extremes known from elsewhere
// (the spool's min/max columns); values outside the buckets held are ignored.
func (h *Hist) SetRange(lo, hi int64) {
	if h.n == 0 || lo > hi {
		return
	}
	h.SetMin(lo)
	h.SetMax(hi)
}

// SetMin sets Min to the exact minimum known from elsewhere, when it lies in
// the lowest bucket held; the other extreme stays as it was (exact or not).
func (h *Hist) SetMin(v int64) {
	if l, u := Bounds(h.lo - zero); h.n > 0 && v >= l && v <= u && v <= h.max {
		h.min, h.rough = v, h.rough&^1
	}
}

// SetMax is SetMin for the maximum.
func (h *Hist) SetMax(v int64) {
	if l, u := Bounds(h.hi - zero); h.n > 0 && v >= l && v <= u && v >= h.min {
		h.max, h.rough = v, h.rough&^2
	}
}
