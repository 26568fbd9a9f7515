package conf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tmon-project/tmon/flow"
)

// parseDuration reads a duration in Go syntax ("500ms", "1m30s"). A bare
// number other than 0 is refused rather than read as seconds: trafMon's own
// files mixed seconds and milliseconds, and a silent factor of 1000 on a
// timeout is worse than an error at load time.
func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if s != "" && strings.Trim(s, "0123456789.") == "" {
		return 0, fmt.Errorf("duration %q has no unit (write e.g. %ss or %sms)", s, s, s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q (write e.g. 500ms, 2s, 1m30s)", s)
	}
	return d, nil
}

// parseDurations reads a whitespace-separated list of durations.
func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Fields(s) {
		d, err := parseDuration(f)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// parseBool accepts only the spellings an operator is likely to mean.
func parseBool(s string) (bool, error) {
	switch s {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("bad boolean %q (want true or false)", s)
}

// splitList splits a list separated by commas and/or whitespace.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// parseFields reads a list of field names, refusing repeats.
func parseFields(s string) (flow.Set, error) {
	var set flow.Set
	for _, name := range splitList(s) {
		f, err := flow.ParseField(name)
		if err != nil {
			return 0, err
		}
		if set.Has(f) {
			return 0, fmt.Errorf("field %s listed twice", f)
		}
		set = set.With(f)
	}
	return set, nil
}

// protoNames are the IP protocol numbers an operator may write by name in a
// ip.proto match (IANA "Assigned Internet Protocol Numbers").
var protoNames = map[string]uint32{
	"icmp":    1,
	"igmp":    2,
	"ipip":    4,
	"tcp":     6,
	"udp":     17,
	"ipv6":    41,
	"rsvp":    46,
	"gre":     47,
	"esp":     50,
	"ah":      51,
	"icmpv6":  58,
	"ospf":    89,
	"pim":     103,
	"vrrp":    112,
	"l2tp":    115,
	"sctp":    132,
	"udplite": 136,
}

// parseValues reads the value attribute of a <match> on field f: a list of
// N or N-M for numeric fields, of addresses or CIDR prefixes for address
// fields. Range checks against the field are Validate's job, so that a
// Config built in code gets them too.
func parseValues(f flow.Field, s string) (ranges []Range, prefixes []netip.Prefix, err error) {
	items := strings.Split(s, ",")
	for _, it := range items {
		it = strings.TrimSpace(it)
		if it == "" {
			return nil, nil, fmt.Errorf("empty item in value list %q", s)
		}
		if f.IsAddress() {
			p, err := parsePrefix(it)
			if err != nil {
				return nil, nil, err
			}
			prefixes = append(prefixes, p)
			continue
		}
		lo, hi, isRange := strings.Cut(it, "-")
		l, err := parseNumber(f, strings.TrimSpace(lo))
		if err != nil {
			return nil, nil, err
		}
		h := l
		if isRange {
			if h, err = parseNumber(f, strings.TrimSpace(hi)); err != nil {
				return nil, nil, err
			}
		}
		ranges = append(ranges, Range{Lo: l, Hi: h})
	}
	return ranges, prefixes, nil
}

func parseNumber(f flow.Field, s string) (uint32, error) {
	if f == flow.Proto {
		if v, ok := protoNames[strings.ToLower(s)]; ok {
			return v, nil
		}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		if f == flow.Proto {
			return 0, fmt.Errorf("bad protocol %q (a number 0-255 or one of icmp, tcp, udp, icmpv6, gre, esp, ah, sctp, ...)", s)
		}
		return 0, fmt.Errorf("bad number %q (want N or N-M)", s)
	}
	return uint32(v), nil
}

// parsePrefix reads an address (a host prefix) or a CIDR prefix. Zones are
// refused: a packet on the wire carries none.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad address %q (want an IPv4 or IPv6 address or prefix)", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseAddrPort reads a collector address. "localhost" is the one host name
// accepted: a name would need a resolver at load time, and its answer could
// differ between the hosts that read the same file.
func parseAddrPort(s string) (netip.AddrPort, error) {
	if rest, ok := strings.CutPrefix(s, "localhost:"); ok {
		s = "127.0.0.1:" + rest
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad address %q (want host:port with a numeric IP, [v6]:port, or localhost:port)", s)
	}
	return ap, nil
}

// validName reports whether s may name a probe, collector, class or hop.
// Names end up in spool file names and tab-separated columns, and hop names
// are listed space-separated, so the alphabet is small.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case (r == '-' || r == '_' || r == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

const nameRule = "1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"

// validIfName reports whether s may name a capture interface: OS interface
// names are freer than ours, but never hold '/' or blanks.
func validIfName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if r == '/' || r > unicode.MaxASCII || !unicode.IsGraphic(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// validText reports whether s can go into a log line or a TSV column as is.
func validText(s string) bool {
	for _, r := range s {
		if r == '\t' || r == '\n' || r == '\r' || !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return len(s) <= 256 && utf8.ValidString(s)
}
