package conf

import "time"

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
)

// DefaultSpool is the spool directory of a collector that names none.
func DefaultSpool(collector string) string { return "spool/" + collector }

// DefaultTransport returns the transport parameters used for every attribute
// a <transport> element leaves out (and when it is absent).
func DefaultTransport() Transport {
	return Transport{
		MaxPDUSize:        1400, // fits an Ethernet MTU with IP and UDP headers, IPv6 included
		MaxBuildTime:      time.Second,
		MinGap:            2 * time.Millisecond,
		InitialTimeout:    500 * time.Millisecond,
		TimeoutIncrement:  500 * time.Millisecond,
		TimeoutMultiplier: 1,
		MaxRetries:        5,
		FinalTimeout:      10 * time.Minute,
		BreakBorder:       30 * time.Second,
		Heartbeat:         5 * time.Second,
	}
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
	if c.BlockSize == 0 {
		c.BlockSize = d.BlockSize
	}
	if c.Blocks == 0 {
		c.Blocks = d.Blocks
	}
	if c.Retire == 0 {
		c.Retire = d.Retire
	}
	if c.Poll == 0 {
		c.Poll = d.Poll
	}
	if c.Timestamps == "" {
		c.Timestamps = d.Timestamps
	}
	if c.Reorder == 0 {
		c.Reorder = d.Reorder
	}
	return c
}

// Resolved returns c with a zero Period or Budget replaced by its default.
func (c Clock) Resolved() Clock {
	d := DefaultClock()
	if c.Period == 0 {
		c.Period = d.Period
	}
	if c.Budget == 0 {
		c.Budget = d.Budget
	}
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
