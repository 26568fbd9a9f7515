package sieve

import (
	"path/filepath"
	"testing"

	"github.com/tmon-project/tmon/conf"
)

// Zeek's fragment captures through the sieve (every IP packet wanted), with
// the outcome of each worked out by hand from `tcpdump -nvx`:
//
//   - fragmented-1: id 242: [0,18) MF — 18 bytes, not a multiple of 8,
//     which only a last fragment may be (RFC 791): invalid; [48,164)
//     last; then [0,304) MF, which runs past the end: the set is dropped
//     as overlapping, no datagram.
//   - fragmented-2: the same two, then [0,18) MF again: invalid too;
//     [48,164) alone stays incomplete to the end.
//   - fragmented-3: five fragments of id 19397 at 0, 1480 … 5920, all with
//     more-fragments set (the end never comes): incomplete.
//   - fragmented-4: an unfragmented SYN, then id 0: [0,24) MF, [48,72) MF,
//     [72,89) last, [24,72) MF overlapping [48,72): dropped as
//     overlapping; then the unfragmented packet again.
//   - fragmented-syn: id 1: [0,24) MF, [24,40) last: a 60-byte datagram,
//     a TCP SYN 192.168.1.100:12345 → 10.0.0.5:80 whose 40-byte header
//     (MSS, SACK permitted, timestamps, window scale) spans both fragments;
//     first fragment at .066973, last at .067038: span 65 µs.
func TestReassembleZeekCorpus(t *testing.T) {
	dir := corpusDir(t, filepath.Join("zeek", "ipv4"))
	cfg := &conf.Config{Classes: []conf.Class{{Name: "all", OneWay: &conf.OneWay{}}}}
	for _, tc := range []struct {
		file                                               string
		records                                            int // records out of the sieve
		held, datagrams, overlap, dup, incomplete, invalid int
	}{
		{"fragmented-1.pcap", 0, 3, 0, 1, 0, 0, 1},
		{"fragmented-2.pcap", 0, 3, 0, 0, 0, 1, 2},
		{"fragmented-3.pcap", 0, 5, 0, 0, 0, 1, 0},
		{"fragmented-4.pcap", 2, 4, 0, 1, 0, 0, 0},
		{"fragmented-syn.pcap", 1, 1, 1, 0, 0, 0, 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			s, err := Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			frames, err := readCapture(filepath.Join(dir, tc.file), 1000)
			if err != nil && len(frames) == 0 {
				t.Fatal(err)
			}
			var recs []Record
			for _, f := range frames {
				var rec Record
				if ok, _ := s.Packet(f.data, f.ts, 0, f.link, &rec); ok {
					recs = append(recs, rec)
				}
			}
			s.CloseReassembly()
			st, rs := s.Stats(), s.Reassembly()
			if len(recs) != tc.records || int(st.Held) != tc.held || int(rs.Datagrams) != tc.datagrams ||
				int(rs.Overlap) != tc.overlap || int(rs.Duplicate) != tc.dup || int(rs.Incomplete) != tc.incomplete || int(rs.Invalid) != tc.invalid {
				t.Errorf("records %d held %d; reassembly %+v; want %d, %d, datagrams %d overlap %d duplicate %d incomplete %d invalid %d",
					len(recs), st.Held, rs, tc.records, tc.held, tc.datagrams, tc.overlap, tc.dup, tc.incomplete, tc.invalid)
			}
			if !sumOK(st) || rs.HeldBytes != 0 || rs.Held != 0 {
				t.Errorf("stats %+v, reassembly %+v: do not add up or memory held", st, rs)
			}
			if tc.file != "fragmented-syn.pcap" || len(recs) != 1 {
				return
			}
			r := recs[0]
			if r.Flags&FlagReassembled == 0 || r.Flags&FlagFragment != 0 || r.Length != 60 || r.Frags != 2 || r.Span != 65_000 ||
				r.SrcPort != 12345 || r.DstPort != 80 || r.TCPFlags != 0x02 || r.Proto != 6 || r.TS != frames[1].ts || r.Sig == 0 {
				t.Errorf("datagram record %+v", r)
			}
		})
	}
}

// The signature of a reassembled datagram is that of the datagram sent
// whole: a path that fragments (or fragments differently) does not change
// it, so every probe computes the same one.
func TestReassembledSignature(t *testing.T) {
	cfg := &conf.Config{Classes: []conf.Class{{Name: "all", OneWay: &conf.OneWay{}}}}
	s, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 3000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	whole := ip4(17, "10.1.2.3", "10.2.0.9", 0, nil, udpHdr(4000, 5001, payload))
	setID(whole, 4242)
	var w Record
	if ok, why := s.Packet(whole, 1, 0, LinkRaw, &w); !ok {
		t.Fatalf("whole datagram: %v", why)
	}
	for _, per := range []int{1480, 1000, 512} {
		frags := fragment4(whole, per)
		// deliver out of order: last first; its time is the youngest
		// fragment's (the datagram is whole at the probe from then on)
		var got Record
		n := 0
		for i := len(frags) - 1; i >= 0; i-- {
			if ok, _ := s.Packet(frags[i], int64(100+i), 0, LinkRaw, &got); ok {
				n++
			}
		}
		if n != 1 || got.Sig != w.Sig || got.DstPort != 5001 || got.Length != w.Length || int(got.Frags) != len(frags) || got.TS != int64(100+len(frags)-1) {
			t.Errorf("fragments of %d: %d records, %+v; want one with the whole datagram's signature %08x", per, n, got, w.Sig)
		}
		s.CloseReassembly()
	}
}

func setID(ip []byte, id uint16) {
	ip[4], ip[5] = byte(id>>8), byte(id)
}

// fragment4 cuts an IPv4 packet (20-byte header) into fragments of at most
// per payload bytes (a multiple of 8), as a router would.
func fragment4(p []byte, per int) [][]byte {
	per &^= 7
	pay := p[20:]
	var out [][]byte
	for off := 0; off < len(pay); off += per {
		end := min(off+per, len(pay))
		f := append(append([]byte(nil), p[:20]...), pay[off:end]...)
		n := 20 + end - off
		f[2], f[3] = byte(n>>8), byte(n)
		fo := off / 8
		if end < len(pay) {
			fo |= 0x2000
		}
		f[6], f[7] = byte(fo>>8), byte(fo)
		out = append(out, f)
	}
	return out
}
