// Package conf is the single shared XML configuration of every tmon probe and
// collector: its model, defaults, validation (errors name file, line and
// element) and the validFrom switch-over time. It sits before every stage of
// the data flow: each component loads the same file and picks its own part.
package conf

import (
	"net/netip"
	"time"

	"github.com/tmon-project/tmon/flow"
)

// Config is one validated configuration file. Every slice is in document
// order; indexes into Probes, Classes and Collectors are stable identifiers
// shared by all components that load the same file. A Config is not
// modified after Load or Parse returns it; its methods are safe for
// concurrent use.
type Config struct {
	File      string    // path it was loaded from (for messages)
	Version   string    // free text, logged with the switch-over event
	ValidFrom time.Time // when this version takes effect (zero: immediately)

	Interval   time.Duration // aggregation interval of histograms and counters; default 60s; whole seconds dividing one hour
	Transport  Transport
	Limits     Limits   // collector resource bounds against hostile or runaway input
	Analyses   Analyses // probe state bounds: protocol analyses and fragment reassembly
	Capture    Capture  // live capture parameters of every probe
	Clock      Clock    // clock measurement of every probe
	Alarms     Alarms   // where collectors send threshold notifications
	Probes     []Probe
	Collectors []Collector
	Classes    []Class
	Line       int // line of the <tmon> element, for messages (0 when built in code)
}

// Transport holds the probe-to-collector protocol parameters (trafMon 1.5).
type Transport struct {
	MaxPDUSize   int           // bytes of UDP payload; default 1400
	MaxBuildTime time.Duration // flush a PDU under construction after this; default 1s
	MinGap       time.Duration // minimum time between two sends to one collector; default 20µs
	// Window bounds the PDUs sent to one collector and not yet acked: new
	// PDUs wait while it is full, so a probe never sends faster than the
	// collector confirms (in normal mode; long-retry mode has its own
	// pacing). Default 256.
	Window            int
	InitialTimeout    time.Duration // first ack timeout; default 500ms
	TimeoutIncrement  time.Duration // added to the timeout at each retry; default 500ms
	TimeoutMultiplier float64       // multiplies the timeout at each retry; default 1
	MaxRetries        int           // retries before long-retry mode; default 5
	FinalTimeout      time.Duration // age after which a PDU is given up; default 10m
	BreakBorder       time.Duration // window before a break kept forever; default 30s
	Heartbeat         time.Duration // heartbeat period when idle; default 5s
	// Bandwidth caps the observation traffic a probe sends to each
	// collector, in bytes of UDP payload per second; 0 (default): no cap
	// beyond MinGap.
	Bandwidth int64
	// Insecure is the explicit opt-out of authentication: without it,
	// probes and collectors refuse to start unless every probe has a key
	// (CheckAuth). Logged loudly at start.
	Insecure bool
	Line     int // line of the <transport> element; 0 when absent or built in code
}

// Limits bound what a collector keeps for its probes, so that no input, a
// hostile or buggy probe's included, can make its memory or journal grow
// without end. Past a limit the collector refuses (counts, reports as an
// event, does not ack) instead of growing. Ranges: LimitRanges.
type Limits struct {
	// MaxFlows bounds the probe flow ids a collector keeps, over every
	// probe session (and each probe flow id: ids at or above it are
	// refused); default 1 Mi.
	MaxFlows int
	// MaxSessions bounds the probe sessions remembered (the least
	// recently heard is forgotten first); default 1024.
	MaxSessions int
	// MaxRecords bounds the reconciler's incomplete records waiting for
	// other hops (the one closest to its timeout is decided early);
	// default 4 Mi.
	MaxRecords int
	// MaxJournal bounds the restart journal, in bytes: past it (after a
	// compaction could not shrink it) new PDUs are not acked, so probes
	// keep them and retry; default 1 GiB.
	MaxJournal int64
	Line       int // line of the <limits> element; 0 when absent or built in code
}

// Analyses bound the state a probe keeps for its protocol analyses
// (analyse/rtt, analyse/tcpconn, analyse/ftp, analyse/counters) and its
// fragment reassembly (package reassembly): how long an entry waits, in
// data time (capture timestamps), and how many are held at once. Past a
// bound the oldest entry is ended early and counted, never grown without
// end. Parse fills what <analyses> leaves out from DefaultAnalyses; a
// zero value (a Config built in code) takes the default (Resolved).
// Ranges: AnalysesRanges.
type Analyses struct {
	// RTTTimeout: a request waits this long for its response before it
	// counts unanswered; default 10s. RTTMaxPending bounds the requests
	// waiting, and the TCP directions followed for timestamp echoes;
	// default 256 Ki.
	RTTTimeout    time.Duration
	RTTMaxPending int
	// TCPIdle ends a connection without a packet for that long (Zeek's
	// tcp_inactivity_timeout); default 5m. TCPCloseDelay: a closed
	// connection is kept this long for its last packets (Zeek's
	// tcp_close_delay); default 5s. TCPMaxConns bounds the connections
	// followed; default 256 Ki.
	TCPIdle       time.Duration
	TCPCloseDelay time.Duration
	TCPMaxConns   int
	// FTPIdle ends an FTP session without a packet for that long;
	// default 5m. FTPMaxSessions bounds the sessions followed; default
	// 16 Ki.
	FTPIdle        time.Duration
	FTPMaxSessions int
	// CountersMaxEntries bounds the (flow, interval) counter entries
	// open; when full they are sent early (records add up downstream);
	// default 1 Mi.
	CountersMaxEntries int
	// FragTimeout: an incomplete set of IP fragments is given up after
	// this long; default 1s. FragMaxSets, FragMaxBytes: sets and payload
	// bytes held at once (default 4096, 16 MiB); FragMaxFrags: fragments
	// of one set (default 64).
	FragTimeout  time.Duration
	FragMaxSets  int
	FragMaxBytes int
	FragMaxFrags int
	// FlowIdle: a flow instance without a packet for that long is
	// forgotten by the probe's analyser (announced again, under a new id,
	// when it comes back); default 10m. FlowMaxInstances bounds the
	// instances held (one is forgotten to make room); default 1 Mi.
	FlowIdle         time.Duration
	FlowMaxInstances int
	Line             int // line of the <analyses> element; 0 when absent or built in code
}

// Probe is one probe process and its capture interfaces.
type Probe struct {
	Name string
	ID   uint16 // numeric id carried in every PDU; unique, non-zero
	Core int    // CPU the sieve goroutine is pinned to; -1: not pinned (default)
	// Key authenticates the probe's PDUs and the collectors' acks
	// (HMAC-SHA256, docs/pdu.md); nil: none. From key="hex" or keyFile.
	// Never logged.
	Key []byte
	// Keys are every key the probe's PDUs may be signed with: Key first,
	// then older or newer ones accepted while keys are rolled (a keyFile
	// of several lines, docs/transport.md). Collectors verify with each;
	// probes sign with Key.
	Keys       [][]byte
	KeyFile    string // where Key was read from, as written in the file; empty for key=""
	Interfaces []Interface
	Ops        Ops // metrics endpoint and log level
	Line       int // line of the <probe> element, for messages
}

// AcceptedKeys returns every key a collector accepts for p: Keys, or Key
// alone in a Config built in code that set only Key; nil without key.
func (p *Probe) AcceptedKeys() [][]byte {
	if len(p.Keys) > 0 {
		return p.Keys
	}
	if p.Key != nil {
		return [][]byte{p.Key}
	}
	return nil
}

// Interface is one capture point of a probe.
type Interface struct {
	Name string // OS interface name (live) or a label for a capture file
	Hop  string // hop name this interface observes; empty when not on a one-way path
	// Pair names the second port of a passive tap (one direction per
	// port): live capture reads both and merges them in time order as this
	// one interface. Empty: a single port.
	Pair string
	// Fanout is the number of sieve goroutines (each with its own kernel
	// ring, PACKET_FANOUT hash by flow) reading this interface; default 1
	// (0 in a Config built in code means 1).
	Fanout int
	// Cores are the CPUs the Fanout sieve goroutines are pinned to, one
	// each; empty: the probe's Core for a single sieve, unpinned otherwise.
	Cores []int
	Line  int // line of the <interface> element, for messages
}

// Capture holds the live AF_PACKET capture parameters (TPACKET_V3) shared by
// every probe; replayed capture files ignore them.
type Capture struct {
	BlockSize int           // bytes of one ring block; a multiple of 4096; default 1 MiB
	Blocks    int           // blocks in each ring; default 64
	Retire    time.Duration // the kernel hands over a block that is not full after this; default 10ms
	Poll      time.Duration // longest wait in poll before the sieve checks for shutdown; default 100ms
	// Timestamps chooses the capture time source: "auto" (default: the
	// NIC's hardware stamps where it has them, else the kernel's), "kernel",
	// or "hardware" (an interface without them is an error).
	Timestamps string
	// Offload, when true (default), turns off GRO/GSO/TSO/LRO and checksum
	// offload on the capture interfaces, so the probe sees packets as on
	// the wire.
	Offload bool
	// Reorder bounds how long a packet of a tap pair waits for the other
	// port before it is delivered anyway; default 50ms.
	Reorder time.Duration
	Line    int // line of the <capture> element; 0 when absent or built in code
}

// Clock is the clock measurement of the probes against NTP servers and the
// error bound the collector attaches to one-way figures.
type Clock struct {
	Servers []string      // NTP servers (host or host:port); none: unsynchronised unless AssumeSynced
	Period  time.Duration // between two measurements; default 64s
	Budget  time.Duration // largest |offset| + root distance of a synchronised probe; default 1ms
	// AssumeSynced declares the probes' clocks good without measuring:
	// for hosts (or network namespaces) sharing one kernel clock.
	AssumeSynced bool
	Line         int // line of the <clock> element; 0 when absent or built in code
}

// Collector is one collector instance; probes send everything to each.
type Collector struct {
	Name    string
	Address netip.AddrPort // UDP address it listens on
	Spool   string         // spool directory; default "spool/<name>"
	Ops     Ops            // metrics endpoint and log level
	Line    int            // line of the <collector> element, for messages
}

// Class is a flow class: which packets belong to it (Filter), how they split
// into granular flow instances (Granular), which fields NAT may change
// (Mask), and the one-way measurement over its hops (OneWay, optional).
type Class struct {
	Name     string
	Index    int // position in Config.Classes; the class id on the wire
	Filter   Filter
	Granular flow.Set // fields that split the class into instances
	Mask     flow.Set // fields masked to zero before signing (NAT); Src, Dst, SrcPort, DstPort, DSCP, ECN, FlowLabel allowed
	OneWay   *OneWay  // nil when the class has no one-way measurement
	// FTPDataFlags (ftpData="flags"): of the FTP data connections the
	// class's control connections announce, only the SYN, FIN and RST
	// packets are kept in the class (the transfer's bytes still come from
	// their sequence numbers); by default (ftpData="all") every packet.
	FTPDataFlags bool
	Line         int
}

// OneWay is the per-packet one-way measurement of a class.
type OneWay struct {
	Hops       []Hop         // the path, in travel order; at least two
	Pairs      []HopPair     // hop pairs whose delay is histogrammed; default: first→last
	MaxTransit time.Duration // largest plausible first-to-last transit; sightings further apart never match; default 1s
	Timeout    time.Duration // after this (data time, from the first sighting) an incomplete record is lost/missed; default 2×MaxTransit
	DupWindow  time.Duration // a second sighting of a packet at one hop within this is a duplicate; default 1ms
	Resolution time.Duration // time quantum of sightings on the wire; default 1ns (exact)
	Size       bool          // carry the IP length of each sighting
	PerPacket  bool          // write one spool record per reconciled packet
	// Sample is N of sample="1/N": only packets whose signature hash falls
	// in the lowest 1/N of the hash range are sighted, the same packets at
	// every hop (analyse.Selected); 0 and 1 mean every packet. With
	// SampleRange it is derived from the range: 2³² / its width.
	Sample uint32
	// SampleRange is set by sampleRange="0xLO-0xHI" (exclusive with
	// sample): the packets whose mixed signature hash lies in [SampleLo,
	// SampleHi], inclusive, are sighted instead of the lowest 1/N, so
	// that classes or collectors can select disjoint subsets. The width
	// must be a power of two, so that the ratio is 1/N with N an integer.
	SampleRange        bool
	SampleLo, SampleHi uint32
	Line               int // line of the <oneWay> element, for messages
}

// Hop is one named point of a one-way path. A hop may be observed at several
// interfaces (alternative routes); each is "probe/interface".
type Hop struct {
	Name       string
	Interfaces []ProbeInterface
}

// ProbeInterface names an interface of a probe.
type ProbeInterface struct {
	Probe     int // index in Config.Probes
	Interface int // index in Probe.Interfaces
}

// HopPair is a pair of hops whose one-way delay is histogrammed.
type HopPair struct {
	From, To int             // indexes into OneWay.Hops; From < To
	Slices   []time.Duration // ascending slice edges; bin i is [Slices[i-1], Slices[i]); first bin below Slices[0], last at or above the last edge; default DefaultSlices
	Line     int             // line of the <hopPair> element (0 for the default pair), for messages
	// Thresholds are the alarms on this pair's figures (collectors).
	Thresholds []Threshold
}

// Filter is a flow-class filter in trafMon's three-level normal form:
//
//	[NOT] AND( [NOT] OR( [NOT] AND(predicates...) ... ) ... )
//
// An empty Filter matches every IP packet.
type Filter struct {
	Not    bool
	Groups []OrGroup // all must hold
	Line   int       // line of the <filter> element; 0 when absent
}

// OrGroup is the second level: at least one term must hold.
type OrGroup struct {
	Not   bool
	Terms []AndTerm
	Line  int // line of the <or>/<nor> element, or of the lone <match> it was made from
}

// AndTerm is the third level: all predicates must hold.
type AndTerm struct {
	Not   bool
	Preds []Pred
	Line  int // line of the <and>/<nand> element, or of the lone <match> it was made from
}

// Pred is a predicate on one field: the value lies in one of Ranges (numeric
// fields) or in one of Prefixes (address fields).
type Pred struct {
	Field    flow.Field
	Not      bool
	Ranges   []Range        // inclusive; numeric fields
	Prefixes []netip.Prefix // address fields
	Line     int
}

// Range is an inclusive numeric range.
type Range struct{ Lo, Hi uint32 }
