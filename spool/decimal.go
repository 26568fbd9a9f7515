package spool

import (
	"math/bits"
	"slices"
)

// Decimal formatting of the per-packet rows (owd_packet: nine integers a
// row, tens of thousands of rows an interval). strconv.AppendInt formats
// into a buffer of its own and copies; these write the digits in place,
// two at a time. The text is strconv's.

// pow10 holds 10^i for i < 20.
var pow10 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// decimalLen is the number of decimal digits of v (1 for 0).
func decimalLen(v uint64) int {
	// log10(2) ≈ 1233/4096: an estimate that is exact or one short.
	n := bits.Len64(v) * 1233 >> 12
	if n < len(pow10) && v >= pow10[n] {
		n++
	}
	return max(n, 1)
}

// appendDecUint appends v in decimal, as strconv.AppendUint(b, v, 10).
func appendDecUint(b []byte, v uint64) []byte {
	n := decimalLen(v)
	b = slices.Grow(b, n)
	out := b[len(b) : len(b)+n]
	i := n
	for v >= 100 {
		q := v / 100
		r := (v - q*100) * 2
		i -= 2
		out[i], out[i+1] = digitPairs[r], digitPairs[r+1]
		v = q
	}
	if v >= 10 {
		out[i-2], out[i-1] = digitPairs[2*v], digitPairs[2*v+1]
	} else {
		out[i-1] = byte('0' + v)
	}
	return b[:len(b)+n]
}

// appendDecInt appends v in decimal, as strconv.AppendInt(b, v, 10).
func appendDecInt(b []byte, v int64) []byte {
	if v < 0 {
		return appendDecUint(append(b, '-'), -uint64(v))
	}
	return appendDecUint(b, uint64(v))
}
