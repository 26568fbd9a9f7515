// Package counters is the protocol analysis that counts, per flow instance
// and interval, what every class saw at each interface of the probe, one-way
// or not: packets (a datagram reassembled from fragments counts once), bytes,
// the IP fragments they were made of, ICMP errors caused by the flow, and the
// packet sizes as count/sum/sum of squares/min/max (statistics that merge
// without loss through the loader's roll-ups). It plugs into the analyser
// stage (analyse.Analysis) and sends pdu.Counters records; the collector
// writes them to the flow_counters spool type (docs/spool.md).
//
// Intervals are those of the configuration, in data time: a record of
// interval [s, s+I) leaves once the analyser says every packet captured
// before s+I has been seen. Memory is bounded by MaxEntries: when the table
// of open (flow, interval) entries is full, the open entries are sent
// early; the records of one flow and interval then add up downstream.
package counters

import (
	"fmt"
	"github.com/tmon-project/tmon/conf"
	"math/bits"
	"time"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/sieve"
)

// Output receives the counters records.
type Output interface {
	Counters(c pdu.Counters)
}

type key struct {
	start int64
	flow  uint32
}

type acc struct {
	packets, bytes, frags, icmp, sumsq uint64
	min, max                           uint32
}

// Counter is the counters analysis of one probe.
type Counter struct {
	out      Output
	interval int64
	max      int
	// open maps an entry to its accumulator in accs: one map lookup per
	// class of a packet, where a map of values took a lookup and an
	// assignment (a fifth of a counting-only replay's analysis time).
	open   map[key]int32
	accs   []acc
	free   []int32 // indexes of accs no entry uses
	oldest int64   // smallest interval start in open (valid when open is not empty)
	// Stats
	Early uint64 // entries sent before their interval ended (table full)
}

var _ analyse.Analysis = (*Counter)(nil)

// New returns a counters analysis for intervals of length interval
// (conf.Config.Interval) holding at most maxEntries (flow, interval)
// entries, about 80 bytes each; maxEntries ≤ 0 takes the default of
// <analyses countersMaxEntries> (conf.DefaultAnalyses).
func New(interval time.Duration, maxEntries int, out Output) *Counter {
	if maxEntries <= 0 {
		maxEntries = conf.DefaultAnalyses().CountersMaxEntries
	}
	return &Counter{out: out, interval: int64(interval), max: maxEntries, open: make(map[key]int32)}
}

func (c *Counter) startOf(ts int64) int64 {
	r := ts % c.interval
	if r < 0 {
		r += c.interval
	}
	return ts - r
}

// Packet counts rec in the flow instance of each of its classes.
func (c *Counter) Packet(rec *sieve.Record, ids *analyse.FlowIDs) {
	start := c.startOf(rec.TS)
	icmpErr := rec.Flags&sieve.FlagICMPError != 0
	// A reassembled datagram counts once, with the fragments it was made
	// of; a fragment that could not be reassembled counts as a packet and
	// a fragment.
	frags := uint64(rec.Frags)
	if rec.Flags&sieve.FlagFragment != 0 {
		frags = 1
	}
	size := rec.Length
	for m := rec.Classes; m != 0; m &= m - 1 {
		k := key{start, ids.Of(bits.TrailingZeros64(m))}
		i, ok := c.open[k]
		if !ok {
			if len(c.open) >= c.max {
				c.flushAll()
				c.Early++
			}
			if len(c.open) == 0 || start < c.oldest {
				c.oldest = start
			}
			i = c.alloc()
			c.open[k] = i
		}
		a := &c.accs[i]
		if icmpErr {
			a.icmp++
		} else {
			if a.packets == 0 || size < a.min {
				a.min = size
			}
			a.max = max(a.max, size)
			a.packets++
			a.bytes += uint64(size)
			a.sumsq += uint64(size) * uint64(size)
			a.frags += frags
		}
	}
}

// alloc returns the index of a zero accumulator.
func (c *Counter) alloc() int32 {
	if n := len(c.free); n > 0 {
		i := c.free[n-1]
		c.free = c.free[:n-1]
		c.accs[i] = acc{}
		return i
	}
	c.accs = append(c.accs, acc{})
	return int32(len(c.accs) - 1)
}

// Advance sends the entries of the intervals that ended by now.
func (c *Counter) Advance(now int64) {
	if len(c.open) == 0 || c.oldest+c.interval > now {
		return
	}
	oldest := int64(0)
	first := true
	for k, i := range c.open {
		if k.start+c.interval <= now {
			c.send(k, c.accs[i])
			delete(c.open, k)
			c.free = append(c.free, i)
			continue
		}
		if first || k.start < oldest {
			oldest, first = k.start, false
		}
	}
	c.oldest = oldest
}

// Close sends every entry.
func (c *Counter) Close() { c.flushAll() }

func (c *Counter) flushAll() {
	for k, i := range c.open {
		c.send(k, c.accs[i])
	}
	clear(c.open)
	c.accs, c.free = c.accs[:0], c.free[:0]
}

func (c *Counter) send(k key, a acc) {
	c.out.Counters(pdu.Counters{
		Flow: k.flow, Start: k.start,
		Packets: a.packets, Bytes: a.bytes, Fragments: a.frags, ICMPErrors: a.icmp,
		SizeSumSq: a.sumsq, SizeMin: a.min, SizeMax: a.max,
	})
}

// Len returns the entries held (for memory tests).
func (c *Counter) Len() int { return len(c.open) }

// MaxEntries returns the bound on the entries held.
func (c *Counter) MaxEntries() int { return c.max }

// Summary says what the memory bound cost, for the probe's analysis.bound
// event; "" when nothing.
func (c *Counter) Summary() string {
	if c.Early == 0 {
		return ""
	}
	return fmt.Sprintf("counter entries sent before their interval ended (table full, %d)=%d", c.max, c.Early)
}
