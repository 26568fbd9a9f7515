// Package gen is the traffic generator that stands in front of the whole data
// flow in tests and `make demo`: it writes what two probes would capture on a
// path A → router → B (hop-a.pcap, hop-b.pcap) together with the ground truth
// of what the path did to every packet (truth.tsv), so that the measurements
// coming out of capture → sieve → … → collector can be checked exactly.
//
// # Traffic
//
// Measured flows: IPv4 UDP and TCP from 10.1.0.0/16 to 10.2.0.0/16 on
// destination ports 5000–5999 (what examples/demo.xml's one-way class
// wants), IPv4 UDP datagrams larger than the MTU sent as 2–3 fragments, and
// IPv6 UDP flows fd00:1::/64 → fd00:2::/64 (which demo.xml's one-way class
// does not select). Each flow has a distinct (src, dst, dport). Payloads are
// random; a tenth are tiny so that frames need Ethernet padding. Background
// frames that no one-way class wants (ARP requests, UDP from 10.3.0.0/16)
// are drawn independently at each hop and are not in the truth.
//
// # What the path does
//
// Every packet sent at A (each fragment on its own) is lost with probability
// Loss, otherwise seen at B exactly delay ns later (TB = TA + delay, integer
// ns), the delay drawn from Config.Delay; a delivered packet is duplicated
// with probability Dup, the copy < 500 µs after it. Reordering comes from
// jitter larger than the packet spacing. At B the router has decremented the
// TTL (hop limit), recomputed the IPv4 header checksum, and the frame has the
// router's and host B's MAC addresses, zero padding to 60 bytes, and
// optionally an 802.1Q tag; everything from the IP payload on is unchanged.
// Clash pairs are two byte-identical IPv4 UDP packets (same flow, IP id and
// payload) sent ClashGap apart.
//
// # truth.tsv
//
// One header line (TruthHeader), then one row per packet sent at A, in order
// of t_a_ns, tab-separated:
//
//	seq         0-based packet number at A
//	src dst     IP addresses of the flow
//	proto       6 (TCP) or 17 (UDP)
//	sport dport ports of the flow (for every fragment of a datagram too)
//	frag        fragment index 0, 1, 2 for a fragment, - otherwise
//	t_a_ns      capture time at A, ns since the Unix epoch
//	t_b_ns      capture time at B; empty when lost
//	delay_ns    t_b_ns − t_a_ns, or "lost"
//	dup_t_b_ns  capture time of the duplicate at B; empty when not duplicated
//	clash       clash group number shared by the two packets of a pair, or -
//	ip_len      IP total length of the packet (header included)
//	ip_id       IPv4 identification, - for IPv6
//	reordered   1 when a later packet of the same flow reached B first
//	            (RFC 4737), else 0; 0 for lost packets
//
// summary.tsv holds the totals as "name<TAB>value" lines (see Summary).
package gen

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names written by Generate in its output directory.
const (
	FileHopA    = "hop-a.pcap"
	FileHopB    = "hop-b.pcap"
	FileTruth   = "truth.tsv"
	FileSummary = "summary.tsv"
)

// Frame is one captured frame.
type Frame struct {
	TS   int64 // ns since the Unix epoch
	Data []byte
}

// Summary counts what was generated.
type Summary struct {
	Packets     int // truth rows: packets sent at A on measured flows
	Datagrams   int // datagrams sent (a fragmented one counts once, clash copies do not)
	Lost        int
	Duplicated  int
	Reordered   int
	ClashPairs  int
	Fragments   int // packets that are fragments
	Fragmented  int // datagrams sent as fragments
	IPv6        int // packets on IPv6 flows
	BackgroundA int // background frames at A
	BackgroundB int
	FramesA     int // frames in hop-a.pcap
	FramesB     int
}

// Result is a generated capture pair, in memory.
type Result struct {
	A, B    []Frame // in timestamp order
	Truth   []TruthRow
	Summary Summary
}

// flow is one measured flow and its per-flow state.
type flow struct {
	src, dst       netip.Addr
	proto          uint8
	sport, dport   uint16
	ipID           uint16
	tcpSeq, tcpAck uint32
	flowLabel      uint32
}

// send is a packet leaving host A.
type send struct {
	ta    int64
	ip    []byte
	flow  *flow
	frag  int
	clash int
	ipID  int
}

// Build generates the traffic of cfg in memory.
func Build(cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x746d6f6e67656e)) // "tmongen"
	v4, v6 := makeFlows(rng)

	count := cfg.Count
	if count == 0 {
		count = int(cfg.Duration.Seconds() * cfg.Rate)
	}
	spacing := float64(time.Second) / cfg.Rate
	t := cfg.Start.UnixNano()
	var sends []send
	var sum Summary
	for k := range count {
		if k > 0 {
			t += int64(spacing * (0.5 + rng.Float64()))
		}
		f := v4[rng.IntN(len(v4))]
		if rng.Float64() < cfg.IPv6 {
			f = v6[rng.IntN(len(v6))]
		}
		var n int
		fragmented := f.proto == protoUDP && f.src.Is4() && cfg.Frag > 0 && rng.Float64() < cfg.Frag
		switch {
		case fragmented:
			// 2 or 3 fragments: the segment exceeds one MTU's payload
			// and fits in three.
			per := (cfg.MTU - 20) &^ 7
			n = per - 7 + rng.IntN(2*per)
		case rng.IntN(10) == 0:
			// Small: the frame needs padding. IPv6 has no IP id to
			// tell two empty datagrams apart, so it keeps 8 random bytes.
			n = rng.IntN(18)
			if f.src.Is6() {
				n = max(n, 8)
			}
		default:
			n = 18 + rng.IntN(1200)
		}
		payload := make([]byte, n)
		fillRandom(rng, payload)
		seg := l4Segment(f, payload)
		sum.Datagrams++
		switch {
		case f.src.Is6():
			sends = append(sends, send{ta: t, ip: ipv6Packet(f.src, f.dst, f.proto, f.flowLabel, seg), flow: f, frag: -1, clash: -1, ipID: -1})
		case fragmented:
			frags := fragment(f.src, f.dst, f.proto, f.ipID, seg, cfg.MTU)
			for i, ip := range frags {
				// back to back at 1 Gbit/s: 12 µs per full frame
				sends = append(sends, send{ta: t + int64(i)*12_000, ip: ip, flow: f, frag: i, clash: -1, ipID: int(f.ipID)})
			}
			sum.Fragmented++
			f.ipID++
		default:
			ip := ipv4Packet(f.src, f.dst, f.proto, f.ipID, 0, false, seg)
			sends = append(sends, send{ta: t, ip: ip, flow: f, frag: -1, clash: -1, ipID: int(f.ipID)})
			f.ipID++
		}
	}
	sends = addClashes(rng, sends, cfg)
	slices.SortStableFunc(sends, func(a, b send) int { return cmp.Compare(a.ta, b.ta) })

	res := &Result{Truth: make([]TruthRow, len(sends))}
	res.A = make([]Frame, 0, len(sends))
	res.B = make([]Frame, 0, len(sends))
	for i := range sends {
		s := &sends[i]
		et := uint16(etherTypeIPv4)
		if s.flow.src.Is6() {
			et = etherTypeIPv6
			sum.IPv6++
		}
		res.A = append(res.A, Frame{TS: s.ta, Data: ethFrame(macRouterA, macHostA, et, 0, false, s.ip)})
		row := TruthRow{
			Seq: i, Src: s.flow.src, Dst: s.flow.dst, Proto: s.flow.proto,
			SrcPort: s.flow.sport, DstPort: s.flow.dport, Frag: s.frag, TA: s.ta,
			Clash: s.clash, IPLen: len(s.ip), IPID: s.ipID,
		}
		if s.frag >= 0 {
			sum.Fragments++
		}
		// Draw every random number whatever the outcome, so that one
		// impairment's probability does not shift the others' draws.
		lost := rng.Float64() < cfg.Loss
		delay := cfg.Delay.draw(rng, cfg.MaxDelay)
		dup := rng.Float64() < cfg.Dup
		dupGap := 1_000 + rng.Int64N(499_000)
		if lost {
			row.Lost = true
			sum.Lost++
		} else {
			row.TB, row.Delay = s.ta+delay, delay
			fb := ethFrame(macHostB, macRouterB, et, cfg.VLANB, true, routed(s.ip))
			res.B = append(res.B, Frame{TS: row.TB, Data: fb})
			if dup {
				row.DupTB = row.TB + dupGap
				res.B = append(res.B, Frame{TS: row.DupTB, Data: fb})
				sum.Duplicated++
			}
		}
		res.Truth[i] = row
	}
	sum.Packets = len(res.Truth)
	sum.Reordered = markReordered(res.Truth)
	for i := range res.Truth {
		if res.Truth[i].Clash >= 0 {
			sum.ClashPairs = max(sum.ClashPairs, res.Truth[i].Clash+1)
		}
	}

	end := cfg.Start.UnixNano()
	if len(sends) > 0 {
		end = sends[len(sends)-1].ta
	}
	nbg := int(cfg.Background * float64(sum.Datagrams))
	res.A = append(res.A, background(rng, nbg, cfg.Start.UnixNano(), end, macHostA, macRouterA, 0, false)...)
	res.B = append(res.B, background(rng, nbg, cfg.Start.UnixNano(), end+cfg.MaxDelay.Nanoseconds(), macRouterB, macHostB, cfg.VLANB, true)...)
	sum.BackgroundA, sum.BackgroundB = nbg, nbg
	byTS := func(a, b Frame) int { return cmp.Compare(a.TS, b.TS) }
	slices.SortStableFunc(res.A, byTS)
	slices.SortStableFunc(res.B, byTS)
	sum.FramesA, sum.FramesB = len(res.A), len(res.B)
	res.Summary = sum
	return res, nil
}

// makeFlows returns the measured IPv4 and IPv6 flows. Each has its own
// (src, dst, dport), the granularity of demo.xml's one-way class.
func makeFlows(rng *rand.Rand) (v4, v6 []*flow) {
	ports := []uint16{5000, 5001, 5004, 5100, 5500, 5999}
	for i, dport := range ports {
		f := &flow{
			src:   netip.AddrFrom4([4]byte{10, 1, 0, byte(10 + i)}),
			dst:   netip.AddrFrom4([4]byte{10, 2, 0, byte(20 + i%3)}),
			proto: protoUDP, sport: uint16(32768 + rng.IntN(28000)), dport: dport,
			ipID: uint16(rng.Uint32()), tcpSeq: rng.Uint32(), tcpAck: rng.Uint32(),
		}
		if i >= 4 {
			f.proto = protoTCP
		}
		v4 = append(v4, f)
	}
	for i, dport := range []uint16{5002, 5003} {
		v6 = append(v6, &flow{
			src:   netip.MustParseAddr(fmt.Sprintf("fd00:1::%x", 0x10+i)),
			dst:   netip.MustParseAddr("fd00:2::20"),
			proto: protoUDP, sport: uint16(32768 + rng.IntN(28000)), dport: dport,
			flowLabel: rng.Uint32() & 0xfffff,
		})
	}
	return v4, v6
}

// addClashes copies cfg.Clashes unfragmented IPv4 UDP packets ClashGap later.
// Originals are chosen so that their copy still falls within the traffic.
func addClashes(rng *rand.Rand, sends []send, cfg Config) []send {
	if cfg.Clashes == 0 || len(sends) == 0 {
		return sends
	}
	last := sends[len(sends)-1].ta
	gap := cfg.ClashGap.Nanoseconds()
	var cand []int
	for i, s := range sends {
		if s.frag < 0 && s.flow.proto == protoUDP && s.flow.src.Is4() && s.ta+gap <= last {
			cand = append(cand, i)
		}
	}
	rng.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
	cand = cand[:min(cfg.Clashes, len(cand))]
	slices.Sort(cand)
	for g, i := range cand {
		sends[i].clash = g
		c := sends[i]
		c.ta += gap
		sends = append(sends, c)
	}
	return sends
}

// markReordered sets Reordered per RFC 4737 within each flow: a packet is
// reordered when a packet of its flow with a higher seq arrived at B before
// it. It returns the number of reordered packets.
func markReordered(rows []TruthRow) int {
	type key struct {
		src, dst     netip.Addr
		proto        uint8
		sport, dport uint16
	}
	var idx []int
	for i := range rows {
		if !rows[i].Lost {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(rows[a].TB, rows[b].TB) })
	maxSeq := make(map[key]int)
	n := 0
	for _, i := range idx {
		r := &rows[i]
		k := key{r.Src, r.Dst, r.Proto, r.SrcPort, r.DstPort}
		if m, ok := maxSeq[k]; ok && m > r.Seq {
			r.Reordered = true
			n++
			continue
		}
		maxSeq[k] = r.Seq
	}
	return n
}

// background draws n frames nobody measures, at uniform times in [from, to].
func background(rng *rand.Rand, n int, from, to int64, srcMAC, dstMAC [6]byte, vlan uint16, pad bool) []Frame {
	out := make([]Frame, 0, n)
	for range n {
		ts := from + rng.Int64N(max(to-from, 1))
		if rng.IntN(2) == 0 {
			sender := netip.AddrFrom4([4]byte{10, 3, 0, byte(1 + rng.IntN(250))})
			target := netip.AddrFrom4([4]byte{10, 3, 0, byte(1 + rng.IntN(250))})
			arp := arpRequest(srcMAC, sender, target)
			bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
			out = append(out, Frame{TS: ts, Data: ethFrame(bcast, srcMAC, etherTypeARP, vlan, pad, arp)})
			continue
		}
		f := &flow{
			src:   netip.AddrFrom4([4]byte{10, 3, byte(rng.IntN(256)), byte(1 + rng.IntN(250))}),
			dst:   netip.AddrFrom4([4]byte{10, 2, 0, byte(20 + rng.IntN(3))}),
			proto: protoUDP, sport: uint16(1024 + rng.IntN(60000)), dport: uint16(9000 + rng.IntN(1000)),
		}
		payload := make([]byte, rng.IntN(400))
		fillRandom(rng, payload)
		ip := ipv4Packet(f.src, f.dst, protoUDP, uint16(rng.Uint32()), 0, false, l4Segment(f, payload))
		out = append(out, Frame{TS: ts, Data: ethFrame(dstMAC, srcMAC, etherTypeIPv4, vlan, pad, ip)})
	}
	return out
}

// fillRandom fills b with random bytes, eight at a time.
func fillRandom(rng *rand.Rand, b []byte) {
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, rng.Uint64())
		b = b[8:]
	}
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// WriteFiles writes hop-a.pcap, hop-b.pcap (nanosecond pcap, Ethernet),
// truth.tsv and summary.tsv into dir, creating it if needed, and returns the
// paths written.
func (r *Result) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("gen: write: %w", err)
	}
	var written []string
	for _, f := range []struct {
		name  string
		write func(*os.File) error
	}{
		{FileHopA, func(w *os.File) error { return writePcap(w, r.A) }},
		{FileHopB, func(w *os.File) error { return writePcap(w, r.B) }},
		{FileTruth, func(w *os.File) error { return WriteTruth(w, r.Truth) }},
		{FileSummary, func(w *os.File) error { _, err := w.Write(r.Summary.TSV()); return err }},
	} {
		p := filepath.Join(dir, f.name)
		if err := writeFile(p, f.write); err != nil {
			return written, fmt.Errorf("gen: write %s: %w", p, err)
		}
		written = append(written, p)
	}
	return written, nil
}

func writeFile(path string, write func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writePcap writes frames as a little-endian nanosecond pcap (snap length
// 65535, Ethernet), by hand rather than with pcapgo: pcapgo imports
// gopacket/layers, whose initialisation costs every tmon process that links
// this package (tmon summary reads truth files with it) ≈ 30 ms of CPU.
func writePcap(f *os.File, frames []Frame) error {
	var buf bytes.Buffer
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xA1B23C4D) // nanosecond stamps
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535)
	binary.LittleEndian.PutUint32(h[20:], 1) // LINKTYPE_ETHERNET
	buf.Write(h[:])
	for _, fr := range frames {
		sec, ns := fr.TS/1e9, fr.TS%1e9
		if ns < 0 {
			sec, ns = sec-1, ns+1e9
		}
		var r [16]byte
		binary.LittleEndian.PutUint32(r[0:], uint32(sec))
		binary.LittleEndian.PutUint32(r[4:], uint32(ns))
		binary.LittleEndian.PutUint32(r[8:], uint32(len(fr.Data)))
		binary.LittleEndian.PutUint32(r[12:], uint32(len(fr.Data)))
		buf.Write(r[:])
		buf.Write(fr.Data)
		if buf.Len() > 1<<20 {
			if _, err := buf.WriteTo(f); err != nil {
				return err
			}
		}
	}
	_, err := buf.WriteTo(f)
	return err
}

// TSV returns the summary as "name<TAB>value" lines.
func (s Summary) TSV() []byte {
	var b bytes.Buffer
	for _, kv := range []struct {
		k string
		v int
	}{
		{"packets", s.Packets}, {"datagrams", s.Datagrams}, {"lost", s.Lost},
		{"duplicated", s.Duplicated}, {"reordered", s.Reordered}, {"clash_pairs", s.ClashPairs},
		{"fragments", s.Fragments}, {"fragmented_datagrams", s.Fragmented}, {"ipv6_packets", s.IPv6},
		{"background_a", s.BackgroundA}, {"background_b", s.BackgroundB},
		{"frames_a", s.FramesA}, {"frames_b", s.FramesB},
	} {
		fmt.Fprintf(&b, "%s\t%d\n", kv.k, kv.v)
	}
	return b.Bytes()
}

// Generate builds the traffic of cfg and writes it into dir (see WriteFiles).
func Generate(cfg Config, dir string) (Summary, []string, error) {
	res, err := Build(cfg)
	if err != nil {
		return Summary{}, nil, err
	}
	files, err := res.WriteFiles(dir)
	return res.Summary, files, err
}
