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
