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
