package hist

import (
	"fmt"
	"slices"
)

// Bucket is one non-empty bucket of a sparse form: its key and count.
type Bucket struct {
	Key int32
	N   uint64
}

// MergeSparse adds the counts of a sparse form (AppendSparse) to acc, a
// list of buckets in ascending key order without repeats (nil, or what
// MergeSparse returned), and returns the merged list. Merging forms this
// way and then AddBuckets gives exactly the histogram that AddSparse of
// every form gives, at a fraction of the cost and memory: a report merges
// thousands of forms per chart step, and a Hist is 60 KiB. It allocates
// only when s holds keys acc lacks. On error acc is returned unchanged.
func MergeSparse(acc []Bucket, s []byte) ([]Bucket, error) {
	var buf [128]Bucket
	add, err := parseSparse(buf[:0], s)
	if err != nil || len(add) == 0 {
		return acc, err
	}
	if !slices.IsSortedFunc(add, func(a, b Bucket) int { return int(a.Key) - int(b.Key) }) {
		// Never written so (AppendSparse ascends), but accepted by AddSparse.
		slices.SortStableFunc(add, func(a, b Bucket) int { return int(a.Key) - int(b.Key) })
	}
	// Repeated keys (accepted by AddSparse too) add up.
	j := 0
	for _, b := range add {
		if j > 0 && add[j-1].Key == b.Key {
			add[j-1].N += b.N
			continue
		}
		add[j] = b
		j++
	}
	add = add[:j]
	// Fast path: every key already held (the usual case for a flow).
	i, all := 0, true
	for _, b := range add {
		for i < len(acc) && acc[i].Key < b.Key {
			i++
		}
		if i == len(acc) || acc[i].Key != b.Key {
			all = false
			break
		}
		i++
	}
	if all {
		i = 0
		for _, b := range add {
			for acc[i].Key < b.Key {
				i++
			}
			acc[i].N += b.N
			i++
		}
		return acc, nil
	}
	out := make([]Bucket, 0, len(acc)+len(add))
	i, k := 0, 0
	for i < len(acc) || k < len(add) {
		switch {
		case k == len(add) || (i < len(acc) && acc[i].Key < add[k].Key):
			out = append(out, acc[i])
			i++
		case i == len(acc) || add[k].Key < acc[i].Key:
			out = append(out, add[k])
			k++
		default:
			out = append(out, Bucket{acc[i].Key, acc[i].N + add[k].N})
			i, k = i+1, k+1
		}
	}
	return out, nil
}

// AddBuckets adds buckets (keys in range, as MergeSparse returns them) to h
// as AddSparse does: Min and Max become bucket bounds unless h holds
// tighter ones. It does not allocate.
func (h *Hist) AddBuckets(bs []Bucket) {
	for _, b := range bs {
		if b.N == 0 || b.Key < MinKey || b.Key > MaxKey {
			continue
		}
		lo, hi := Bounds(b.Key)
		i := b.Key + zero
		h.extend(lo, hi, 3, i, i)
		h.n += b.N
		h.counts[i] += b.N
	}
}

// parseSparse appends the non-empty buckets of a sparse form to dst, in the
// form's order; it accepts what AddSparse accepts. One pass over the bytes,
// no allocation beyond growing dst.
func parseSparse(dst []Bucket, s []byte) ([]Bucket, error) {
	i := 0
	for i < len(s) {
		// key: optional sign, decimal digits
		start := i
		neg := false
		if s[i] == '-' || s[i] == '+' {
			neg = s[i] == '-'
			i++
		}
		var k int64
		d0 := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if k <= -MinKey {
				k = k*10 + int64(s[i]-'0')
			}
			i++
		}
		if neg {
			k = -k
		}
		if i == d0 || k < MinKey || k > MaxKey {
			return dst, fmt.Errorf("hist: %w: key %q", ErrSyntax, field(s, start, ':'))
		}
		if i == len(s) || s[i] != ':' {
			return dst, fmt.Errorf("hist: %w: %q has no ':'", ErrSyntax, field(s, start, ','))
		}
		i++
		// count: decimal digits, no sign, fits 64 bits
		c0 := i
		var n uint64
		bad := false
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			d := uint64(s[i] - '0')
			if n > (1<<64-1-d)/10 {
				bad = true
			}
			n = n*10 + d
			i++
		}
		if i == c0 || bad || (i < len(s) && s[i] != ',') {
			return dst, fmt.Errorf("hist: %w: count %q", ErrSyntax, field(s, c0, ','))
		}
		if i < len(s) {
			i++ // ','
			if i == len(s) {
				return dst, fmt.Errorf("hist: %w: trailing comma", ErrSyntax)
			}
		}
		if n > 0 {
			dst = append(dst, Bucket{int32(k), n})
		}
	}
	return dst, nil
}

// field is s from start up to the next sep (for an error message).
func field(s []byte, start int, sep byte) string {
	end := start
	for end < len(s) && s[end] != sep {
		end++
	}
	return string(s[start:end])
}
