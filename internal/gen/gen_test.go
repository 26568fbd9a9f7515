package gen

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func build(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func smallConfig() Config {
	c := DefaultConfig()
	c.Count = 4000
	c.Frag = 0.05
	c.Dup = 0.01
	return c
}

func TestDeterministic(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	var sums [][]byte
	for i, seed := range []uint64{7, 7, 8} {
		cfg.Seed = seed
		out := filepath.Join(dir, string(rune('a'+i)))
		if _, _, err := Generate(cfg, out); err != nil {
			t.Fatal(err)
		}
		var all []byte
		for _, n := range []string{FileHopA, FileHopB, FileTruth, FileSummary} {
			b, err := os.ReadFile(filepath.Join(out, n))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		sums = append(sums, all)
	}
	if !bytes.Equal(sums[0], sums[1]) {
		t.Error("same seed, different output")
	}
	if bytes.Equal(sums[0], sums[2]) {
		t.Error("different seeds, same output")
	}
}

// readPcap reads a generated file back with pcapgo.
func readPcap(t *testing.T, path string) []Frame {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v", r.LinkType())
	}
	var out []Frame
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Frame{TS: ci.Timestamp.UnixNano(), Data: data})
	}
}

// ipOf returns the IP packet of an Ethernet frame (padding removed) and the
// VLAN ID (0 when untagged).
func ipOf(t *testing.T, fr []byte) (ip []byte, vlan uint16) {
	t.Helper()
	et := binary.BigEndian.Uint16(fr[12:])
	p := fr[14:]
	if et == etherTypeVLAN {
		vlan = binary.BigEndian.Uint16(fr[14:]) & 0x0fff
		et = binary.BigEndian.Uint16(fr[16:])
		p = fr[18:]
	}
	switch et {
	case etherTypeIPv4:
		return p[:binary.BigEndian.Uint16(p[2:])], vlan
	case etherTypeIPv6:
		return p[:40+int(binary.BigEndian.Uint16(p[4:]))], vlan
	}
	return nil, vlan
}

// isBackground tells the unmeasured frames: ARP, or IPv4 from 10.3/16.
func isBackground(fr []byte) bool {
	et := binary.BigEndian.Uint16(fr[12:])
	off := 14
	if et == etherTypeVLAN {
		et = binary.BigEndian.Uint16(fr[16:])
		off = 18
	}
	return et == etherTypeARP || et == etherTypeIPv4 && fr[off+12] == 10 && fr[off+13] == 3
}

// checkGopacket decodes a frame with gopacket and re-encodes its layers with
// computed checksums and lengths: the result must be the same bytes, which
// checks our hand-made headers against an independent encoder.
func checkGopacket(t *testing.T, fr []byte) {
	t.Helper()
	pkt := gopacket.NewPacket(fr, layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	var ls []gopacket.SerializableLayer
	var netL gopacket.NetworkLayer
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			if l.Flags&layers.IPv4MoreFragments != 0 || l.FragOffset != 0 {
				// A fragment: gopacket leaves the rest as payload.
				netL = nil
			} else {
				netL = l
			}
		case *layers.IPv6:
			netL = l
		case *layers.UDP:
			if netL != nil {
				l.SetNetworkLayerForChecksum(netL)
			}
		case *layers.TCP:
			if netL != nil {
				l.SetNetworkLayerForChecksum(netL)
			}
		}
		if s, ok := l.(gopacket.SerializableLayer); ok {
			ls = append(ls, s)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatalf("gopacket serialize: %v", err)
	}
	got := buf.Bytes()
	if len(got) > len(fr) && len(got) == 60 {
		got = got[:len(fr)] // gopacket pads short Ethernet frames itself
	}
	want := fr
	if len(got) < len(want) {
		// padding is not a layer of its own
		want = fr[:len(got)]
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("gopacket re-encodes differently:\n got %x\nwant %x", got, want)
	}
}

// TestCapturesMatchTruth writes a capture pair and checks every packet of
// the truth at both hops, byte by byte.
func TestCapturesMatchTruth(t *testing.T) {
	for _, vlan := range []uint16{0, 100} {
		cfg := smallConfig()
		cfg.VLANB = vlan
		dir := t.TempDir()
		sum, _, err := Generate(cfg, dir)
		if err != nil {
			t.Fatal(err)
		}
		truth, err := ReadTruthFile(filepath.Join(dir, FileTruth))
		if err != nil {
			t.Fatal(err)
		}
		a, b := readPcap(t, filepath.Join(dir, FileHopA)), readPcap(t, filepath.Join(dir, FileHopB))
		for _, hop := range [][]Frame{a, b} {
			if !slices.IsSortedFunc(hop, func(x, y Frame) int { return int(x.TS - y.TS) }) {
				t.Fatal("capture not in timestamp order")
			}
		}
		if len(a) != len(truth)+sum.BackgroundA || len(b) != len(truth)-sum.Lost+sum.Duplicated+sum.BackgroundB {
			t.Fatalf("%d/%d frames for %d rows, summary %+v", len(a), len(b), len(truth), sum)
		}
		// Measured frames at A, in order, are the truth rows.
		var am []Frame
		for _, f := range a {
			if !isBackground(f.Data) {
				am = append(am, f)
			}
		}
		bByTS := make(map[int64][][]byte)
		for _, f := range b {
			if !isBackground(f.Data) {
				bByTS[f.TS] = append(bByTS[f.TS], f.Data)
			}
		}
		if len(am) != len(truth) {
			t.Fatalf("%d measured frames at A, %d rows", len(am), len(truth))
		}
		for i, r := range truth {
			fa := am[i]
			if fa.TS != r.TA || r.Seq != i {
				t.Fatalf("row %d: A frame at %d, truth %d", i, fa.TS, r.TA)
			}
			checkGopacket(t, fa.Data)
			ipA, _ := ipOf(t, fa.Data)
			if len(ipA) != r.IPLen || len(fa.Data) != 14+len(ipA) {
				t.Fatalf("row %d: ip_len %d, frame has %d", i, r.IPLen, len(ipA))
			}
			if !bytes.Equal(fa.Data[0:12], append(macRouterA[:], macHostA[:]...)) {
				t.Fatalf("row %d: MACs at A %x", i, fa.Data[:12])
			}
			if r.Lost {
				if r.TB != 0 || r.Delay != 0 || r.DupTB != 0 {
					t.Fatalf("row %d lost but has times: %+v", i, r)
				}
				continue
			}
			if r.Delay != r.TB-r.TA || r.Delay < int64(18*time.Millisecond) || r.Delay >= int64(22*time.Millisecond) {
				t.Fatalf("row %d: delay %d, t_b − t_a = %d", i, r.Delay, r.TB-r.TA)
			}
			times := []int64{r.TB}
			if r.DupTB != 0 {
				if g := r.DupTB - r.TB; g <= 0 || g >= 500_000 {
					t.Fatalf("row %d: duplicate %d ns after", i, g)
				}
				times = append(times, r.DupTB)
			}
			for _, tb := range times {
				fb := findB(t, bByTS[tb], ipA)
				if fb == nil {
					t.Fatalf("row %d: no frame at B at %d matching A", i, tb)
				}
				checkRouted(t, i, fa.Data, fb, vlan)
			}
		}
	}
}

// findB returns the frame among cands whose IP packet is the routed ipA.
func findB(t *testing.T, cands [][]byte, ipA []byte) []byte {
	for _, fb := range cands {
		ipB, _ := ipOf(t, fb)
		if len(ipB) != len(ipA) {
			continue
		}
		a, b := slices.Clone(ipA), slices.Clone(ipB)
		maskRouterFields(a)
		maskRouterFields(b)
		if bytes.Equal(a, b) {
			return fb
		}
	}
	return nil
}

// maskRouterFields zeroes what a router changes: TTL/hop limit, checksum.
func maskRouterFields(ip []byte) {
	if ip[0]>>4 == 4 {
		ip[8], ip[10], ip[11] = 0, 0, 0
	} else {
		ip[7] = 0
	}
}

// checkRouted checks the B frame is the A frame forwarded: TTL − 1, a valid
// header checksum, router MACs, the VLAN tag when asked, zero padding.
func checkRouted(t *testing.T, row int, fa, fb []byte, vlan uint16) {
	t.Helper()
	ipA, _ := ipOf(t, fa)
	ipB, gotVLAN := ipOf(t, fb)
	if gotVLAN != vlan {
		t.Fatalf("row %d: VLAN %d at B, want %d", row, gotVLAN, vlan)
	}
	if !bytes.Equal(fb[0:12], append(macHostB[:], macRouterB[:]...)) {
		t.Fatalf("row %d: MACs at B %x", row, fb[:12])
	}
	if ipA[0]>>4 == 4 {
		if ipB[8] != ipA[8]-1 || ipA[8] != 64 {
			t.Fatalf("row %d: TTL %d → %d", row, ipA[8], ipB[8])
		}
		if checksum(0, ipB[:20]) != 0 || checksum(0, ipA[:20]) != 0 {
			t.Fatalf("row %d: bad IPv4 header checksum", row)
		}
	} else if ipB[7] != ipA[7]-1 {
		t.Fatalf("row %d: hop limit %d → %d", row, ipA[7], ipB[7])
	}
	hl := 14
	if vlan != 0 {
		hl = 18
	}
	pad := fb[hl+len(ipB):]
	if len(fb) < 60 || len(pad) > 0 && len(fb) != 60 || bytes.ContainsFunc(pad, func(r rune) bool { return r != 0 }) {
		t.Fatalf("row %d: frame of %d bytes, padding %x", row, len(fb), pad)
	}
	if vlan == 0 {
		checkGopacket(t, fb)
	}
}

func TestLossRate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Count = 60000
	cfg.Loss = 0.05
	cfg.Frag = 0
	cfg.Clashes = 0
	res := build(t, cfg)
	n := float64(res.Summary.Packets)
	sd := math.Sqrt(n * cfg.Loss * (1 - cfg.Loss))
	if got := float64(res.Summary.Lost); math.Abs(got-n*cfg.Loss) > 5*sd {
		t.Errorf("%v lost of %v, want %v ± %v", got, n, n*cfg.Loss, 5*sd)
	}
	if res.Summary.Reordered == 0 {
		t.Error("no reordering with 4 ms of jitter and 500 µs spacing")
	}
}

// TestFragmentsReassemble puts the fragments of each datagram back together:
// they must make one UDP datagram with a valid checksum.
func TestFragmentsReassemble(t *testing.T) {
	cfg := smallConfig()
	cfg.Frag = 0.2
	res := build(t, cfg)
	type key struct {
		src, dst string
		id       int
	}
	groups := make(map[key][]int)
	for i, r := range res.Truth {
		if r.Frag >= 0 {
			k := key{r.Src.String(), r.Dst.String(), r.IPID}
			groups[k] = append(groups[k], i)
		}
	}
	if len(groups) != res.Summary.Fragmented || len(groups) < 50 {
		t.Fatalf("%d fragment groups, summary %+v", len(groups), res.Summary)
	}
	for k, rows := range groups {
		if len(rows) < 2 || len(rows) > 3 {
			t.Fatalf("%v: %d fragments", k, len(rows))
		}
		var payload []byte
		var hdr []byte
		for j, i := range rows {
			r := res.Truth[i]
			ip, _ := ipOf(t, res.A[frameIndex(t, res.A, r.TA)].Data)
			if r.Frag != j || len(ip) > cfg.MTU {
				t.Fatalf("%v: fragment %d of %d bytes has index %d", k, j, len(ip), r.Frag)
			}
			off := int(binary.BigEndian.Uint16(ip[6:])&0x1fff) * 8
			more := ip[6]&0x20 != 0
			if off != len(payload) || more != (j < len(rows)-1) {
				t.Fatalf("%v: fragment %d at offset %d (have %d), MF %v", k, j, off, len(payload), more)
			}
			if j == 0 {
				hdr = slices.Clone(ip[:20])
			}
			payload = append(payload, ip[20:]...)
		}
		// The reassembled datagram, decoded and re-encoded by gopacket.
		ip := slices.Clone(hdr)
		ip[6], ip[7] = 0, 0
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(payload)))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], checksum(0, ip))
		ip = append(ip, payload...)
		if int(binary.BigEndian.Uint16(payload[4:])) != len(payload) {
			t.Fatalf("%v: UDP length %d, reassembled %d", k, binary.BigEndian.Uint16(payload[4:]), len(payload))
		}
		checkGopacket(t, ethFrame(macRouterA, macHostA, etherTypeIPv4, 0, false, ip))
	}
}

func frameIndex(t *testing.T, frames []Frame, ts int64) int {
	for i, f := range frames {
		if f.TS == ts && !isBackground(f.Data) {
			return i
		}
	}
	t.Fatalf("no frame at %d", ts)
	return -1
}

func TestClashPairs(t *testing.T) {
	cfg := smallConfig()
	cfg.Clashes = 7
	res := build(t, cfg)
	pairs := make(map[int][]TruthRow)
	for _, r := range res.Truth {
		if r.Clash >= 0 {
			pairs[r.Clash] = append(pairs[r.Clash], r)
		}
	}
	if len(pairs) != 7 || res.Summary.ClashPairs != 7 {
		t.Fatalf("%d clash pairs, summary %d", len(pairs), res.Summary.ClashPairs)
	}
	seen := make(map[string]int)
	for _, r := range res.Truth {
		ip, _ := ipOf(t, res.A[frameIndex(t, res.A, r.TA)].Data)
		seen[string(ip)]++
	}
	for g, p := range pairs {
		if len(p) != 2 || p[1].TA-p[0].TA != cfg.ClashGap.Nanoseconds() {
			t.Fatalf("group %d: %+v", g, p)
		}
		ip0, _ := ipOf(t, res.A[frameIndex(t, res.A, p[0].TA)].Data)
		ip1, _ := ipOf(t, res.A[frameIndex(t, res.A, p[1].TA)].Data)
		if !bytes.Equal(ip0, ip1) || p[0].IPID != p[1].IPID || p[0].Proto != 17 {
			t.Fatalf("group %d: not byte-identical at the IP layer", g)
		}
	}
	// No other packet is byte-identical to another.
	dups := 0
	for _, n := range seen {
		if n > 1 {
			dups += n - 1
		}
	}
	if dups != 7 {
		t.Errorf("%d identical IP packets at A, want only the 7 clash copies", dups)
	}
}

func TestDelayDistributions(t *testing.T) {
	for _, spec := range []string{"uniform:18ms:22ms", "normal:20ms:2ms", "normal:1ms:5ms", "pareto:10ms:1.5", "const:20ms"} {
		d, err := ParseDist(spec)
		if err != nil {
			t.Fatal(err)
		}
		if d.String() != spec {
			t.Errorf("%q prints as %q", spec, d.String())
		}
		cfg := DefaultConfig()
		if err := d.check(cfg.MaxDelay); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 1))
		var sum, lo, hi float64
		lo = math.Inf(1)
		const n = 20000
		for range n {
			x := float64(d.draw(rng, cfg.MaxDelay))
			sum += x
			lo, hi = min(lo, x), max(hi, x)
		}
		mean := sum / n
		if lo < 0 || hi > float64(cfg.MaxDelay) {
			t.Errorf("%s: delays in [%v, %v]", spec, lo, hi)
		}
		switch d.Kind {
		case Uniform, Normal:
			want := float64(20 * time.Millisecond)
			if d.Kind == Uniform && (lo < 18e6 || hi >= 22e6) || spec == "normal:20ms:2ms" && math.Abs(mean-want) > 0.1e6 {
				t.Errorf("%s: mean %v range [%v, %v]", spec, mean, lo, hi)
			}
		case Pareto:
			if lo < 10e6 || hi < 50e6 {
				t.Errorf("%s: range [%v, %v], want a heavy tail above 10ms", spec, lo, hi)
			}
		case Const:
			if lo != 20e6 || hi != 20e6 {
				t.Errorf("%s: range [%v, %v]", spec, lo, hi)
			}
		}
	}
	for _, bad := range []string{"", "uniform", "uniform:1ms", "normal:x:1ms", "gamma:1ms:2ms", "pareto:1ms:x"} {
		if _, err := ParseDist(bad); err == nil {
			t.Errorf("ParseDist(%q): no error", bad)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"loss>1":       func(c *Config) { c.Loss = 1.5 },
		"negative dup": func(c *Config) { c.Dup = -0.1 },
		"NaN frag":     func(c *Config) { c.Frag = math.NaN() },
		"rate":         func(c *Config) { c.Rate = -5 },
		"mtu":          func(c *Config) { c.MTU = 100 },
		"vlan":         func(c *Config) { c.VLANB = 4095 },
		"gap":          func(c *Config) { c.ClashGap = 100 * time.Millisecond },
		"delay>max":    func(c *Config) { c.Delay = Dist{Kind: Uniform, A: 0, B: time.Second} },
		"bad kind":     func(c *Config) { c.Delay = Dist{Kind: "gamma", A: 1} },
		"count":        func(c *Config) { c.Count = -1 },
	} {
		c := DefaultConfig()
		mod(&c)
		if _, err := Build(c); err == nil || !strings.HasPrefix(err.Error(), "gen: config:") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A zero Config is valid: every default is filled in.
	var c Config
	c.Count = 10
	if res := build(t, c); res.Summary.Packets != 10 || res.Truth[0].TA != DefaultStart.UnixNano() {
		t.Errorf("zero config: %+v", res.Summary)
	}
}

func TestTruthRoundTrip(t *testing.T) {
	res := build(t, smallConfig())
	var b bytes.Buffer
	if err := WriteTruth(&b, res.Truth); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTruth(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, res.Truth) {
		t.Error("truth does not survive a round trip")
	}
	for _, bad := range []string{
		"",
		"seq\tnope\n",
		TruthHeader + "\n1\t10.1.0.1\n",
		TruthHeader + "\n0\t10.1.0.1\t10.2.0.1\t17\t1\t2\t-\t5\t\t7\t\t-\t30\t1\t0\n",
		TruthHeader + "\n0\tx\t10.2.0.1\t17\t1\t2\t-\t5\t6\t1\t\t-\t30\t1\t0\n",
	} {
		if _, err := ReadTruth(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadTruth(%q): no error", bad)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Count = 20000
	b.ReportAllocs()
	for range b.N {
		if _, err := Build(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
