package sieve

import (
	"testing"
)

func TestDissect(t *testing.T) {
	payload := []byte("OWD1-payload")
	udp4 := ip4(17, "10.0.0.1", "10.0.0.2", 0, nil, udpHdr(1000, 2000, payload))
	tcp6 := ip6(6, "2001:db8::a", "2001:db8::b", tcpHdr(80, 50000, 0x12, payload))
	udp4Rec := Record{Length: uint32(len(udp4)), Src: a4("10.0.0.1"), Dst: a4("10.0.0.2"), SrcPort: 1000, DstPort: 2000,
		IPVersion: 4, Proto: 17, DSCP: 4, TTL: 64}
	tcp6Rec := Record{Length: uint32(len(tcp6)), Src: a6("2001:db8::a"), Dst: a6("2001:db8::b"), SrcPort: 80, DstPort: 50000,
		FlowLabel: 0x12345, IPVersion: 6, Proto: 6, TTL: 64, TCPFlags: 0x12}
	with := func(r Record, f func(*Record)) Record { f(&r); return r }

	tests := []struct {
		name string
		link uint16
		data []byte
		want Record
		why  Reason
	}{
		{"fixture eth/ipv4/udp with padding", LinkEthernet, fixUDP4, Record{Length: 32,
			Src: a4("192.0.2.1"), Dst: a4("198.51.100.7"), SrcPort: 5000, DstPort: 53,
			IPVersion: 4, Proto: 17, DSCP: 46, ECN: 1, TTL: 64}, Wanted},
		{"fixture QinQ ipv6 hbh tcp", LinkEthernet, fixQinQTCP6, Record{Length: 68,
			Src: a6("2001:db8::1"), Dst: a6("2001:db8::2"), SrcPort: 49153, DstPort: 443, VLAN: 100,
			FlowLabel: 0xabcde, IPVersion: 6, Proto: 6, ECN: 2, TTL: 63, TCPFlags: 2}, Wanted},
		{"fixture icmp port unreachable", LinkRaw, fixICMPUnreach, Record{Length: 56,
			Src: a4("192.0.2.1"), Dst: a4("198.51.100.7"), SrcPort: 5000, DstPort: 53,
			IPVersion: 4, Proto: 17, TTL: 64, ICMPType: 3, ICMPCode: 3, Flags: FlagICMPError}, Wanted},

		{"ethernet ipv4", LinkEthernet, ether(0x0800, udp4), udp4Rec, Wanted},
		{"802.1Q", LinkEthernet, ether(0x8100, vlanTag(0x2123, 0x0800), udp4), with(udp4Rec, func(r *Record) { r.VLAN = 0x123 }), Wanted},
		{"0x9100 QinQ", LinkEthernet, ether(0x9100, vlanTag(7, 0x8100), vlanTag(8, 0x0800), udp4), with(udp4Rec, func(r *Record) { r.VLAN = 7 }), Wanted},
		{"raw 101 v6", LinkRaw, tcp6, tcp6Rec, Wanted},
		{"raw 12 v4", LinkRaw12, udp4, udp4Rec, Wanted},
		{"raw 14 v6", LinkRaw14, tcp6, tcp6Rec, Wanted},
		{"ipv4 228", LinkIPv4, udp4, udp4Rec, Wanted},
		{"ipv6 229", LinkIPv6, tcp6, tcp6Rec, Wanted},
		{"ipv4 link with v6", LinkIPv4, tcp6, Record{}, Malformed},
		{"sll", LinkSLL, cat([]byte{0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0}, u16(0x86dd), tcp6), tcp6Rec, Wanted},
		{"sll vlan", LinkSLL, cat([]byte{0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0}, u16(0x8100), vlanTag(5, 0x0800), udp4), with(udp4Rec, func(r *Record) { r.VLAN = 5 }), Wanted},
		{"sll2", LinkSLL2, cat(u16(0x0800), []byte{0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0}, udp4), udp4Rec, Wanted},
		{"null little-endian v4", LinkNull, cat([]byte{2, 0, 0, 0}, udp4), udp4Rec, Wanted},
		{"null big-endian v6 darwin", LinkNull, cat([]byte{0, 0, 0, 30}, tcp6), tcp6Rec, Wanted},
		{"null little-endian v6 freebsd", LinkNull, cat([]byte{28, 0, 0, 0}, tcp6), tcp6Rec, Wanted},
		{"loop", LinkLoop, cat([]byte{0, 0, 0, 24}, tcp6), tcp6Rec, Wanted},
		{"null appletalk", LinkNull, cat([]byte{16, 0, 0, 0}, udp4), Record{}, NotIP},

		{"arp", LinkEthernet, ether(0x0806, make([]byte, 28)), Record{}, NotIP},
		{"802.3 llc", LinkEthernet, ether(0x0026, make([]byte, 38)), Record{}, NotIP},
		{"unsupported link", 105, udp4, Record{}, UnsupportedLink},
		{"short ethernet", LinkEthernet, make([]byte, 13), Record{}, Truncated},
		{"vlan cut", LinkEthernet, ether(0x8100, []byte{0, 1}), Record{}, Truncated},
		{"too many tags", LinkEthernet, ether(0x8100, vlanTag(1, 0x8100), vlanTag(1, 0x8100), vlanTag(1, 0x8100), vlanTag(1, 0x8100),
			vlanTag(1, 0x8100), vlanTag(1, 0x8100), vlanTag(1, 0x8100), vlanTag(1, 0x8100), udp4), Record{}, Malformed},
		{"ipv4 cut in header", LinkRaw, udp4[:19], Record{}, Truncated},
		{"ipv4 bad version", LinkIPv4, cat([]byte{0x55}, udp4[1:]), Record{}, Malformed},
		{"ipv4 ihl 4", LinkRaw, cat([]byte{0x44}, udp4[1:]), Record{}, Malformed},
		{"ipv4 total < ihl", LinkRaw, cat(udp4[:2], u16(19), udp4[4:]), Record{}, Malformed},
		{"ipv4 length too short for udp", LinkRaw, cat(udp4[:2], u16(24), udp4[4:]), Record{}, Malformed},
		{"udp header cut by capture", LinkRaw, udp4[:24], Record{}, Truncated},
		{"payload cut by capture", LinkRaw, udp4[:30], with(udp4Rec, func(r *Record) { r.Flags = FlagTruncated }), Wanted},
		{"raw empty", LinkRaw, nil, Record{}, Truncated},
		{"raw version 5", LinkRaw, []byte{0x50, 0, 0, 0}, Record{}, Malformed},

		{"ipv4 options", LinkRaw, ip4(17, "10.0.0.1", "10.0.0.2", 0, []byte{0x44, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0}, udpHdr(1000, 2000, payload)),
			with(udp4Rec, func(r *Record) { r.Length += 12 }), Wanted},
		{"ipv4 first fragment", LinkRaw, ip4(17, "10.0.0.1", "10.0.0.2", 0x2000, nil, udpHdr(1000, 2000, payload)),
			with(udp4Rec, func(r *Record) { r.Flags = FlagFragment | FlagMoreFrags }), Wanted},
		{"ipv4 last fragment", LinkRaw, ip4(17, "10.0.0.1", "10.0.0.2", 185, nil, payload),
			with(udp4Rec, func(r *Record) {
				r.Length = 32
				r.SrcPort, r.DstPort, r.FragOff = 0, 0, 185
				r.Flags = FlagFragment | FlagNoL4
			}), Wanted},
		{"ipv4 tiny first fragment", LinkRaw, ip4(6, "10.0.0.1", "10.0.0.2", 0x2000, nil, make([]byte, 8)),
			with(udp4Rec, func(r *Record) {
				r.Length, r.Proto = 28, 6
				r.SrcPort, r.DstPort = 0, 0
				r.Flags = FlagFragment | FlagMoreFrags | FlagNoL4
			}), Wanted},
		{"ipv4 gre", LinkRaw, ip4(47, "10.0.0.1", "10.0.0.2", 0, nil, payload),
			with(udp4Rec, func(r *Record) {
				r.Length, r.Proto = 32, 47
				r.SrcPort, r.DstPort = 0, 0
				r.Flags = FlagNoL4
			}), Wanted},
		{"tcp bad data offset", LinkRaw, ip4(6, "10.0.0.1", "10.0.0.2", 0, nil, cat(make([]byte, 12), []byte{0x40}, make([]byte, 7))), Record{}, Malformed},
		{"tcp options beyond ip length", LinkRaw, ip4(6, "10.0.0.1", "10.0.0.2", 0, nil, cat(make([]byte, 12), []byte{0xf0}, make([]byte, 7))), Record{}, Malformed},
		{"icmp echo", LinkRaw, ip4(1, "10.0.0.1", "10.0.0.2", 0, nil, icmpHdr(8, 0, payload)),
			with(udp4Rec, func(r *Record) {
				r.Length, r.Proto = 40, 1
				r.SrcPort, r.DstPort = 0, 0
				r.ICMPType = 8
			}), Wanted},
		{"icmp error quoting garbage", LinkRaw, ip4(1, "10.0.0.1", "10.0.0.2", 0, nil, icmpHdr(11, 0, make([]byte, 28))), Record{}, Malformed},
		{"icmp error quote cut", LinkRaw, ip4(1, "10.0.0.1", "10.0.0.2", 0, nil, icmpHdr(11, 0, udp4[:10])), Record{}, Malformed},
		{"icmp error quoting a fragment", LinkRaw, ip4(1, "10.0.0.9", "10.0.0.1", 0, nil, icmpHdr(11, 1, ip4(17, "10.0.0.1", "10.0.0.2", 100, nil, payload)[:28])),
			with(udp4Rec, func(r *Record) {
				r.Length = 56
				r.SrcPort, r.DstPort = 0, 0
				r.ICMPType, r.ICMPCode = 11, 1
				r.Flags = FlagICMPError | FlagNoL4
			}), Wanted},

		{"ipv6 routing dstopts", LinkRaw, ip6(43, "2001:db8::a", "2001:db8::b", cat(ext6(60, 2), ext6(6, 0), tcpHdr(80, 50000, 0x12, payload))),
			with(tcp6Rec, func(r *Record) { r.Length += 32 }), Wanted},
		{"ipv6 ah", LinkRaw, ip6(51, "2001:db8::a", "2001:db8::b", cat([]byte{6, 4, 0, 0}, make([]byte, 20), tcpHdr(80, 50000, 0x12, payload))),
			with(tcp6Rec, func(r *Record) { r.Length += 24 }), Wanted},
		{"ipv6 first fragment", LinkRaw, ip6(44, "2001:db8::a", "2001:db8::b", cat(frag6(6, 0, true, 77), tcpHdr(80, 50000, 0x12, payload))),
			with(tcp6Rec, func(r *Record) {
				r.Length += 8
				r.Flags = FlagFragment | FlagMoreFrags
			}), Wanted},
		{"ipv6 later fragment", LinkRaw, ip6(0, "2001:db8::a", "2001:db8::b", cat(ext6(44, 0), frag6(6, 100, false, 77), payload)),
			with(tcp6Rec, func(r *Record) {
				r.Length = 40 + 16 + 12
				r.FragOff = 100
				r.SrcPort, r.DstPort, r.TCPFlags = 0, 0, 0
				r.Flags = FlagFragment | FlagNoL4
			}), Wanted},
		{"ipv6 esp", LinkRaw, ip6(50, "2001:db8::a", "2001:db8::b", payload),
			with(tcp6Rec, func(r *Record) {
				r.Length, r.Proto = 52, 50
				r.SrcPort, r.DstPort, r.TCPFlags = 0, 0, 0
				r.Flags = FlagNoL4
			}), Wanted},
		{"ipv6 ext header chain too long", LinkRaw, ip6(60, "2001:db8::a", "2001:db8::b", cat(ext6(60, 0), ext6(60, 0), ext6(60, 0), ext6(60, 0),
			ext6(60, 0), ext6(60, 0), ext6(60, 0), ext6(60, 0), ext6(6, 0), tcpHdr(1, 2, 0, nil))), Record{}, Malformed},
		{"ipv6 ext header beyond length", LinkRaw, ip6(60, "2001:db8::a", "2001:db8::b", cat(ext6(6, 0)[:2])), Record{}, Malformed},
		{"ipv6 jumbo", LinkRaw, ip6(0, "2001:db8::a", "2001:db8::b", nil), Record{}, Malformed},
		{"ipv6 cut", LinkRaw, tcp6[:39], Record{}, Truncated},
		{"icmpv6 echo", LinkRaw, ip6(58, "2001:db8::a", "2001:db8::b", icmpHdr(128, 0, payload)),
			with(tcp6Rec, func(r *Record) {
				r.Length, r.Proto = 60, 58
				r.SrcPort, r.DstPort, r.TCPFlags = 0, 0, 0
				r.ICMPType = 128
			}), Wanted},
		{"icmpv6 packet too big quoting tcp", LinkRaw, ip6(58, "2001:db8::ff", "2001:db8::a", icmpHdr(2, 0, tcp6)),
			with(tcp6Rec, func(r *Record) {
				r.Length = uint32(40 + 8 + len(tcp6))
				r.ICMPType = 2
				r.Flags = FlagICMPError
			}), Wanted},
		{"icmpv6 error quoting short tcp", LinkRaw, ip6(58, "2001:db8::ff", "2001:db8::a", icmpHdr(1, 4, tcp6[:52])),
			with(tcp6Rec, func(r *Record) {
				r.Length = 40 + 8 + 52
				r.ICMPType, r.ICMPCode = 1, 4
				r.TCPFlags = 0
				r.Flags = FlagICMPError
			}), Wanted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec Record
			why := Dissect(tt.data, tt.link, &rec)
			if why != tt.why {
				t.Fatalf("reason %v, want %v (record %+v)", why, tt.why, rec)
			}
			rec.TxnKind, rec.Txn = 0, 0          // service keys: TestTxn
			rec.TCPWindow, rec.TCPPayload = 0, 0 // TestTCPFields
			if why == Wanted && rec != tt.want {
				t.Errorf("got  %+v\nwant %+v", rec, tt.want)
			}
		})
	}
}
