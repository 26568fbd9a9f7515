// Package selection decides which packets a probe sights by consistent
// hash, the same decision at every hop: the analyser's static sampling of a
// one-way class (sample="1/N") and the probe's load shedding when its
// transport cannot carry the sightings. The collector uses the same rules
// to know what a shedding probe left out. Between the sieve (which signs
// the packets) and the analyser in the probe; in the reconciler at the
// collector.
package selection

import "fmt"

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

// Load shedding (docs/transport.md, "Shedding"). When its transport cannot
// carry the sightings, a live probe leaves out the packets whose hash
// falls in the upper part of the range — half of them at level 1, three
// quarters at level 2, … — and tells the collector from which capture time
// at which level. The decision is the same for a packet at every hop, so
// the collector knows which sightings of the other hops lost their partner
// (they count as dropped), and the delays still measured are a consistent
// sample. The hash is salted so that shedding does not pick the same
// packets as a class's static sample="1/N" (which keeps the lowest range).

// MaxShedLevel is the deepest shedding: 1 packet in 2⁶ kept.
const MaxShedLevel = 6

const shedSalt = 0x9e3779b9

// Shed reports whether a probe shedding at level leaves out the packet of
// signature sig: level 0 keeps every packet, level k keeps those whose
// salted hash lies in the lowest 2⁻ᵏ of the range. It does not allocate.
func Shed(sig uint32, level uint8) bool {
	return level > 0 && mix32(sig^shedSalt)>>(32-min(level, 31)) != 0
}

// EventShed is the kind of a probe's shedding notices (docs/transport.md);
// ShedNotice and ParseShedNotice are the one definition of their detail,
// "level=K keep=1/N from=T": level K holds from capture time T (ns) until
// the probe's next notice.
const EventShed = "probe.shed"

// ShedNotice returns the detail of a shedding notice.
func ShedNotice(level uint8, from int64) string {
	return fmt.Sprintf("level=%d keep=1/%d from=%d", level, uint64(1)<<level, from)
}

// ParseShedNotice reads the detail of a shedding notice.
func ParseShedNotice(detail string) (level uint8, from int64, err error) {
	var keep uint64
	if _, err := fmt.Sscanf(detail, "level=%d keep=1/%d from=%d", &level, &keep, &from); err != nil {
		return 0, 0, fmt.Errorf("shedding notice %q: %w", detail, err)
	}
	if level > MaxShedLevel || keep != uint64(1)<<level {
		return 0, 0, fmt.Errorf("shedding notice %q: level out of range", detail)
	}
	return level, from, nil
}
