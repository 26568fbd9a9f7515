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
