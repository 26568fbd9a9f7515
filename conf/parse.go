package conf

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxFileSize bounds what Parse reads: a configuration is a few kilobytes,
// and a component should not exhaust its memory on a wrong file.
const maxFileSize = 4 << 20

// Load reads, checks and returns the configuration file at path. Errors name
// the file, the line and the element; several are joined (errors.Join), each
// an *Error.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads, checks and returns a configuration from r; name is used as the
// file name in Config.File and in errors. Omitted values get the defaults
// documented on the model. Errors of form (unknown element or attribute, bad
// value) are all reported first; only a file free of them is validated
// (Validate), since a half-read element would cause misleading follow-on
// errors.
//
// The grammar (examples/demo.xml and conf/testdata/good-full.xml show it in
// use) is strict: an unknown element or attribute is an error.
//
//	<tmon version validFrom interval>        validFrom: RFC 3339; interval: default 60s
//	  <transport maxPduSize maxBuildTime minGap initialTimeout timeoutIncrement
//	             timeoutMultiplier maxRetries finalTimeout breakBorder heartbeat
//	             bandwidth window insecure/>                                           at most once
//	  <limits maxFlows maxSessions maxRecords maxJournal/>                    at most once
//	  <analyses rttTimeout rttMaxPending tcpIdle tcpCloseDelay tcpMaxConns
//	            ftpIdle ftpMaxSessions countersMaxEntries fragTimeout
//	            fragMaxSets fragMaxBytes fragMaxFrags flowIdle
//	            flowMaxInstances/>                                           at most once
//	  <collector name address spool/>        address: IP:port, [IPv6]:port or localhost:port
//	  <probe name id core>                   id: 1-65535
//	    <interface name hop/>
//	  <flowClass name>                       at most 64
//	    <filter not>                         AND of its children
//	      <match field value not/>
//	      <or not> | <nor>                   OR of its children
//	        <match .../>
//	        <and not> | <nand>               AND of its <match> children
//	    <granular fields/>                   field names, blank-separated
//	    <mask fields/>
//	    <oneWay hops maxTransit timeout dupWindow resolution perPacket size sample sampleRange>
//	      <hopPair from to slices>           default: first to last hop, 1ms to 1s
//	        <threshold metric above clear learn factor clearFactor after clearAfter/>
//	<alarms webhook trap community/>         at most once
//
// Durations use Go syntax (500ms, 1m30s); a bare number other than 0 is an
// error, never silently seconds. Booleans are true/false or 1/0. A match
// value is a comma-separated list of N or N-M (ip.proto also takes names
// such as tcp, udp, icmpv6), or for ip.src and ip.dst of addresses and CIDR
// prefixes, IPv4 or IPv6.
func Parse(r io.Reader, name string) (*Config, error) {
	root, err := readTree(r, name)
	if err != nil {
		return nil, err
	}
	p := &parser{errList: errList{file: name}}
	c := p.config(root)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	c.File = name
	resolveHops(c)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// parser turns the node tree into a Config, collecting errors.
type parser struct {
	errList
}

// label renders n with its identifying attributes for messages.
func label(n *node) string {
	var keys []string
	switch n.name {
	case "match":
		keys = []string{"field"}
	case "probe", "collector", "flowClass", "interface":
		keys = []string{"name"}
	case "oneWay":
		keys = []string{"hops"}
	case "hopPair":
		keys = []string{"from", "to"}
	}
	var kv []string
	for _, k := range keys {
		for _, a := range n.attrs {
			if a.Name.Space == "" && a.Name.Local == k {
				kv = append(kv, k, a.Value)
				break
			}
		}
	}
	return elem(n.name, kv...)
}

func (p *parser) errf(n *node, format string, args ...any) {
	p.addf(n.line, label(n), format, args...)
}

// unknownKid reports a child element not allowed under parent.
func (p *parser) unknownKid(parent, kid *node, known ...string) {
	p.errf(kid, "unknown element in <%s> (known: %s)", parent.name, strings.Join(known, ", "))
}

// once reports a second occurrence of an element allowed once.
func (p *parser) once(seen *bool, n *node) bool {
	if *seen {
		p.errf(n, "given twice (allowed once)")
		return false
	}
	*seen = true
	return true
}

func (p *parser) config(root *node) *Config {
	c := &Config{Interval: DefaultInterval, Transport: DefaultTransport(), Limits: DefaultLimits(), Analyses: DefaultAnalyses(), Capture: DefaultCapture(), Clock: DefaultClock(), Line: root.line}
	if root.name != "tmon" {
		p.errf(root, "root element must be <tmon>")
		return c
	}
	a := p.attrs(root, "version", "validFrom", "interval")
	c.Version = a.vals["version"]
	if v, ok := a.vals["validFrom"]; ok {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			a.bad("validFrom", errors.New("want an RFC 3339 time such as 2026-01-01T00:00:00Z"))
		}
		c.ValidFrom = t.UTC()
	}
	a.duration("interval", &c.Interval)
	var seenTransport, seenLimits, seenAnalyses, seenCapture, seenClock, seenAlarms bool
	for _, k := range root.kids {
		switch k.name {
		case "transport":
			if p.once(&seenTransport, k) {
				p.transport(k, &c.Transport)
			}
		case "limits":
			if p.once(&seenLimits, k) {
				p.limits(k, &c.Limits)
			}
		case "analyses":
			if p.once(&seenAnalyses, k) {
				p.analyses(k, &c.Analyses)
			}
		case "capture":
			if p.once(&seenCapture, k) {
				p.capture(k, &c.Capture)
			}
		case "clock":
			if p.once(&seenClock, k) {
				p.clock(k, &c.Clock)
			}
		case "alarms":
			if p.once(&seenAlarms, k) {
				p.alarms(k, &c.Alarms)
			}
		case "collector":
			c.Collectors = append(c.Collectors, p.collector(k))
		case "probe":
			c.Probes = append(c.Probes, p.probe(k))
		case "flowClass":
			cl := p.class(k)
			cl.Index = len(c.Classes)
			c.Classes = append(c.Classes, cl)
		default:
			p.unknownKid(root, k, "transport", "limits", "analyses", "capture", "clock", "alarms", "collector", "probe", "flowClass")
		}
	}
	return c
}

func (p *parser) transport(n *node, t *Transport) {
	a := p.attrs(n, "maxPduSize", "maxBuildTime", "minGap", "initialTimeout", "timeoutIncrement",
		"timeoutMultiplier", "maxRetries", "finalTimeout", "breakBorder", "heartbeat", "bandwidth", "window", "insecure")
	t.Line = n.line
	a.integer("maxPduSize", &t.MaxPDUSize)
	a.duration("maxBuildTime", &t.MaxBuildTime)
	a.duration("minGap", &t.MinGap)
	a.duration("initialTimeout", &t.InitialTimeout)
	a.duration("timeoutIncrement", &t.TimeoutIncrement)
	a.float("timeoutMultiplier", &t.TimeoutMultiplier)
	a.integer("maxRetries", &t.MaxRetries)
	a.integer("window", &t.Window)
	a.duration("finalTimeout", &t.FinalTimeout)
	a.duration("breakBorder", &t.BreakBorder)
	a.duration("heartbeat", &t.Heartbeat)
	if v, ok := a.vals["bandwidth"]; ok {
		bw, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			a.bad("bandwidth", errors.New("want bytes per second, an integer"))
		}
		t.Bandwidth = bw
	}
	a.boolean("insecure", &t.Insecure)
	p.noKids(n)
}

func (p *parser) limits(n *node, l *Limits) {
	a := p.attrs(n, "maxFlows", "maxSessions", "maxRecords", "maxJournal")
	l.Line = n.line
	a.integer("maxFlows", &l.MaxFlows)
	a.integer("maxSessions", &l.MaxSessions)
	a.integer("maxRecords", &l.MaxRecords)
	if v, ok := a.vals["maxJournal"]; ok {
		j, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			a.bad("maxJournal", errors.New("want bytes, an integer"))
		}
		l.MaxJournal = j
	}
	p.noKids(n)
}

func (p *parser) analyses(n *node, an *Analyses) {
	a := p.attrs(n, "rttTimeout", "rttMaxPending", "tcpIdle", "tcpCloseDelay", "tcpMaxConns", "ftpIdle", "ftpMaxSessions",
		"countersMaxEntries", "fragTimeout", "fragMaxSets", "fragMaxBytes", "fragMaxFrags", "flowIdle", "flowMaxInstances")
	an.Line = n.line
	a.duration("rttTimeout", &an.RTTTimeout)
	a.integer("rttMaxPending", &an.RTTMaxPending)
	a.duration("tcpIdle", &an.TCPIdle)
	a.duration("tcpCloseDelay", &an.TCPCloseDelay)
	a.integer("tcpMaxConns", &an.TCPMaxConns)
	a.duration("ftpIdle", &an.FTPIdle)
	a.integer("ftpMaxSessions", &an.FTPMaxSessions)
	a.integer("countersMaxEntries", &an.CountersMaxEntries)
	a.duration("fragTimeout", &an.FragTimeout)
	a.integer("fragMaxSets", &an.FragMaxSets)
	a.integer("fragMaxBytes", &an.FragMaxBytes)
	a.integer("fragMaxFrags", &an.FragMaxFrags)
	a.duration("flowIdle", &an.FlowIdle)
	a.integer("flowMaxInstances", &an.FlowMaxInstances)
	p.noKids(n)
}

func (p *parser) capture(n *node, c *Capture) {
	a := p.attrs(n, "blockSize", "blocks", "retire", "poll", "timestamps", "offload", "reorder")
	c.Line = n.line
	a.integer("blockSize", &c.BlockSize)
	a.integer("blocks", &c.Blocks)
	a.duration("retire", &c.Retire)
	a.duration("poll", &c.Poll)
	if v, ok := a.vals["timestamps"]; ok {
		c.Timestamps = v
	}
	a.boolean("offload", &c.Offload)
	a.duration("reorder", &c.Reorder)
	p.noKids(n)
}

func (p *parser) clock(n *node, c *Clock) {
	a := p.attrs(n, "servers", "period", "budget", "assumeSynced")
	c.Line = n.line
	if v, ok := a.vals["servers"]; ok {
		c.Servers = strings.Fields(v)
	}
	a.duration("period", &c.Period)
	a.duration("budget", &c.Budget)
	a.boolean("assumeSynced", &c.AssumeSynced)
	p.noKids(n)
}

// noKids reports every child of an element that takes none.
func (p *parser) noKids(n *node) {
	for _, k := range n.kids {
		p.errf(k, "unknown element in <%s> (it takes no elements)", n.name)
	}
}

func (p *parser) collector(n *node) Collector {
	a := p.attrs(n, "name", "address", "spool", "logLevel")
	c := Collector{Line: n.line, Ops: Ops{LogLevel: DefaultLogLevel}}
	if v, ok := a.vals["logLevel"]; ok {
		c.Ops.LogLevel = v
	}
	c.Name, _ = a.required("name")
	if v, ok := a.required("address"); ok {
		ap, err := parseAddrPort(v)
		if err != nil {
			a.bad("address", err)
		}
		c.Address = ap
	}
	c.Spool = DefaultSpool(c.Name)
	if v, ok := a.vals["spool"]; ok {
		c.Spool = v
	}
	seenMetrics := false
	for _, k := range n.kids {
		if k.name != "metrics" {
			p.unknownKid(n, k, "metrics")
		} else if p.once(&seenMetrics, k) {
			p.metrics(k, &c.Ops)
		}
	}
	return c
}

func (p *parser) probe(n *node) Probe {
	a := p.attrs(n, "name", "id", "core", "key", "keyFile", "logLevel")
	pr := Probe{Core: DefaultCore, Line: n.line, Ops: Ops{LogLevel: DefaultLogLevel}}
	if v, ok := a.vals["logLevel"]; ok {
		pr.Ops.LogLevel = v
	}
	p.probeKey(a, &pr)
	pr.Name, _ = a.required("name")
	if v, ok := a.required("id"); ok {
		id, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			a.bad("id", errors.New("want an integer 1-65535"))
		}
		pr.ID = uint16(id)
	}
	a.integer("core", &pr.Core)
	seenMetrics := false
	for _, k := range n.kids {
		if k.name == "metrics" {
			if p.once(&seenMetrics, k) {
				p.metrics(k, &pr.Ops)
			}
			continue
		}
		if k.name != "interface" {
			p.unknownKid(n, k, "interface", "metrics")
			continue
		}
		ia := p.attrs(k, "name", "hop", "pair", "fanout", "cores")
		in := Interface{Fanout: 1, Line: k.line}
		in.Name, _ = ia.required("name")
		in.Hop = ia.vals["hop"]
		in.Pair = ia.vals["pair"]
		ia.integer("fanout", &in.Fanout)
		if v, ok := ia.vals["cores"]; ok {
			for f := range strings.SplitSeq(v, ",") {
				c, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil {
					ia.bad("cores", errors.New("want comma-separated CPU numbers such as 1,2"))
					break
				}
				in.Cores = append(in.Cores, c)
			}
		}
		p.noKids(k)
		pr.Interfaces = append(pr.Interfaces, in)
	}
	return pr
}

// resolveHops fills Hop.Interfaces of every one-way path: every interface,
// in document order, whose hop attribute names the hop.
func resolveHops(c *Config) {
	for ci := range c.Classes {
		ow := c.Classes[ci].OneWay
		if ow == nil {
			continue
		}
		for hi := range ow.Hops {
			ow.Hops[hi].Interfaces = c.interfacesOf(ow.Hops[hi].Name)
		}
	}
}

// interfacesOf lists the interfaces observing hop.
func (c *Config) interfacesOf(hop string) []ProbeInterface {
	var out []ProbeInterface
	for pi, pr := range c.Probes {
		for ii, in := range pr.Interfaces {
			if in.Hop == hop {
				out = append(out, ProbeInterface{Probe: pi, Interface: ii})
			}
		}
	}
	return out
}

// probeKey reads the probe's authentication key: key="hex", or keyFile, a
// file (relative to the configuration's directory) holding the key in hex.
// The key itself never appears in a message.
func (p *parser) probeKey(a attrs, pr *Probe) {
	hexKey, hasKey := a.vals["key"]
	file, hasFile := a.vals["keyFile"]
	switch {
	case hasKey && hasFile:
		p.errf(a.n, "give key or keyFile, not both")
		return
	case hasFile:
		pr.KeyFile = file
		path := file
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(p.errList.file), path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			a.bad("keyFile", errors.New("cannot read the file"))
			return
		}
		hexKey = strings.TrimSpace(string(b))
	case !hasKey:
		return
	}
	// A keyFile may hold several keys, one a line, while keys are rolled:
	// the first signs, every one is accepted.
	lines := strings.Fields(hexKey)
	for i, line := range lines {
		which := "key"
		if len(lines) > 1 {
			which = fmt.Sprintf("key %d", i+1)
		}
		k, err := hex.DecodeString(line)
		switch {
		case err != nil:
			p.errf(a.n, "%s: not hexadecimal", which)
			return
		case len(k) < 16 || len(k) > 64:
			p.errf(a.n, "%s: %d bytes, want 16 to 64 (32 hex digits or more)", which, len(k))
			return
		}
		pr.Keys = append(pr.Keys, k)
	}
	switch {
	case len(pr.Keys) == 0:
		p.errf(a.n, "key: empty")
	case hasKey && len(pr.Keys) > 1:
		p.errf(a.n, "key: one key (several, to roll keys, go into a keyFile)")
		pr.Keys = nil
	default:
		pr.Key = pr.Keys[0]
	}
}
