package netlab

import (
	"net/netip"
	"testing"
)

// Addresses and interface names of the path lab. The interface names are
// fixed (they live inside the lab's namespaces), so one tmon configuration
// fits every lab.
var (
	AddrA  = netip.MustParseAddr("10.200.1.2") // veth-a, in A
	AddrRA = netip.MustParseAddr("10.200.1.1") // r-a, in R: A's gateway
	AddrRB = netip.MustParseAddr("10.200.2.1") // r-b, in R: B's gateway
	AddrB  = netip.MustParseAddr("10.200.2.2") // veth-b, in B
)

const (
	IfaceA  = "veth-a" // A's end of the A—R link
	IfaceRA = "r-a"    // R's end of the A—R link
	IfaceRB = "r-b"    // R's end of the R—B link
	IfaceB  = "veth-b" // B's end of the R—B link

	// DelayTable is the routing table R consults for packets arriving
	// from A when the path has a delay device.
	DelayTable = "100"
)

// PathOptions shape NewPath.
type PathOptions struct {
	// DelayDev, when set, names a TUN device created (persistent, owned by
	// root) in R: traffic from A to B's subnet is routed into it, and
	// whatever a program attached to it writes back is forwarded to B.
	// Until a program attaches, the device has no carrier and A→B traffic
	// is dropped.
	DelayDev string
	// NoOffload turns off segmentation offload on veth-a (gso_max_segs 1),
	// so that a TCP sender's segments are on A's wire as they will be on
	// B's: otherwise a capture at A can see one 64 KB super-frame that
	// arrives at B as forty packets.
	NoOffload bool
}

// Path is the lab A — R — B.
type Path struct {
	*Lab
	A, R, B NS
	// DelayDev is the TUN device in R, "" without one.
	DelayDev string
}

// NewPath builds A — R — B with routes both ways and forwarding in R.
//
// With a delay device the forward direction goes through it by policy
// routing: `ip rule iif r-a lookup 100`, and table 100 routes B's subnet
// to the TUN device. A packet the delay line writes back enters R again
// with iif = the TUN device, so that rule no longer applies and the main
// table sends it out of r-b. A plain route to B's subnet via the TUN would
// loop the packet back into the delay line forever; two TUN devices would
// work too but need twice the plumbing. Reverse-path filtering is turned
// off in R because packets from A's subnet arrive on the TUN device, not
// on r-a where the reverse route points. The reverse direction B → A (TCP
// acknowledgements) is not delayed. Traffic from A to R's own addresses is
// delivered locally (the local table comes before rule 100), so a
// collector in R is reached without crossing the delay line.
func NewPath(t testing.TB, o PathOptions) *Path {
	t.Helper()
	l := New(t)
	p := &Path{Lab: l, DelayDev: o.DelayDev}
	p.A = l.AddNS("a")
	p.R = l.AddNS("r")
	p.B = l.AddNS("b")
	l.Veth(p.A, IfaceA, p.R, IfaceRA)
	l.Veth(p.B, IfaceB, p.R, IfaceRB)
	l.MustIP(p.A, "addr", "add", AddrA.String()+"/24", "dev", IfaceA)
	l.MustIP(p.R, "addr", "add", AddrRA.String()+"/24", "dev", IfaceRA)
	l.MustIP(p.R, "addr", "add", AddrRB.String()+"/24", "dev", IfaceRB)
	l.MustIP(p.B, "addr", "add", AddrB.String()+"/24", "dev", IfaceB)
	l.MustIP(p.A, "route", "add", "default", "via", AddrRA.String())
	l.MustIP(p.B, "route", "add", "default", "via", AddrRB.String())
	l.Sysctl(p.R, "net.ipv4.ip_forward", "1")
	if o.NoOffload {
		l.MustIP(p.A, "link", "set", IfaceA, "gso_max_segs", "1")
	}
	if o.DelayDev != "" {
		for _, k := range []string{"all", "default", IfaceRA, IfaceRB} {
			l.Sysctl(p.R, "net.ipv4.conf."+k+".rp_filter", "0")
		}
		l.MustIP(p.R, "tuntap", "add", "dev", o.DelayDev, "mode", "tun")
		// The TUN device queues for the delay line in a ring of txqueuelen
		// packets (500 by default: 17 ms at 30 000 packets/s, less than
		// one descheduled reader costs).
		l.MustIP(p.R, "link", "set", o.DelayDev, "txqueuelen", "10000", "up")
		l.Sysctl(p.R, "net.ipv4.conf."+o.DelayDev+".rp_filter", "0")
		l.MustIP(p.R, "route", "add", "10.200.2.0/24", "dev", o.DelayDev, "table", DelayTable)
		l.MustIP(p.R, "rule", "add", "iif", IfaceRA, "lookup", DelayTable, "priority", "100")
	}
	return p
}
