// Package flow defines the identity of a granular flow instance: the header
// fields a flow class can filter on, split on, or mask, and the comparable key
// built from them. The probe's analyser builds keys from sieve records; the
// collector rebuilds them from flow-definition PDUs to join the sightings of
// one flow seen by several probes.
package flow

import (
	"fmt"
	"net/netip"
	"strings"
)

// Field names one header field of the dissected packet. The zero Field is not
// a valid field.
type Field uint8

// The fields a flow class can use. Addresses are IPv4 or IPv6; ports are the
// TCP or UDP ports (zero for other protocols); ICMP type and code are those of
// ICMPv4 or ICMPv6.
const (
	IPVersion Field = iota + 1 // 4 or 6
	Src                        // source address
	Dst                        // destination address
	Proto                      // IPv4 protocol / IPv6 upper-layer next header
	DSCP                       // differentiated services code point (6 bits)
	ECN                        // explicit congestion notification (2 bits)
	TTL                        // IPv4 TTL / IPv6 hop limit
	Length                     // IP total length in bytes (IPv6: 40 + payload length)
	Fragment                   // 1 when the packet is an IP fragment, else 0
	FlowLabel                  // IPv6 flow label (0 for IPv4)
	SrcPort                    // TCP/UDP source port
	DstPort                    // TCP/UDP destination port
	ICMPType                   // ICMP / ICMPv6 type
	ICMPCode                   // ICMP / ICMPv6 code
	VLAN                       // outermost 802.1Q VLAN id (0 when untagged)
	TCPFlags                   // TCP flags byte (FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ECE=64 CWR=128)
	numFields
)

var names = [...]string{
	IPVersion: "ip.version",
	Src:       "ip.src",
	Dst:       "ip.dst",
	Proto:     "ip.proto",
	DSCP:      "ip.dscp",
	ECN:       "ip.ecn",
	TTL:       "ip.ttl",
	Length:    "ip.length",
	Fragment:  "ip.fragment",
	FlowLabel: "ipv6.flowlabel",
	SrcPort:   "l4.sport",
	DstPort:   "l4.dport",
	ICMPType:  "icmp.type",
	ICMPCode:  "icmp.code",
	VLAN:      "vlan.id",
	TCPFlags:  "tcp.flags",
}

// String returns the configuration name of f, such as "ip.src".
func (f Field) String() string {
	if f == 0 || f >= numFields {
		return fmt.Sprintf("field(%d)", uint8(f))
	}
	return names[f]
}

// IsAddress reports whether f holds an IP address (matched by prefix).
func (f Field) IsAddress() bool { return f == Src || f == Dst }

// Max returns the largest value a numeric field can hold.
func (f Field) Max() uint32 {
	switch f {
	case IPVersion:
		return 6
	case Proto, TTL, ICMPType, ICMPCode, TCPFlags:
		return 255
	case DSCP:
		return 63
	case ECN:
		return 3
	case Fragment:
		return 1
	case FlowLabel:
		return 1<<20 - 1
	case VLAN:
		return 4095
	case Length, SrcPort, DstPort:
		return 65535
	}
	return 0
}

// Fields lists every valid field, in declaration order.
func Fields() []Field {
	out := make([]Field, 0, numFields-1)
	for f := Field(1); f < numFields; f++ {
		out = append(out, f)
	}
	return out
}

// ParseField returns the field named s (see String). Aliases: "src", "dst",
// "proto", "sport", "dport".
func ParseField(s string) (Field, error) {
	switch s {
	case "src":
		return Src, nil
	case "dst":
		return Dst, nil
	case "proto":
		return Proto, nil
	case "sport":
		return SrcPort, nil
	case "dport":
		return DstPort, nil
	}
	for f := Field(1); f < numFields; f++ {
		if names[f] == s {
			return f, nil
		}
	}
	return 0, fmt.Errorf("unknown field %q (known: %s)", s, strings.Join(names[1:], ", "))
}

// Set is a set of fields, one bit per Field.
type Set uint32

// Has reports whether f is in s.
func (s Set) Has(f Field) bool { return s&(1<<f) != 0 }

// With returns s with f added.
func (s Set) With(f Field) Set { return s | 1<<f }

// String lists the field names in s, space separated.
func (s Set) String() string {
	var b strings.Builder
	for f := Field(1); f < numFields; f++ {
		if s.Has(f) {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(names[f])
		}
	}
	return b.String()
}

// Key identifies a granular flow instance of a flow class: the class and the
// values of the class's granular fields. Fields outside the class's granular
// set are zero, so two packets of the same instance give equal keys.
// Key is comparable and used as a map key on the hot path; it does not
// allocate. Size: 56 bytes.
type Key struct {
	Class     uint16     // flow class index in the configuration (0-based)
	Fields    Set        // which fields below are meaningful
	Src, Dst  netip.Addr // zero Addr when not granular
	SrcPort   uint16
	DstPort   uint16
	VLAN      uint16
	FlowLabel uint32
	Proto     uint8
	DSCP      uint8
	ICMPType  uint8
	ICMPCode  uint8
	IPVersion uint8
}

// String renders k as "class=3 ip.src=10.0.0.1 l4.dport=53" for logs and
// spool files (field order is fixed).
func (k Key) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "class=%d", k.Class)
	for f := Field(1); f < numFields; f++ {
		if !k.Fields.Has(f) {
			continue
		}
		b.WriteByte(' ')
		b.WriteString(names[f])
		b.WriteByte('=')
		b.WriteString(k.Value(f))
	}
	return b.String()
}

// Value renders the value of field f in k.
func (k Key) Value(f Field) string {
	switch f {
	case Src:
		return k.Src.String()
	case Dst:
		return k.Dst.String()
	case SrcPort:
		return fmt.Sprint(k.SrcPort)
	case DstPort:
		return fmt.Sprint(k.DstPort)
	case VLAN:
		return fmt.Sprint(k.VLAN)
	case FlowLabel:
		return fmt.Sprint(k.FlowLabel)
	case Proto:
		return fmt.Sprint(k.Proto)
	case DSCP:
		return fmt.Sprint(k.DSCP)
	case ICMPType:
		return fmt.Sprint(k.ICMPType)
	case ICMPCode:
		return fmt.Sprint(k.ICMPCode)
	case IPVersion:
		return fmt.Sprint(k.IPVersion)
	}
	return ""
}

// Granular reports whether f can split a class into instances (a Key holds it).
func Granular(f Field) bool {
	switch f {
	case Src, Dst, SrcPort, DstPort, VLAN, FlowLabel, Proto, DSCP, ICMPType, ICMPCode, IPVersion:
		return true
	}
	return false
}
