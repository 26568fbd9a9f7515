package capture

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

// eth builds an Ethernet frame: dst, src, the VLAN tags (TPID, TCI pairs)
// and the EtherType, then payload.
func eth(etype uint16, tags []uint16, payload []byte) []byte {
	b := make([]byte, 12, 64+len(payload))
	for _, tpid := range tags {
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, 42) // VLAN id
	}
	b = binary.BigEndian.AppendUint16(b, etype)
	return append(b, payload...)
}

// ipv4UDP is an IPv4 header (IHL ihl words) with a UDP header and 8 bytes
// of payload.
func ipv4UDP(src, dst string, sport, dport uint16, ihl int, proto byte, frag uint16) []byte {
	h := make([]byte, ihl*4)
	h[0] = 0x40 | byte(ihl)
	binary.BigEndian.PutUint16(h[2:], uint16(ihl*4+16))
	binary.BigEndian.PutUint16(h[6:], frag)
	h[8], h[9] = 64, proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	u := make([]byte, 16)
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], 16)
	return append(h, u...)
}

func ipv6UDP(src, dst string, sport, dport uint16, next byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], 16)
	h[6], h[7] = next, 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	u := make([]byte, 16)
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	return append(h, u...)
}

func TestPreFilter(t *testing.T) {
	collectors := []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.10:47390"),
		netip.MustParseAddrPort("[2001:db8::10]:47390"),
		netip.MustParseAddrPort("[::ffff:198.51.100.7]:5000"), // mapped: an IPv4 collector
	}
	prog, err := PreFilter(collectors, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AssembleFilter(prog); err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	arp := make([]byte, 28)
	for _, tc := range []struct {
		name  string
		frame []byte
		keep  bool
	}{
		{"IPv4 UDP", eth(0x0800, nil, ipv4UDP("10.0.0.1", "10.0.0.2", 1000, 53, 5, 17, 0)), true},
		{"IPv4 TCP to the collector's port", eth(0x0800, nil, ipv4UDP("10.0.0.1", "192.0.2.10", 1000, 47390, 5, 6, 0)), true},
		{"own PDU to collector", eth(0x0800, nil, ipv4UDP("10.0.0.1", "192.0.2.10", 40000, 47390, 5, 17, 0)), false},
		{"ack from collector", eth(0x0800, nil, ipv4UDP("192.0.2.10", "10.0.0.1", 47390, 40000, 5, 17, 0)), false},
		{"own PDU, IP options", eth(0x0800, nil, ipv4UDP("10.0.0.1", "192.0.2.10", 40000, 47390, 7, 17, 0)), false},
		{"own PDU, VLAN", eth(0x0800, []uint16{0x8100}, ipv4UDP("10.0.0.1", "192.0.2.10", 40000, 47390, 5, 17, 0)), false},
		{"own PDU, QinQ", eth(0x0800, []uint16{0x88a8, 0x8100}, ipv4UDP("10.0.0.1", "192.0.2.10", 40000, 47390, 5, 17, 0)), false},
		{"own PDU to mapped collector", eth(0x0800, nil, ipv4UDP("10.0.0.1", "198.51.100.7", 40000, 5000, 5, 17, 0)), false},
		{"collector address, other port", eth(0x0800, nil, ipv4UDP("10.0.0.1", "192.0.2.10", 40000, 53, 5, 17, 0)), true},
		{"other address, collector port", eth(0x0800, nil, ipv4UDP("10.0.0.1", "192.0.2.11", 40000, 47390, 5, 17, 0)), true},
		{"later fragment to collector", eth(0x0800, nil, ipv4UDP("10.0.0.1", "192.0.2.10", 40000, 47390, 5, 17, 185)), true},
		{"IPv6 UDP", eth(0x86dd, nil, ipv6UDP("2001:db8::1", "2001:db8::2", 1000, 53, 17)), true},
		{"own PDU IPv6", eth(0x86dd, nil, ipv6UDP("2001:db8::1", "2001:db8::10", 1000, 47390, 17)), false},
		{"ack IPv6", eth(0x86dd, nil, ipv6UDP("2001:db8::10", "2001:db8::1", 47390, 1000, 17)), false},
		{"own PDU IPv6, VLAN", eth(0x86dd, []uint16{0x8100}, ipv6UDP("2001:db8::1", "2001:db8::10", 1000, 47390, 17)), false},
		{"IPv6 TCP to collector port", eth(0x86dd, nil, ipv6UDP("2001:db8::1", "2001:db8::10", 1000, 47390, 6)), true},
		{"IPv6 near-miss address", eth(0x86dd, nil, ipv6UDP("2001:db8::1", "2001:db8::11", 1000, 47390, 17)), true},
		{"VLAN IPv4", eth(0x0800, []uint16{0x8100}, ipv4UDP("10.0.0.1", "10.0.0.2", 1000, 53, 5, 17, 0)), true},
		{"QinQ IPv6", eth(0x86dd, []uint16{0x9100, 0x8100}, ipv6UDP("2001:db8::1", "2001:db8::2", 1, 2, 17)), true},
		{"ARP", eth(0x0806, nil, arp), false},
		{"VLAN ARP", eth(0x0806, []uint16{0x8100}, arp), false},
		{"LLDP", eth(0x88cc, nil, arp), false},
		{"runt", []byte{1, 2, 3}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := vm.Run(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			if keep := n > 0; keep != tc.keep {
				t.Fatalf("kept %d bytes, want keep=%v", n, tc.keep)
			}
			if tc.keep && n != MaxSnaplen {
				t.Fatalf("snaplen %d, want %d", n, MaxSnaplen)
			}
		})
	}
}

func TestPreFilterNoCollectors(t *testing.T) {
	prog, err := PreFilter(nil, 128)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := vm.Run(eth(0x0800, nil, ipv4UDP("10.0.0.1", "192.0.2.10", 1, 47390, 5, 17, 0))); n != 128 {
		t.Fatalf("kept %d, want the 128-byte snaplen", n)
	}
	if n, _ := vm.Run(eth(0x0806, nil, make([]byte, 28))); n != 0 {
		t.Fatalf("ARP kept")
	}
}

func TestPreFilterManyCollectors(t *testing.T) {
	var many []netip.AddrPort
	for i := range 60 {
		many = append(many, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 1))
	}
	if _, err := PreFilter(many, 0); err == nil {
		t.Fatal("60 collectors: want an error (jumps beyond 255 instructions)")
	}
}
