package analyse

// Consistent packet selection (RFC 5475 hash-based selection): a one-way
// class with sample="1/N" sights only the packets whose signature hashes
// into the lowest 1/N of the 32-bit range. The signature is computed from
// the bytes that do not change along the path, so every probe of the path
// selects exactly the same packets and 1-in-N sampling still yields
// complete multi-hop records: no sighting is sent for a packet that the
// next hop will not report too.
//
// The signature is not used directly: it is a CRC-32C, which is linear over
// GF(2), so packets that differ only in a few payload bits (a counter, a
// sequence number) have signatures that differ by fixed bit patterns, and a
// selection on some of their bits (sig mod N for N a power of two) would
// pick a structured subset of them. A bijective avalanche mix (MurmurHash3's
// finaliser) first spreads every input bit over every output bit.

// mix32 is MurmurHash3's fmix32: a bijection of uint32 in which each input
// bit flips each output bit with probability close to 1/2.
func mix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// Selected reports whether the packet of signature sig is measured under
// 1-in-n sampling: whether its mixed hash lies below 2³²/n. n 0 and 1
// select every packet. The fraction selected from well-spread signatures
// is 1/n (to within 2⁻³²). It does not allocate, and is the same decision
// at every hop.
func Selected(sig, n uint32) bool {
	return n <= 1 || uint64(mix32(sig))*uint64(n) < 1<<32
}

// SelectedRange reports whether the packet of signature sig is measured
// under range selection (sampleRange="0xLO-0xHI"): whether its mixed hash
// lies in [lo, hi], inclusive. Disjoint ranges select disjoint packets;
// Selected(sig, n) is SelectedRange(sig, 0, ⌊(2³²−1)/n⌋) for n > 1
// (conf.OneWay.HashRange). Like Selected, the same decision at every hop.
func SelectedRange(sig, lo, hi uint32) bool {
	h := mix32(sig)
	return h >= lo && h <= hi
}
