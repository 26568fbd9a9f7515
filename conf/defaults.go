package conf

import (
	"cmp"
	"fmt"
	"time"
)

// Defaults of the values an XML file may leave out. They are applied by Parse
// only: a Config built in code states every value (start from
// DefaultTransport and DefaultSlices).
const (
	DefaultInterval   = 60 * time.Second
	DefaultCore       = -1 // sieve not pinned
	DefaultMaxTransit = time.Second
	DefaultDupWindow  = time.Millisecond
	DefaultResolution = time.Nanosecond
	// DefaultLogLevel is the log level of a probe or collector without
	// logLevel (and of the daemons the configuration does not name).
	DefaultLogLevel = "info"
	// DefaultMetricsListen is where <metrics/> without listen serves a
	// daemon's Prometheus metrics: loopback, the port registered for
	// OpenTelemetry/Prometheus exporters. Daemons sharing a host need a
	// listen each.
	DefaultMetricsListen = "127.0.0.1:9464"
	// CaptureIdle is how long a live interface may see no packet before
	// its probe raises a capture.idle event (capture.active when traffic
	// returns).
	CaptureIdle = 60 * time.Second
	// RingCalm is how long the sieve→analyser ring of a live probe must
	// stay clear of saturation before ring.saturated is followed by
	// ring.recovered: a ring that fills every other second is one episode.
	RingCalm = 5 * time.Second
	// RetryReport is how often a probe reports the PDU retransmissions
	// to each collector of the period just ended (event
	// transport.retries), when there were any.
	RetryReport = 10 * time.Second
)

// DefaultSpool is the spool directory of a collector that names none.
func DefaultSpool(collector string) string { return "spool/" + collector }

// DefaultTransport returns the transport parameters used for every attribute
// a <transport> element leaves out (and when it is absent).
func DefaultTransport() Transport {
	return Transport{
		MaxPDUSize:        1400, // fits an Ethernet MTU with IP and UDP headers, IPv6 included
		MaxBuildTime:      time.Second,
		MinGap:            20 * time.Microsecond, // the ack window paces; this only spaces datagrams
		Window:            64,                    // 90 KB of 1400-byte PDUs: within a collector's default socket buffer
		InitialTimeout:    500 * time.Millisecond,
		TimeoutIncrement:  500 * time.Millisecond,
		TimeoutMultiplier: 1,
		MaxRetries:        5,
		FinalTimeout:      10 * time.Minute,
		BreakBorder:       30 * time.Second,
		Heartbeat:         5 * time.Second,
	}
}

// DefaultLimits returns the collector resource bounds used for every
// attribute a <limits> element leaves out (and when it is absent).
func DefaultLimits() Limits {
	return Limits{
		MaxFlows:    1 << 20,
		MaxSessions: 1024,
		MaxRecords:  4 << 20, // ~100 B a record: well under 1 GiB
		MaxJournal:  1 << 30,
	}
}

// DefaultAnalyses returns the probe's analysis bounds used for every
// attribute an <analyses> element leaves out (and when it is absent). The
// analyses' packages take them for a zero value too: this is the one
// place they are set.
func DefaultAnalyses() Analyses {
	return Analyses{
		RTTTimeout:         10 * time.Second,
		RTTMaxPending:      1 << 18, // ~150 B a request: ~40 MB
		TCPIdle:            5 * time.Minute,
		TCPCloseDelay:      5 * time.Second,
		TCPMaxConns:        1 << 18, // ~400 B a connection: ~100 MB
		FTPIdle:            5 * time.Minute,
		FTPMaxSessions:     1 << 14,
		CountersMaxEntries: 1 << 20, // ~80 B an entry: ~80 MB
		FragTimeout:        time.Second,
		FragMaxSets:        4096,
		FragMaxBytes:       16 << 20,
		FragMaxFrags:       64,
		FlowIdle:           10 * time.Minute,
		FlowMaxInstances:   1 << 20, // ~100 B an instance
	}
}

// AnalysesRanges are the allowed ranges of the <analyses> values.
var AnalysesRanges = map[string]Span{
	"rttTimeout":         {int64(time.Millisecond), int64(time.Hour)},
	"rttMaxPending":      {1 << 6, 1 << 26},
	"tcpIdle":            {int64(time.Second), int64(24 * time.Hour)},
	"tcpCloseDelay":      {int64(time.Millisecond), int64(time.Hour)},
	"tcpMaxConns":        {1 << 6, 1 << 26},
	"ftpIdle":            {int64(time.Second), int64(24 * time.Hour)},
	"ftpMaxSessions":     {1 << 4, 1 << 22},
	"countersMaxEntries": {1 << 6, 1 << 26},
	"fragTimeout":        {int64(time.Millisecond), int64(2 * time.Minute)},
	"fragMaxSets":        {1 << 4, 1 << 20},
	"fragMaxBytes":       {1 << 16, 1 << 32},
	"fragMaxFrags":       {2, 8192}, // 8192: a 64 KiB datagram in 8-byte pieces
	"flowIdle":           {int64(time.Second), int64(24 * time.Hour)},
	"flowMaxInstances":   {1 << 6, 1 << 26},
}

// Resolved returns a with every zero value replaced by its default.
func (a Analyses) Resolved() Analyses {
	d := DefaultAnalyses()
	a.RTTTimeout = cmp.Or(a.RTTTimeout, d.RTTTimeout)
	a.RTTMaxPending = cmp.Or(a.RTTMaxPending, d.RTTMaxPending)
	a.TCPIdle = cmp.Or(a.TCPIdle, d.TCPIdle)
	a.TCPCloseDelay = cmp.Or(a.TCPCloseDelay, d.TCPCloseDelay)
	a.TCPMaxConns = cmp.Or(a.TCPMaxConns, d.TCPMaxConns)
	a.FTPIdle = cmp.Or(a.FTPIdle, d.FTPIdle)
	a.FTPMaxSessions = cmp.Or(a.FTPMaxSessions, d.FTPMaxSessions)
	a.CountersMaxEntries = cmp.Or(a.CountersMaxEntries, d.CountersMaxEntries)
	a.FragTimeout = cmp.Or(a.FragTimeout, d.FragTimeout)
	a.FragMaxSets = cmp.Or(a.FragMaxSets, d.FragMaxSets)
	a.FragMaxBytes = cmp.Or(a.FragMaxBytes, d.FragMaxBytes)
	a.FragMaxFrags = cmp.Or(a.FragMaxFrags, d.FragMaxFrags)
	a.FlowIdle = cmp.Or(a.FlowIdle, d.FlowIdle)
	a.FlowMaxInstances = cmp.Or(a.FlowMaxInstances, d.FlowMaxInstances)
	return a
}

// Span is the allowed range of a duration or size of the configuration,
// inclusive. Every transport and limits value has one (Validate checks them;
// the README's configuration table quotes them).
type Span struct{ Lo, Hi int64 }

func (s Span) has(v int64) bool { return v >= s.Lo && v <= s.Hi }

// durString renders the bounds of a duration span for messages.
func (s Span) durString() string {
	return fmt.Sprintf("between %s and %s", time.Duration(s.Lo), time.Duration(s.Hi))
}

func (s Span) intString() string { return fmt.Sprintf("between %d and %d", s.Lo, s.Hi) }

// TransportRanges are the allowed ranges of the <transport> durations and
// sizes, by attribute. Relations between them (minGap ≤ initialTimeout ≤
// finalTimeout, heartbeat ≥ minGap, the largest ack timeout ≤ MaxAckTimeout)
// are checked besides.
var TransportRanges = map[string]Span{
	"maxPduSize":       {MinPDUSize, MaxPDUSize},
	"maxBuildTime":     {int64(time.Millisecond), int64(time.Hour)},
	"minGap":           {int64(time.Microsecond), int64(time.Second)},
	"initialTimeout":   {int64(time.Millisecond), int64(time.Hour)},
	"timeoutIncrement": {0, int64(time.Hour)},
	"maxRetries":       {0, 1000},
	"window":           {1, 4096}, // at most the collector's duplicate window (transport.ReceiverOptions.Window)
	"finalTimeout":     {int64(time.Millisecond), int64(24 * time.Hour)},
	"breakBorder":      {int64(time.Millisecond), int64(24 * time.Hour)},
	"heartbeat":        {int64(time.Millisecond), int64(time.Hour)},
	"bandwidth":        {0, 10_000_000_000}, // bytes/s; 0: no cap
}

// MaxAckTimeout bounds the longest ack timeout the retry series reaches
// (initialTimeout × timeoutMultiplier^k + increments): beyond a day a
// probe would wait longer for an ack than any collector waits for it.
const MaxAckTimeout = 24 * time.Hour

// LimitRanges are the allowed ranges of the <limits> values.
var LimitRanges = map[string]Span{
	"maxFlows":    {1, 1 << 24},
	"maxSessions": {1, 1 << 16},
	"maxRecords":  {1 << 10, 1 << 27},
	"maxJournal":  {1 << 20, 1 << 40},
}

// DefaultCapture returns the live capture parameters used for every
// attribute a <capture> element leaves out (and when it is absent).
func DefaultCapture() Capture {
	return Capture{
		BlockSize:  1 << 20,
		Blocks:     64, // 64 MiB a ring: about half a second of a saturated 1 Gbit/s link
		Retire:     10 * time.Millisecond,
		Poll:       100 * time.Millisecond,
		Timestamps: "auto",
		Offload:    true,
		Reorder:    50 * time.Millisecond,
	}
}

// DefaultClock returns the clock parameters used for every attribute a
// <clock> element leaves out (and when it is absent).
func DefaultClock() Clock {
	return Clock{Period: 64 * time.Second, Budget: time.Millisecond}
}

// Resolved returns c with every zero value replaced by its default (Offload
// is kept as given: false is a choice).
func (c Capture) Resolved() Capture {
	d := DefaultCapture()
	c.BlockSize = cmp.Or(c.BlockSize, d.BlockSize)
	c.Blocks = cmp.Or(c.Blocks, d.Blocks)
	c.Retire = cmp.Or(c.Retire, d.Retire)
	c.Poll = cmp.Or(c.Poll, d.Poll)
	c.Timestamps = cmp.Or(c.Timestamps, d.Timestamps)
	c.Reorder = cmp.Or(c.Reorder, d.Reorder)
	return c
}

// Resolved returns l with every zero value replaced by its default.
func (l Limits) Resolved() Limits {
	d := DefaultLimits()
	l.MaxFlows = cmp.Or(l.MaxFlows, d.MaxFlows)
	l.MaxSessions = cmp.Or(l.MaxSessions, d.MaxSessions)
	l.MaxRecords = cmp.Or(l.MaxRecords, d.MaxRecords)
	l.MaxJournal = cmp.Or(l.MaxJournal, d.MaxJournal)
	return l
}

// Resolved returns c with a zero Period or Budget replaced by its default.
func (c Clock) Resolved() Clock {
	d := DefaultClock()
	c.Period = cmp.Or(c.Period, d.Period)
	c.Budget = cmp.Or(c.Budget, d.Budget)
	return c
}

// DefaultSlices returns the histogram slice edges of a hop pair that names
// none: a 1-2-5 series from 1ms to 1s. A new slice each call, so callers may
// keep it.
func DefaultSlices() []time.Duration {
	return []time.Duration{
		1 * time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
		10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second,
	}
}

// DefaultSieveRing is the capacity of a probe's sieve→analyser ring, in
// records, unless a probe is told otherwise: how far its sieves may read
// ahead of its analyser.
const DefaultSieveRing = 1 << 16

// SessionFlowShare is a probe session's share of the collectors' flow ids:
// half of maxFlows over the probes, so that every probe's current session
// and the one it just ended fit. A probe rolls to a new session once its
// session has announced that many (probe/roll.go).
func (c *Config) SessionFlowShare() int {
	return max(c.Limits.Resolved().MaxFlows/(2*max(len(c.Probes), 1)), 1)
}

// FlowShareWarning says why a session's share of the collectors' flow ids
// is too small for a probe whose sieves read up to ring records ahead of
// its analyser ("" when it is not): the roll's cut takes effect only after
// what the sieves have read, so at a full-speed replay with heavy flow
// churn a session could pass <limits maxFlows> before it rolls.
func (c *Config) FlowShareWarning(ring int) string {
	share := c.SessionFlowShare()
	if share >= ring {
		return ""
	}
	return fmt.Sprintf("a probe session's share of the collectors' flow ids (maxFlows %d / (2 × %d probes) = %d) is smaller than the sieve ring (%d records): with heavy flow churn at full-speed replay a session may pass maxFlows before it rolls; raise maxFlows to at least %d",
		c.Limits.Resolved().MaxFlows, max(len(c.Probes), 1), share, ring, 2*max(len(c.Probes), 1)*ring)
}
