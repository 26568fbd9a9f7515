package conf

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tmon-project/tmon/flow"
)

// Limits of the model, fixed by the components that consume it.
const (
	MaxClasses = 64  // the sieve carries the classes of a packet in a 64-bit mask
	MaxHops    = 8   // hops of one one-way path (sightings of a packet are merged in a fixed array)
	MaxSlices  = 64  // slice edges of one hop-pair histogram
	MinPDUSize = 256 // room for the PDU header and at least a few records
	MaxPDUSize = 65000
)

// MaskAllowed is the set of fields a class may mask before signing: the ones
// that NAT, or a router re-marking traffic, changes on the way.
const MaskAllowed = flow.Set(1<<flow.Src | 1<<flow.Dst | 1<<flow.SrcPort | 1<<flow.DstPort |
	1<<flow.DSCP | 1<<flow.ECN | 1<<flow.FlowLabel)

// Validate checks every rule of the model that Parse checks, so that a Config
// built in code (tests, generators) can be held to the same contract. It
// returns the problems joined (errors.Join), each an *Error naming the line
// recorded in the model, if any.
func (c *Config) Validate() error {
	v := &validator{c: c, errList: errList{file: c.File}}
	if v.file == "" {
		v.file = "config"
	}
	v.config()
	return errors.Join(v.errs...)
}

type validator struct {
	errList
	c *Config
}

func (v *validator) config() {
	c := v.c
	root := elem("tmon")
	switch {
	case c.Interval < time.Second || c.Interval%time.Second != 0:
		v.addf(c.Line, root, "interval=%q: must be a whole number of seconds, at least 1s", c.Interval)
	case time.Hour%c.Interval != 0:
		// Roll-ups into hours and days must not split an interval.
		v.addf(c.Line, root, "interval=%q: must divide one hour evenly (e.g. 10s, 1m, 5m)", c.Interval)
	}
	if !validText(c.Version) {
		v.addf(c.Line, root, "version=%q: no tabs, line breaks or control characters, at most 256 bytes", c.Version)
	}
	v.transport()
	v.limits()
	v.analyses()
	v.capture()
	v.clock()
	if len(c.Collectors) == 0 {
		v.addf(c.Line, root, "no <collector>: give at least one")
	}
	if len(c.Probes) == 0 {
		v.addf(c.Line, root, "no <probe>: give at least one")
	}
	v.alarms()
	v.collectors()
	v.probes()
	v.classes()
}

func (v *validator) transport() {
	t := &v.c.Transport
	e := elem("transport")
	bad := func(attr string, val any, why string) { v.addf(t.Line, e, "%s=%q: %s", attr, fmt.Sprint(val), why) }
	dur := func(attr string, d time.Duration) bool {
		r := TransportRanges[attr]
		if !r.has(int64(d)) {
			bad(attr, d, "must be "+r.durString())
			return false
		}
		return true
	}
	num := func(attr string, n int64) bool {
		r := TransportRanges[attr]
		if !r.has(n) {
			bad(attr, n, "must be "+r.intString())
			return false
		}
		return true
	}
	num("maxPduSize", int64(t.MaxPDUSize))
	num("window", int64(t.Window))
	dur("maxBuildTime", t.MaxBuildTime)
	gapOK := dur("minGap", t.MinGap)
	if dur("initialTimeout", t.InitialTimeout) && gapOK && t.MinGap > t.InitialTimeout {
		bad("minGap", t.MinGap, fmt.Sprintf("must not exceed initialTimeout (%s)", t.InitialTimeout))
	}
	incOK := dur("timeoutIncrement", t.TimeoutIncrement)
	multOK := true
	if math.IsNaN(t.TimeoutMultiplier) || t.TimeoutMultiplier < 1 || t.TimeoutMultiplier > 10 {
		bad("timeoutMultiplier", t.TimeoutMultiplier, "must be between 1 and 10")
		multOK = false
	}
	if num("maxRetries", int64(t.MaxRetries)) && incOK && multOK && t.InitialTimeout > 0 {
		if m := t.MaxAckTimeout(); m > MaxAckTimeout {
			bad("maxRetries", t.MaxRetries, fmt.Sprintf("the ack timeout would grow to %s after the retries, more than %s: fewer retries, a smaller timeoutMultiplier or timeoutIncrement", m, MaxAckTimeout))
		}
	}
	if dur("finalTimeout", t.FinalTimeout) && t.FinalTimeout < t.InitialTimeout {
		bad("finalTimeout", t.FinalTimeout, fmt.Sprintf("must be at least initialTimeout (%s)", t.InitialTimeout))
	}
	dur("breakBorder", t.BreakBorder)
	if num("bandwidth", t.Bandwidth) && t.Bandwidth > 0 && t.Bandwidth < int64(t.MaxPDUSize) {
		bad("bandwidth", t.Bandwidth, fmt.Sprintf("must be at least maxPduSize (%d) bytes per second", t.MaxPDUSize))
	}
	if dur("heartbeat", t.Heartbeat) && t.Heartbeat < t.MinGap {
		bad("heartbeat", t.Heartbeat, fmt.Sprintf("must be at least minGap (%s)", t.MinGap))
	}
}

// MaxAckTimeout returns the ack timeout after the last retry:
// initialTimeout, then ×timeoutMultiplier + timeoutIncrement at each retry
// (transport.BasicPolicy), saturated at an hour past MaxAckTimeout so that
// absurd values cannot overflow.
func (t Transport) MaxAckTimeout() time.Duration {
	limit := float64(MaxAckTimeout + time.Hour)
	d := float64(t.InitialTimeout)
	for range min(max(t.MaxRetries, 0), 1000) {
		d = d*max(t.TimeoutMultiplier, 1) + float64(t.TimeoutIncrement)
		if d > limit || math.IsNaN(d) {
			return time.Duration(limit)
		}
	}
	return time.Duration(d)
}

// Check reports whether t is a valid transport configuration (the rules of
// Validate), for the transport's constructors, which take a Transport built
// in code.
func (t Transport) Check() error {
	v := &validator{c: &Config{Transport: t}, errList: errList{file: "transport"}}
	v.transport()
	return errors.Join(v.errs...)
}

func (v *validator) limits() {
	l := &v.c.Limits
	e := elem("limits")
	for _, x := range []struct {
		attr string
		val  int64
	}{{"maxFlows", int64(l.MaxFlows)}, {"maxSessions", int64(l.MaxSessions)}, {"maxRecords", int64(l.MaxRecords)}, {"maxJournal", l.MaxJournal}} {
		if r := LimitRanges[x.attr]; x.val != 0 && !r.has(x.val) { // 0: the default (Limits.Resolved)
			v.addf(l.Line, e, "%s=\"%d\": must be %s", x.attr, x.val, r.intString())
		}
	}
}

func (v *validator) analyses() {
	an := &v.c.Analyses
	e := elem("analyses")
	for _, x := range []struct {
		attr string
		val  int64
		dur  bool
	}{
		{"rttTimeout", int64(an.RTTTimeout), true}, {"rttMaxPending", int64(an.RTTMaxPending), false},
		{"tcpIdle", int64(an.TCPIdle), true}, {"tcpCloseDelay", int64(an.TCPCloseDelay), true}, {"tcpMaxConns", int64(an.TCPMaxConns), false},
		{"ftpIdle", int64(an.FTPIdle), true}, {"ftpMaxSessions", int64(an.FTPMaxSessions), false},
		{"countersMaxEntries", int64(an.CountersMaxEntries), false},
		{"fragTimeout", int64(an.FragTimeout), true}, {"fragMaxSets", int64(an.FragMaxSets), false},
		{"fragMaxBytes", int64(an.FragMaxBytes), false}, {"fragMaxFrags", int64(an.FragMaxFrags), false},
		{"flowIdle", int64(an.FlowIdle), true}, {"flowMaxInstances", int64(an.FlowMaxInstances), false},
	} {
		r := AnalysesRanges[x.attr]
		switch {
		case x.val == 0 || r.has(x.val): // 0: the default (Analyses.Resolved)
		case x.dur:
			v.addf(an.Line, e, "%s=%q: must be %s", x.attr, time.Duration(x.val).String(), r.durString())
		default:
			v.addf(an.Line, e, "%s=\"%d\": must be %s", x.attr, x.val, r.intString())
		}
	}
}

// CheckAuth enforces authentication by default: every probe has a key, or
// the file says <transport insecure="true"/>. Probes and collectors call it
// at start, `tmon check` reports it; Parse does not, so that tools reading
// a file (reports, the loader) need no keys.
func (c *Config) CheckAuth() error {
	if c.Transport.Insecure {
		return nil
	}
	var errs errList
	errs.file = c.File
	for _, pr := range c.Probes {
		if pr.Key == nil {
			errs.addf(pr.Line, elem("probe", "name", pr.Name), "no key: authentication is on by default; give key or keyFile (tmon keygen makes one), or opt out with <transport insecure=\"true\"/>")
		}
	}
	return errors.Join(errs.errs...)
}

func (v *validator) collectors() {
	names := map[string]int{}
	addrs := map[string]int{}
	for _, col := range v.c.Collectors {
		e := elem("collector", "name", col.Name)
		v.ops(col.Line, e, col.Ops)
		if !validName(col.Name) {
			v.addf(col.Line, e, "name=%q: want %s", col.Name, nameRule)
		} else if l, dup := names[col.Name]; dup {
			v.addf(col.Line, e, "name=%q: already used by the collector on line %d", col.Name, l)
		} else {
			names[col.Name] = col.Line
		}
		a := col.Address
		switch {
		case !a.IsValid():
			v.addf(col.Line, e, "address: missing")
		case a.Port() == 0:
			v.addf(col.Line, e, "address=%q: port 0", a)
		case a.Addr().IsUnspecified() || a.Addr().IsMulticast() || a.Addr().Zone() != "":
			// Probes send to this address: it must name one host.
			v.addf(col.Line, e, "address=%q: want the unicast address probes send to", a)
		default:
			if l, dup := addrs[a.String()]; dup {
				v.addf(col.Line, e, "address=%q: already used by the collector on line %d", a, l)
			}
			addrs[a.String()] = col.Line
		}
		if col.Spool == "" || !validText(col.Spool) {
			v.addf(col.Line, e, "spool=%q: want a directory path", col.Spool)
		}
	}
}

func (v *validator) probes() {
	names := map[string]int{}
	ids := map[uint16]int{}
	keyed := 0
	for _, pr := range v.c.Probes {
		if pr.Key != nil {
			keyed++
		}
	}
	for _, pr := range v.c.Probes {
		e := elem("probe", "name", pr.Name)
		v.ops(pr.Line, e, pr.Ops)
		if keyed > 0 && pr.Key == nil {
			// Authentication is all or nothing: a collector that accepts
			// unauthenticated PDUs from one probe id accepts forgeries of it.
			v.addf(pr.Line, e, "no key: when any probe has a key (authentication on), every probe needs one")
		}
		if !validName(pr.Name) {
			v.addf(pr.Line, e, "name=%q: want %s", pr.Name, nameRule)
		} else if l, dup := names[pr.Name]; dup {
			v.addf(pr.Line, e, "name=%q: already used by the probe on line %d", pr.Name, l)
		} else {
			names[pr.Name] = pr.Line
		}
		if pr.ID == 0 {
			v.addf(pr.Line, e, "id=\"0\": must be 1-65535 (0 marks no probe on the wire)")
		} else if l, dup := ids[pr.ID]; dup {
			v.addf(pr.Line, e, "id=\"%d\": already used by the probe on line %d", pr.ID, l)
		} else {
			ids[pr.ID] = pr.Line
		}
		if pr.Core < -1 || pr.Core > 4095 {
			v.addf(pr.Line, e, "core=\"%d\": want a CPU number, or -1 for none", pr.Core)
		}
		if len(pr.Interfaces) == 0 {
			v.addf(pr.Line, e, "no <interface>: give at least one")
		}
		ifs := map[string]int{}
		for _, in := range pr.Interfaces {
			ie := elem("interface", "name", in.Name)
			if !validIfName(in.Name) {
				v.addf(in.Line, ie, "name=%q: want 1-64 printable ASCII characters, no blanks or '/'", in.Name)
			} else if l, dup := ifs[in.Name]; dup {
				v.addf(in.Line, ie, "name=%q: already used in this probe on line %d", in.Name, l)
			} else {
				ifs[in.Name] = in.Line
			}
			if in.Hop != "" && !validName(in.Hop) {
				v.addf(in.Line, ie, "hop=%q: want %s", in.Hop, nameRule)
			}
			v.liveInterface(&pr, in, ie)
		}
	}
}

// liveInterface checks the live capture attributes of one interface: its
// tap pair, fanout and cores.
func (v *validator) liveInterface(pr *Probe, in Interface, ie string) {
	if in.Pair != "" {
		switch {
		case !validIfName(in.Pair):
			v.addf(in.Line, ie, "pair=%q: want 1-64 printable ASCII characters, no blanks or '/'", in.Pair)
		case in.Pair == in.Name:
			v.addf(in.Line, ie, "pair=%q: the other port of a tap, not the interface itself", in.Pair)
		default:
			for _, o := range pr.Interfaces {
				if o.Line != in.Line && (o.Name == in.Pair || o.Pair == in.Pair) {
					v.addf(in.Line, ie, "pair=%q: already captured by the interface on line %d", in.Pair, o.Line)
					break
				}
			}
		}
	}
	if in.Fanout < 0 || in.Fanout > MaxFanout {
		v.addf(in.Line, ie, "fanout=\"%d\": want 1-%d sieve goroutines", in.Fanout, MaxFanout)
	}
	if n := max(in.Fanout, 1); len(in.Cores) > 0 && len(in.Cores) != n {
		v.addf(in.Line, ie, "cores=%v: want one CPU per fanout goroutine (%d)", in.Cores, n)
	}
	for _, c := range in.Cores {
		if c < 0 || c > 4095 {
			v.addf(in.Line, ie, "cores: %d is not a CPU number", c)
		}
	}
}

// MaxFanout bounds the sieve goroutines of one interface.
const MaxFanout = 64

// capture checks the live capture parameters. A zero value stands for its
// default (a Config built in code need not state them; see Capture.Resolved).
func (v *validator) capture() {
	c := &v.c.Capture
	e := elem("capture")
	if c.BlockSize != 0 && (c.BlockSize < 4096 || c.BlockSize%4096 != 0 || c.BlockSize > 1<<30) {
		v.addf(c.Line, e, "blockSize=\"%d\": want a multiple of 4096 bytes, at most 1 GiB", c.BlockSize)
	}
	if c.Blocks < 0 || c.Blocks > 1<<16 {
		v.addf(c.Line, e, "blocks=\"%d\": want 1-65536", c.Blocks)
	}
	if c.Retire != 0 && c.Retire < time.Millisecond {
		v.addf(c.Line, e, "retire=%q: want at least 1ms", c.Retire)
	}
	if c.Poll != 0 && c.Poll < time.Millisecond {
		v.addf(c.Line, e, "poll=%q: want at least 1ms", c.Poll)
	}
	switch c.Timestamps {
	case "", "auto", "kernel", "hardware":
	default:
		v.addf(c.Line, e, "timestamps=%q: want auto, kernel or hardware", c.Timestamps)
	}
	if c.Reorder < 0 {
		v.addf(c.Line, e, "reorder=%q: want a duration ≥ 0", c.Reorder)
	}
}

// clock checks the clock parameters; zero values stand for the defaults.
func (v *validator) clock() {
	c := &v.c.Clock
	e := elem("clock")
	if c.Period != 0 && c.Period < time.Second {
		v.addf(c.Line, e, "period=%q: want at least 1s (NTP servers limit how often they answer)", c.Period)
	}
	if c.Budget < 0 {
		v.addf(c.Line, e, "budget=%q: want a positive duration", c.Budget)
	}
	for _, s := range c.Servers {
		if strings.ContainsAny(s, "/\"") {
			v.addf(c.Line, e, "servers: %q is not a host or host:port", s)
		}
	}
}
