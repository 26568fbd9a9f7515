package gen

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"
)

// The throughput trace: one hop's capture of a busy link, to measure how
// fast the probe's stages go (issue 11: probe replay against tcpdump, the
// whole-probe benchmark, `tmon owd`). It carries no truth: it is what one
// probe sees, not a path.

// MixConfig describes a throughput trace. DefaultMix is the trace.
type MixConfig struct {
	Seed uint64
	// Small and Large are the IPv4 UDP datagrams with SmallPayload and
	// LargePayload bytes of payload, spread over Flows flows
	// (10.1.0.0/16 → 10.2.0.0/16, destination ports 5000 + flow).
	Small, Large               int
	SmallPayload, LargePayload int
	Flows                      int
	// TCP and IPv6 add TCP segments (4 connections, 200-byte payloads) and
	// IPv6 UDP datagrams (2 flows, 100-byte payloads) as a share of the
	// UDP datagrams.
	TCP, IPv6 float64
	// Spacing is the time between two frames; Start the first one's.
	Spacing time.Duration
	Start   time.Time
}

// DefaultMix is the trace of issue 11: 1 236 000 frames, 800 000 UDP
// datagrams of 64 payload bytes and 400 000 of 1 200 over 64 flows, 2 %
// TCP, 1 % IPv6, 1 µs apart (≈ 600 MB).
func DefaultMix() MixConfig {
	return MixConfig{
		Seed: 11, Small: 800_000, Large: 400_000, SmallPayload: 64, LargePayload: 1200, Flows: 64,
		TCP: 0.02, IPv6: 0.01, Spacing: time.Microsecond,
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// MixSummary counts what WriteMix wrote.
type MixSummary struct {
	Frames, Small, Large, TCP, IPv6 int
	Bytes                           int64 // frame bytes, headers included
}

// WriteMix writes the trace of c to w as a nanosecond pcap (Ethernet) and
// returns what it wrote. The kinds of frames are interleaved at random
// with exactly the configured counts; each frame carries its sequence
// number in its first payload bytes, so no two are identical (no
// signature clashes). Output is deterministic for a given c.
func WriteMix(w io.Writer, c MixConfig) (MixSummary, error) {
	if c.Flows < 1 || c.Flows > 1000 || c.Small < 0 || c.Large < 0 || c.SmallPayload < 8 || c.LargePayload < 8 ||
		c.SmallPayload > 1472 || c.LargePayload > 1472 || c.TCP < 0 || c.IPv6 < 0 || c.TCP+c.IPv6 > 1 || c.Spacing < 0 {
		return MixSummary{}, fmt.Errorf("gen: mix: bad configuration %+v", c)
	}
	rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x6d6978))
	udp := c.Small + c.Large
	left := [4]int{c.Small, c.Large, int(float64(udp)*c.TCP + 0.5), int(float64(udp)*c.IPv6 + 0.5)}
	total := left[0] + left[1] + left[2] + left[3]
	sum := MixSummary{Frames: total, Small: left[0], Large: left[1], TCP: left[2], IPv6: left[3]}

	flows := make([]*flow, c.Flows)
	for i := range flows {
		flows[i] = &flow{
			src:   netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(10 + i%200)}),
			dst:   netip.AddrFrom4([4]byte{10, 2, 0, byte(20 + i%7)}),
			proto: protoUDP, sport: uint16(32768 + rng.IntN(28000)), dport: uint16(5000 + i),
			ipID: uint16(rng.Uint32()),
		}
	}
	tcp := make([]*flow, 4)
	for i := range tcp {
		tcp[i] = &flow{
			src: netip.AddrFrom4([4]byte{10, 1, 1, byte(10 + i)}), dst: netip.AddrFrom4([4]byte{10, 2, 1, 20}),
			proto: protoTCP, sport: uint16(40000 + i), dport: 443, ipID: uint16(rng.Uint32()),
			tcpSeq: rng.Uint32(), tcpAck: rng.Uint32(),
		}
	}
	v6 := []*flow{
		{src: netip.MustParseAddr("fd00:1::10"), dst: netip.MustParseAddr("fd00:2::20"), proto: protoUDP, sport: 33000, dport: 5002, flowLabel: rng.Uint32() & 0xfffff},
		{src: netip.MustParseAddr("fd00:1::11"), dst: netip.MustParseAddr("fd00:2::20"), proto: protoUDP, sport: 33001, dport: 5003, flowLabel: rng.Uint32() & 0xfffff},
	}
	// Payloads: a random pool read at a random offset, the frame's
	// sequence number in front (random bytes per frame would make the
	// generator the slow part).
	pool := make([]byte, 1<<16)
	fillRandom(rng, pool)
	payload := func(n int, seq uint64) []byte {
		off := rng.IntN(len(pool) - n)
		p := pool[off : off+n]
		binary.BigEndian.PutUint64(p, seq)
		return p
	}

	bw := bufio.NewWriterSize(w, 1<<20)
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b23c4d) // nanosecond pcap
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	if _, err := bw.Write(hdr[:]); err != nil {
		return sum, fmt.Errorf("gen: mix: %w", err)
	}
	t := c.Start.UnixNano()
	frame := make([]byte, 0, 1600)
	for seq := range total {
		k := pick(rng, &left, total-seq)
		var ip []byte
		switch k {
		case 0, 1:
			f := flows[rng.IntN(len(flows))]
			n := c.SmallPayload
			if k == 1 {
				n = c.LargePayload
			}
			seg := udpNoChecksum(f, payload(n, uint64(seq)))
			f.ipID++
			ip = ipv4Packet(f.src, f.dst, protoUDP, f.ipID, 0, false, seg)
		case 2:
			f := tcp[rng.IntN(len(tcp))]
			f.ipID++
			ip = ipv4Packet(f.src, f.dst, protoTCP, f.ipID, 0, false, l4Segment(f, payload(200, uint64(seq))))
		case 3:
			f := v6[rng.IntN(len(v6))]
			ip = ipv6Packet(f.src, f.dst, protoUDP, f.flowLabel, l4Segment(f, payload(100, uint64(seq))))
		}
		et := uint16(etherTypeIPv4)
		if k == 3 {
			et = etherTypeIPv6
		}
		frame = appendEth(frame[:0], macRouterA, macHostA, et, ip)
		var rh [16]byte
		binary.LittleEndian.PutUint32(rh[0:], uint32(t/1e9))
		binary.LittleEndian.PutUint32(rh[4:], uint32(t%1e9))
		binary.LittleEndian.PutUint32(rh[8:], uint32(len(frame)))
		binary.LittleEndian.PutUint32(rh[12:], uint32(len(frame)))
		bw.Write(rh[:])
		if _, err := bw.Write(frame); err != nil {
			return sum, fmt.Errorf("gen: mix: %w", err)
		}
		sum.Bytes += int64(len(frame))
		t += int64(c.Spacing)
	}
	if err := bw.Flush(); err != nil {
		return sum, fmt.Errorf("gen: mix: %w", err)
	}
	return sum, nil
}

// pick draws the kind of the next frame in proportion to what is left of
// each, so that the counts come out exact.
func pick(rng *rand.Rand, left *[4]int, remaining int) int {
	r := rng.IntN(remaining)
	for k := range left {
		if r < left[k] {
			left[k]--
			return k
		}
		r -= left[k]
	}
	panic("gen: mix: counts out of step")
}

// udpNoChecksum is a UDP header and payload with checksum 0 ("none", legal
// over IPv4): summing 600 MB would make the generator the slow part.
func udpNoChecksum(f *flow, payload []byte) []byte {
	seg := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(seg[0:], f.sport)
	binary.BigEndian.PutUint16(seg[2:], f.dport)
	binary.BigEndian.PutUint16(seg[4:], uint16(len(seg)))
	copy(seg[8:], payload)
	return seg
}

// appendEth appends an untagged Ethernet frame around p, padded to the
// minimum.
func appendEth(b []byte, dst, src [6]byte, etherType uint16, p []byte) []byte {
	b = append(b, dst[:]...)
	b = append(b, src[:]...)
	b = binary.BigEndian.AppendUint16(b, etherType)
	b = append(b, p...)
	for len(b) < minFrameLen {
		b = append(b, 0)
	}
	return b
}
