package conf

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxSample is the sparsest one-way sampling: 1 packet in 2^20. Sparser
// than that, an interval of a flow holds too few packets to say anything.
const MaxSample = 1 << 20

// sample parses a sampling ratio "1/N" (or "1", every packet) into N.
func (a attrs) sample(name string, dst *uint32) {
	v, ok := a.vals[name]
	if !ok {
		return
	}
	n, err := parseSample(v)
	if err != nil {
		a.bad(name, err)
		return
	}
	*dst = n
}

func parseSample(v string) (uint32, error) {
	v = strings.TrimSpace(v)
	if v == "1" {
		return 1, nil
	}
	num, den, ok := strings.Cut(v, "/")
	if !ok || strings.TrimSpace(num) != "1" {
		return 0, fmt.Errorf("want 1/N, e.g. 1/16")
	}
	n, err := strconv.ParseUint(strings.TrimSpace(den), 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("want 1/N with N a positive integer")
	}
	return uint32(n), nil
}

// sampleRange parses an inclusive hash range "0xLO-0xHI" into ow, with
// ow.Sample its ratio 2³²/width. other is the exclusive ratio attribute.
func (a attrs) sampleRange(name, other string, ow *OneWay) {
	v, ok := a.vals[name]
	if !ok {
		return
	}
	if a.has(other) {
		a.p.errf(a.n, "%s and %s are exclusive: give one", other, name)
		return
	}
	lo, hi, err := parseSampleRange(v)
	if err != nil {
		a.bad(name, err)
		return
	}
	ow.SampleRange, ow.SampleLo, ow.SampleHi = true, lo, hi
	ow.Sample = RangeSample(lo, hi)
}

// RangeSample is N of an inclusive hash range [lo, hi]: 2³² / its width,
// rounded down (exact when the width is a power of two, as Validate
// requires) and at most 2³²−1; 0 when hi < lo.
func RangeSample(lo, hi uint32) uint32 {
	if hi < lo {
		return 0
	}
	return uint32(min((1<<32)/(uint64(hi)-uint64(lo)+1), 1<<32-1))
}

func parseSampleRange(v string) (lo, hi uint32, err error) {
	l, h, ok := strings.Cut(strings.TrimSpace(v), "-")
	if !ok {
		return 0, 0, fmt.Errorf("want an inclusive hash range LO-HI, e.g. 0x00000000-0x0fffffff")
	}
	parse := func(s string) (uint32, error) {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 0, 32)
		return uint32(n), err
	}
	if lo, err = parse(l); err == nil {
		hi, err = parse(h)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("want LO-HI with 32-bit unsigned bounds, e.g. 0x00000000-0x0fffffff")
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("the range is empty (LO > HI)")
	}
	if w := uint64(hi) - uint64(lo) + 1; w&(w-1) != 0 {
		return 0, 0, fmt.Errorf("width %d is not a power of two: the ratio would not be 1/N", w)
	}
	return lo, hi, nil
}

// HashRange is the inclusive range of mixed signature hashes that the
// class selects (analyse.Selected): sampleRange, or [0, ⌊(2³²−1)/N⌋] for
// sample="1/N", or the whole range.
func (ow *OneWay) HashRange() (lo, hi uint32) {
	switch {
	case ow.SampleRange:
		return ow.SampleLo, ow.SampleHi
	case ow.Sample > 1:
		return 0, uint32((1<<32 - 1) / uint64(ow.Sample))
	}
	return 0, 1<<32 - 1
}
