package sieve

import (
	"encoding/binary"
	"testing"
)

// TestTCPFields: the window and payload length the connection analysis
// reads, over IPv4 with options and IPv6 with an extension header, and a
// TCP header with options (data offset 8 words): payload = IP length − IP
// headers − TCP header, counted by hand from the bytes built here.
func TestTCPFields(t *testing.T) {
	payload := make([]byte, 333)
	h := tcpHdr(21, 40000, 0x18, nil)
	binary.BigEndian.PutUint32(h[4:], 0xfffffff0) // sequence near the wrap
	binary.BigEndian.PutUint16(h[14:], 0)         // zero window
	opts := cat(h[:12], []byte{8 << 4, 0x18}, h[14:20], make([]byte, 12), payload)
	win := tcpHdr(21, 40000, 0x10, payload)
	binary.BigEndian.PutUint16(win[14:], 65535)
	for _, tc := range []struct {
		name     string
		pkt      []byte
		win, pay uint16
		seq      uint32
	}{
		{"ipv4 tcp options zero window", ip4(6, "10.0.0.1", "10.0.0.2", 0, []byte{1, 1, 1, 0}, opts), 0, 333, 0xfffffff0},
		{"ipv6 dstopts", ip6(60, "2001:db8::a", "2001:db8::b", cat(ext6(6, 1), win)), 65535, 333, 0},
	} {
		var rec Record
		if r := Dissect(tc.pkt, LinkRaw, &rec); r != Wanted {
			t.Fatalf("%s: %v", tc.name, r)
		}
		if rec.TCPWindow != tc.win || rec.TCPPayload != tc.pay || uint32(rec.Txn>>32) != tc.seq {
			t.Errorf("%s: window %d payload %d seq %#x, want %d %d %#x", tc.name, rec.TCPWindow, rec.TCPPayload, uint32(rec.Txn>>32), tc.win, tc.pay, tc.seq)
		}
	}
}

// TestTCPTimestamps: the timestamps option (kind 8, length 10) is found
// after other options (NOP, MSS, SACK permitted, window scale, as Linux
// sends them in a SYN), not read past the end of the options or of the
// captured bytes, and an option list that does not parse leaves 0.
func TestTCPTimestamps(t *testing.T) {
	withOpts := func(opts []byte, payload []byte) []byte {
		h := tcpHdr(40000, 80, 0x10, nil)
		h[12] = byte((20+len(opts))/4) << 4
		return cat(h[:20], opts, payload)
	}
	ts := []byte{8, 10, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}
	linuxSYN := cat([]byte{2, 4, 0x05, 0xb4, 4, 2}, ts, []byte{1, 3, 3, 7}) // MSS, SACK ok, TS, NOP, WS: 20 bytes
	for _, tc := range []struct {
		name       string
		pkt        []byte
		snap       int // captured bytes, 0: all
		val, ecr   uint32
		wantReason Reason
	}{
		{"linux syn", withOpts(linuxSYN, nil), 0, 0x12345678, 0x9abcdef0, Wanted},
		{"nop nop ts", withOpts(cat([]byte{1, 1}, ts), []byte("data")), 0, 0x12345678, 0x9abcdef0, Wanted},
		{"none", withOpts(nil, []byte("data")), 0, 0, 0, Wanted},
		{"end before ts", withOpts(cat([]byte{0, 1}, ts), nil), 0, 0, 0, Wanted},
		{"bad length", withOpts(cat([]byte{3, 1, 1, 1}, ts), nil), 0, 0, 0, Wanted},
		{"length past options", withOpts([]byte{1, 1, 8, 10}, nil), 0, 0, 0, Wanted},
		{"ts payload not option", withOpts([]byte{1, 1, 1, 1}, ts), 0, 0, 0, Wanted},
		{"snapped inside ts", withOpts(cat([]byte{1, 1}, ts), nil), 20 + 20 + 2 + 6, 0, 0, Wanted},
	} {
		pkt := ip4(6, "10.0.0.1", "10.0.0.2", 0, nil, tc.pkt)
		if tc.snap > 0 {
			pkt = pkt[:tc.snap]
		}
		var rec Record
		if r := Dissect(pkt, LinkRaw, &rec); r != tc.wantReason {
			t.Fatalf("%s: %v", tc.name, r)
		}
		if rec.TSVal != tc.val || rec.TSEcr != tc.ecr {
			t.Errorf("%s: TSval %#x TSecr %#x, want %#x %#x", tc.name, rec.TSVal, rec.TSEcr, tc.val, tc.ecr)
		}
	}
}
