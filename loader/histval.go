package loader

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tmon-project/tmon/hist"
)

// bin is one non-empty bucket of a log-linear histogram.
type bin struct {
	key int32
	n   uint64
}

// sparse is a log-linear histogram (package hist) as its non-empty buckets
// in ascending key order. An aggregated row holds its histograms in this
// form while a batch is merged: a hist.Hist is 60 KiB, and a batch holds
// thousands of rows with five histograms each.
type sparse []bin

// histPool lends the full histograms used to parse the spool form and to
// compute quantiles; they are too big to allocate per row.
var histPool = sync.Pool{New: func() any { return new(hist.Hist) }}

// parseSparse reads the spool form "key:count,..." (docs/spool.md) with
// hist's own parser, so that the loader accepts exactly what the collector
// writes; keys come out sorted and merged whatever their order in s.
func parseSparse(s string) (sparse, error) {
	if s == "" {
		return sparse{}, nil
	}
	h := histPool.Get().(*hist.Hist)
	defer histPool.Put(h)
	h.Reset()
	if err := h.AddSparse(s); err != nil {
		return nil, err
	}
	out := make(sparse, 0, strings.Count(s, ",")+1)
	h.Each(func(k int32, c uint64) { out = append(out, bin{k, c}) })
	return out, nil
}

// String is the spool form, which is also how the database stores it.
func (s sparse) String() string {
	b := make([]byte, 0, len(s)*10)
	for i, x := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(x.key), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, x.n, 10)
	}
	return string(b)
}

func (s sparse) count() uint64 {
	var n uint64
	for _, x := range s {
		n += x.n
	}
	return n
}

// add returns s plus o, bucket by bucket: exact, like hist.Merge. When
// every key of o is already in s (the usual case for an hour or a day that
// has seen a few intervals) it adds in place in O(len(o)·log len(s));
// otherwise it merges into a new slice.
func (s sparse) add(o sparse) sparse {
	j := 0
	inPlace := true
	for _, x := range o {
		j += sort.Search(len(s)-j, func(i int) bool { return s[j+i].key >= x.key })
		if j == len(s) || s[j].key != x.key {
			inPlace = false
			break
		}
	}
	if inPlace {
		j = 0
		for _, x := range o {
			for s[j].key != x.key {
				j++
			}
			s[j].n += x.n
		}
		return s
	}
	out := make(sparse, 0, len(s)+len(o))
	i, k := 0, 0
	for i < len(s) || k < len(o) {
		switch {
		case k == len(o) || (i < len(s) && s[i].key < o[k].key):
			out = append(out, s[i])
			i++
		case i == len(s) || o[k].key < s[i].key:
			out = append(out, o[k])
			k++
		default:
			out = append(out, bin{s[i].key, s[i].n + o[k].n})
			i++
			k++
		}
	}
	return out
}

// quantileSet computes nearest-rank quantiles of a merged histogram with
// their error bounds, as the collector does (hist.Quantile), given the exact
// extremes where some merged column knows them (lo, hi NULL otherwise;
// hist then gives the first and last ranks the error of their bucket).
func quantileSet(s sparse, qs []float64, lo, hi val) (v, errs []int64, ok bool) {
	if s.count() == 0 {
		return nil, nil, false
	}
	h := histPool.Get().(*hist.Hist)
	defer histPool.Put(h)
	h.Reset()
	if err := h.AddSparse(s.String()); err != nil {
		panic(fmt.Sprintf("loader: merged histogram unreadable: %v", err)) // built by String above
	}
	if lo.ok {
		h.SetMin(lo.i)
	}
	if hi.ok {
		h.SetMax(hi.i)
	}
	for _, q := range qs {
		x, e := h.Quantile(q)
		v, errs = append(v, x), append(errs, e)
	}
	return v, errs, true
}

// ci95 is 1.96·√variance, the half-width of a normal 95 % interval.
func ci95(variance float64) float64 { return 1.96 * math.Sqrt(variance) }
