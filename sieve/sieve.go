// Package sieve is the first stage after capture: on the probe's pinned sieve
// goroutine it dissects each captured frame in place (link layer, IPv4/IPv6,
// TCP/UDP/ICMP, the inner header of ICMP errors), decides in one pass over a
// compiled structure of every flow class's filter which classes want the
// packet, signs the invariant bytes of packets that a one-way class needs,
// and hands a fixed-size Record to the analyser through the ring.
//
// The hot path is hand-written rather than built on a general decoder
// library such as gopacket/layers: those decode into interface-typed layers,
// allocate per packet and do much work the sieve never reads, which costs
// both speed and the garbage collector's attention at millions of packets per
// second. Dissect, Packet and Sign do not allocate; they read the capture
// buffer only while they run and keep no reference to it.
//
// Unwanted packets cost only the dissection: every call of Packet ends in
// exactly one Reason, counted in Stats, so that the counters always add up.
package sieve

import (
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/reassembly"
	"github.com/tmon-project/tmon/ring"
)

// Reason is the outcome of Packet for one frame: Wanted, or why not.
type Reason uint8

// The outcomes of Packet. Every frame is counted under exactly one of them.
const (
	Wanted          Reason = iota // belongs to at least one class; the Record is filled (for a fragment: the datagram it completed)
	Unwanted                      // a valid IP packet that no class wants
	NotIP                         // a valid link-layer frame that carries no IPv4/IPv6 (ARP, LLDP, STP ...)
	UnsupportedLink               // link type the sieve does not dissect
	Truncated                     // the capture ends before the headers the sieve needs
	Malformed                     // header fields inconsistent (bad version, lengths, offsets, too many extension headers)
	Held                          // an IP fragment held for reassembly (its datagram's record comes with the fragment that completes it)
	numReasons
)

var reasonNames = [numReasons]string{"wanted", "unwanted", "not-ip", "unsupported-link", "truncated", "malformed", "held"}

// String returns a short lower-case name such as "truncated".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "reason(?)"
}

// Stats are the sieve's counters since Compile. Packets is always the sum of
// Wanted, Unwanted, NotIP, UnsupportedLink, Truncated, Malformed and Held;
// the other counters give detail and are not part of that sum.
type Stats struct {
	Packets         uint64 // frames given to Packet
	Wanted          uint64
	Unwanted        uint64
	NotIP           uint64
	UnsupportedLink uint64
	Truncated       uint64
	Malformed       uint64
	Held            uint64 // fragments held by reassembly (Reassembly says what became of them)

	Fragments  uint64 // IP fragments dissected (first or not), wanted or not
	ICMPErrors uint64 // ICMP error messages whose inner header was dissected
	Short      uint64 // dissected packets captured shorter than their IP length (FlagTruncated)
	Signed     uint64 // signatures computed
	RingFull   uint64 // Run found the ring full (each time it had to wait or drop)
	RingDrops  uint64 // records Run dropped on a full ring (FullDrop policy only)
}

// Sieve is the compiled flow-class structure of one configuration together
// with its counters. Packet, Dissect and Run must be called from one
// goroutine at a time (the sieve goroutine); LiveStats may be called from
// any goroutine. A Sieve is built by Compile and never changes its classes.
type Sieve struct {
	prog

	sigMask  flow.Set // fields masked before signing (union of all classes' Mask)
	oneWay   uint64   // classes with a one-way measurement: their packets are signed
	st       Stats
	pub      published
	nClasses int
	scratch  *signScratch // masked copies being signed
	reasm    *reassembly.Reassembler
	ftpx     ftpTable         // expected FTP data connections (ftp.go)
	ftpFlags uint64           // classes keeping only SYN, FIN and RST of FTP data connections (conf ftpData="flags")
	pay      [PayloadMax]byte // the payload of the last record with FlagPayload
	payN     int
	payDrops uint64
	hand     Payload             // the payload being pushed (kept off the stack)
	payloads *ring.Ring[Payload] // where Run hands payloads on; nil: none is
}

// Stats returns the counters. Call it from the goroutine that calls Packet,
// or after Run has returned; other goroutines use LiveStats.
func (s *Sieve) Stats() Stats { return s.st }

// Packet dissects one frame, classifies it and, when a one-way class wants
// it, signs it. It fills *rec and returns (true, Wanted) when at least one
// class wants the packet; otherwise it returns false and the reason, and *rec
// holds whatever was dissected before the verdict (do not use it). data is
// read only during the call. It does not allocate and never panics on any
// input.
//
// linkType is the LINKTYPE_* of the capture (see Dissect for the supported
// ones); ts is the capture time in ns since the Unix epoch; iface the probe's
// interface index.
func (s *Sieve) Packet(data []byte, ts int64, iface uint8, linkType uint16, rec *Record) (bool, Reason) {
	s.st.Packets++
	var l layout
	r := dissect(data, linkType, rec, &l)
	if r != Wanted {
		s.count(r)
		return false, r
	}
	if rec.Flags&FlagFragment != 0 {
		s.st.Fragments++
	}
	if rec.Flags&FlagICMPError != 0 {
		s.st.ICMPErrors++
	}
	if rec.Flags&FlagTruncated != 0 {
		s.st.Short++
	}
	rec.TS = ts
	rec.Iface = iface
	if s.reasm.Pending() > 0 {
		s.reasm.Expire(ts)
	}
	rec.Classes = s.classify(rec, &l)
	if s.ftpx.n > 0 && rec.Proto == protoTCP && l.l4 >= 0 && rec.Flags&FlagICMPError == 0 {
		s.ftpData(rec)
	}
	if rec.Classes == 0 {
		s.st.Unwanted++
		return false, Unwanted
	}
	if rec.Flags&(FlagFragment|FlagTruncated) == FlagFragment {
		// A fragment some class may want by its IP header: reassembled;
		// the datagram is classified on its own headers.
		ip, r := s.reassemble(data, ts, rec, &l)
		switch r {
		case Held:
			s.st.Held++
			return false, Held
		case Malformed:
			s.st.Malformed++
			return false, Malformed
		}
		data = ip
		rec.Classes = s.classify(rec, &l)
		if s.ftpx.n > 0 && rec.Proto == protoTCP && l.l4 >= 0 && rec.Flags&FlagICMPError == 0 {
			s.ftpData(rec)
		}
		if rec.Classes == 0 {
			s.st.Unwanted++ // the fragment is counted; its datagram was not wanted
			return false, Unwanted
		}
	}
	if (rec.SrcPort == PortFTP || rec.DstPort == PortFTP) && rec.Proto == protoTCP && l.l4 >= 0 &&
		rec.Flags&(FlagICMPError|FlagTruncated) == 0 && rec.TCPPayload > 0 {
		s.ftp(data, &l, rec)
	}
	if rec.Classes&s.oneWay != 0 {
		rec.Sig = sign(data, &l, s.sigMask, s.scratch)
		s.st.Signed++
	}
	s.st.Wanted++
	return true, Wanted
}

func (s *Sieve) count(r Reason) {
	switch r {
	case NotIP:
		s.st.NotIP++
	case UnsupportedLink:
		s.st.UnsupportedLink++
	case Truncated:
		s.st.Truncated++
	default:
		s.st.Malformed++
	}
}

// Dissect fills *rec with the header fields of one frame, without
// classifying or signing it (Classes and Sig are zero, TS and Iface are left
// alone), and returns Wanted when the frame is a dissectable IP packet or the
// reason it is not. It does not count anything, does not allocate and never
// panics.
//
// Supported link types (pcap LINKTYPE_* values):
//
//	0   BSD loopback/null (4-byte address family, either byte order)
//	1   Ethernet, with any number (up to 8) of 802.1Q / 802.1ad / 0x9100 tags
//	12, 14, 101  raw IP (DLT_RAW on the various systems, LINKTYPE_RAW)
//	108 OpenBSD loopback (address family in network order)
//	113 Linux cooked capture (SLL)
//	228, 229  raw IPv4, raw IPv6
//	276 Linux cooked capture v2 (SLL2)
//
// See Record for what each field holds, in particular for fragments and ICMP
// errors.
func Dissect(data []byte, linkType uint16, rec *Record) Reason {
	var l layout
	return dissect(data, linkType, rec, &l)
}

// layout records where the headers of a dissected packet are, for the
// classifier (which fields are present) and the signature (which bytes to
// mask). Offsets are into the frame; -1 means absent.
type layout struct {
	ip      int   // IP header
	ipHdr   int   // IPv4 header length with options, or 40 for IPv6
	l4      int   // transport header (outer); -1 for non-first fragments and unknown protocols
	l4Proto uint8 // protocol of the header at l4 (TCP, UDP, ICMP or ICMPv6)
	l4Len   int   // bytes of the transport header the signature masks (TCP 20, UDP 8, ICMP 8 or 4)
	end     int   // min(IP start + IP length, len(frame)): nothing beyond is read

	// ICMP errors: the quoted packet.
	inIP    int // inner IP header, -1 when not an ICMP error
	inIPHdr int
	inL4    int // inner transport header, -1 when not quoted or not TCP/UDP
	inProto uint8

	// Fragments: where the fragmentable part starts (after the IPv4
	// header, after the IPv6 fragment header), the IPv6 next-header byte
	// naming the fragment header (-1 for IPv4) and the protocol of the
	// fragmented payload, and the IP identification; see reassemble.go.
	fragPay, fragNH int
	fragProto       uint8
	fragID          uint32

	absent  flow.Set // fields the packet does not have: predicates on them are false
	unknown flow.Set // fields it has but that cannot be read (non-first fragment): predicates are undecided
}

// reset prepares *rec and *l for a new frame.
func reset(rec *Record, l *layout) {
	*rec = Record{}
	*l = layout{l4: -1, inIP: -1, inL4: -1}
}
