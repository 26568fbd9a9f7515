package sieve

// Record is what the sieve hands to the analyser for every packet that at
// least one flow class wants: the dissected header fields, the classes it
// belongs to and its signature. It is a fixed-size value copied through the
// ring; it holds no pointer into the capture buffer, so the buffer can be
// released as soon as Sieve returns. Size: 104 bytes, the most TestRecordSize
// allows (the IP identification of fragments stays in the sieve: only
// reassembly needs it; the TCP timestamps took it from 96).
//
// For an ICMP error (FlagICMPError) Src, Dst, Proto, SrcPort, DstPort and
// TCPFlags are those of the quoted packet, ICMPType/ICMPCode those of the
// error, and every other field that of the captured (outer) packet; see icmp.go.
// IP fragments are reassembled in the sieve (reassemble.go): the record of a
// reassembled datagram (FlagReassembled) describes the whole datagram —
// Length its total length, its transport header, one signature — with TS
// the capture time of its last fragment, Span the time since its first and
// Frags the fragments it was made of. A fragment appears in a record of its
// own only when it cannot be reassembled (captured truncated); then, for a
// non-first fragment (FragOff > 0), Classes holds every class whose filter
// could still be true once the transport header is known.
type Record struct {
	TS      int64  // capture time, ns since the Unix epoch (kernel or file timestamp)
	Classes uint64 // bit i set: the packet belongs to flow class i
	Sig     uint32 // signature over the invariant bytes (see Sign); 0 is a valid value
	Length  uint32 // IP total length in bytes (IPv6: 40 + payload length)

	Src, Dst [16]byte // IPv4 addresses in the first 4 bytes, the rest zero
	SrcPort  uint16   // TCP/UDP; for non-first fragments 0
	DstPort  uint16
	VLAN     uint16 // outermost VLAN id, 0 when untagged
	FragOff  uint16 // fragment offset in 8-byte units (IPv4 and IPv6)
	// TCP (not for an ICMP error): the window field as sent (unscaled) and
	// the segment's payload bytes (IP length − IP and TCP headers), for
	// the connection analysis (analyse/tcpconn); with Txn's sequence and
	// acknowledgment numbers they make the TCP header it needs.
	TCPWindow  uint16
	TCPPayload uint16
	FlowLabel  uint32
	// TCP timestamps option (RFC 7323), both 0 when absent: TSval and
	// TSecr as sent, for the round trips of analyse/rtt.
	TSVal, TSEcr uint32

	Iface     uint8 // index of the capture interface within the probe
	IPVersion uint8 // 4 or 6
	Proto     uint8 // upper-layer protocol (after IPv6 extension headers)
	DSCP      uint8
	ECN       uint8
	TTL       uint8
	ICMPType  uint8
	ICMPCode  uint8
	TCPFlags  uint8
	Flags     Flags
	Frags     uint8 // reassembled datagram: its fragments (saturating at 255); else 0
	TxnKind   TxnKind
	Span      uint32 // reassembled datagram: ns from its first to its last fragment
	Txn       uint64 // transaction key of a request or response (service.go), by TxnKind
}

// Flags describe how the packet was dissected.
type Flags uint8

const (
	FlagFragment    Flags = 1 << iota // an IP fragment (first or not)
	FlagMoreFrags                     // more-fragments bit set
	FlagTruncated                     // capture shorter than the IP length: signature covers only the captured bytes
	FlagICMPError                     // ICMP error: addresses/ports are those of the inner (offending) packet
	FlagNoL4                          // no transport header (non-first fragment or unknown protocol): port fields are zero
	FlagReassembled                   // a datagram reassembled from its fragments (FlagFragment is clear)
	FlagPayload                       // an FTP control segment whose payload follows the record (ftp.go, Run)
	FlagFTPData                       // a packet of an FTP data connection, in the classes of its control connection (ftp.go)
)
