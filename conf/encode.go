package conf

import (
	"bufio"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// WriteXML writes c as a configuration file that Parse reads back to an
// equal Config (but for File and the Line fields). Every value is written,
// defaults included, so the output documents what a component will use.
func (c *Config) WriteXML(w io.Writer) error {
	e := &encoder{w: bufio.NewWriter(w)}
	e.line(0, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
	root := []string{"version", c.Version}
	if !c.ValidFrom.IsZero() {
		root = append(root, "validFrom", c.ValidFrom.Format(time.RFC3339Nano))
	}
	root = append(root, "interval", c.Interval.String())
	e.open(0, "tmon", false, root...)
	t := c.Transport
	e.open(1, "transport", true,
		"maxPduSize", strconv.Itoa(t.MaxPDUSize),
		"maxBuildTime", t.MaxBuildTime.String(),
		"minGap", t.MinGap.String(),
		"initialTimeout", t.InitialTimeout.String(),
		"timeoutIncrement", t.TimeoutIncrement.String(),
		"timeoutMultiplier", strconv.FormatFloat(t.TimeoutMultiplier, 'g', -1, 64),
		"maxRetries", strconv.Itoa(t.MaxRetries),
		"finalTimeout", t.FinalTimeout.String(),
		"breakBorder", t.BreakBorder.String(),
		"heartbeat", t.Heartbeat.String(),
		"bandwidth", strconv.FormatInt(t.Bandwidth, 10),
		"window", strconv.Itoa(t.Window),
		"insecure", strconv.FormatBool(t.Insecure))
	l := c.Limits
	e.open(1, "limits", true,
		"maxFlows", strconv.Itoa(l.MaxFlows),
		"maxSessions", strconv.Itoa(l.MaxSessions),
		"maxRecords", strconv.Itoa(l.MaxRecords),
		"maxJournal", strconv.FormatInt(l.MaxJournal, 10))
	an := c.Analyses
	e.open(1, "analyses", true,
		"rttTimeout", an.RTTTimeout.String(),
		"rttMaxPending", strconv.Itoa(an.RTTMaxPending),
		"tcpIdle", an.TCPIdle.String(),
		"tcpCloseDelay", an.TCPCloseDelay.String(),
		"tcpMaxConns", strconv.Itoa(an.TCPMaxConns),
		"ftpIdle", an.FTPIdle.String(),
		"ftpMaxSessions", strconv.Itoa(an.FTPMaxSessions),
		"countersMaxEntries", strconv.Itoa(an.CountersMaxEntries),
		"fragTimeout", an.FragTimeout.String(),
		"fragMaxSets", strconv.Itoa(an.FragMaxSets),
		"fragMaxBytes", strconv.Itoa(an.FragMaxBytes),
		"fragMaxFrags", strconv.Itoa(an.FragMaxFrags),
		"flowIdle", an.FlowIdle.String(),
		"flowMaxInstances", strconv.Itoa(an.FlowMaxInstances))
	cp := c.Capture
	e.open(1, "capture", true,
		"blockSize", strconv.Itoa(cp.BlockSize),
		"blocks", strconv.Itoa(cp.Blocks),
		"retire", cp.Retire.String(),
		"poll", cp.Poll.String(),
		"timestamps", cp.Timestamps,
		"offload", strconv.FormatBool(cp.Offload),
		"reorder", cp.Reorder.String())
	ck := []string{"period", c.Clock.Period.String(), "budget", c.Clock.Budget.String(), "assumeSynced", strconv.FormatBool(c.Clock.AssumeSynced)}
	if len(c.Clock.Servers) > 0 {
		ck = append([]string{"servers", strings.Join(c.Clock.Servers, " ")}, ck...)
	}
	e.open(1, "clock", true, ck...)
	e.alarms(c.Alarms)
	for _, col := range c.Collectors {
		kv := append([]string{"name", col.Name, "address", col.Address.String(), "spool", col.Spool}, opsKV(col.Ops)...)
		if col.Ops.Metrics == "" {
			e.open(1, "collector", true, kv...)
			continue
		}
		e.open(1, "collector", false, kv...)
		e.metrics(2, col.Ops)
		e.close(1, "collector")
	}
	for _, p := range c.Probes {
		pa := []string{"name", p.Name, "id", strconv.Itoa(int(p.ID)), "core", strconv.Itoa(p.Core)}
		switch {
		case p.KeyFile != "":
			pa = append(pa, "keyFile", p.KeyFile)
		case p.Key != nil:
			pa = append(pa, "key", hex.EncodeToString(p.Key))
		}
		e.open(1, "probe", false, append(pa, opsKV(p.Ops)...)...)
		e.metrics(2, p.Ops)
		for _, in := range p.Interfaces {
			kv := []string{"name", in.Name}
			if in.Hop != "" {
				kv = append(kv, "hop", in.Hop)
			}
			if in.Pair != "" {
				kv = append(kv, "pair", in.Pair)
			}
			kv = append(kv, "fanout", strconv.Itoa(in.Fanout))
			if len(in.Cores) > 0 {
				cs := make([]string, len(in.Cores))
				for i, c := range in.Cores {
					cs[i] = strconv.Itoa(c)
				}
				kv = append(kv, "cores", strings.Join(cs, ","))
			}
			e.open(2, "interface", true, kv...)
		}
		e.close(1, "probe")
	}
	for i := range c.Classes {
		e.class(&c.Classes[i])
	}
	e.close(0, "tmon")
	if e.err != nil {
		return fmt.Errorf("conf: write: %w", e.err)
	}
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("conf: write: %w", err)
	}
	return nil
}

type encoder struct {
	w   *bufio.Writer
	err error
}

func (e *encoder) line(depth int, s string) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, "%s%s\n", strings.Repeat("  ", depth), s)
	}
}

// open writes a start tag (self-closing when empty) with attributes kv.
func (e *encoder) open(depth int, name string, empty bool, kv ...string) {
	var b strings.Builder
	b.WriteString("<" + name)
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(" " + kv[i] + "=\"")
		xml.EscapeText(&b, []byte(kv[i+1])) // never fails on a strings.Builder
		b.WriteString("\"")
	}
	if empty {
		b.WriteString("/")
	}
	b.WriteString(">")
	e.line(depth, b.String())
}

func (e *encoder) close(depth int, name string) { e.line(depth, "</"+name+">") }

func notKV(not bool) []string {
	if not {
		return []string{"not", "true"}
	}
	return nil
}

func (e *encoder) class(cl *Class) {
	if cl.FTPDataFlags {
		e.open(1, "flowClass", false, "name", cl.Name, "ftpData", "flags")
	} else {
		e.open(1, "flowClass", false, "name", cl.Name)
	}
	f := cl.Filter
	if f.Not || len(f.Groups) > 0 {
		e.open(2, "filter", false, notKV(f.Not)...)
		for _, g := range f.Groups {
			// A group of one plain term of one predicate was a lone <match>.
			if !g.Not && len(g.Terms) == 1 && !g.Terms[0].Not && len(g.Terms[0].Preds) == 1 {
				e.match(3, g.Terms[0].Preds[0])
				continue
			}
			e.open(3, "or", false, notKV(g.Not)...)
			for _, t := range g.Terms {
				if !t.Not && len(t.Preds) == 1 {
					e.match(4, t.Preds[0])
					continue
				}
				e.open(4, "and", false, notKV(t.Not)...)
				for _, p := range t.Preds {
					e.match(5, p)
				}
				e.close(4, "and")
			}
			e.close(3, "or")
		}
		e.close(2, "filter")
	}
	if cl.Granular != 0 {
		e.open(2, "granular", true, "fields", cl.Granular.String())
	}
	if cl.Mask != 0 {
		e.open(2, "mask", true, "fields", cl.Mask.String())
	}
	if ow := cl.OneWay; ow != nil {
		hops := make([]string, len(ow.Hops))
		for i, h := range ow.Hops {
			hops[i] = h.Name
		}
		kv := []string{"hops", strings.Join(hops, " "),
			"maxTransit", ow.MaxTransit.String(), "timeout", ow.Timeout.String(),
			"dupWindow", ow.DupWindow.String(), "resolution", ow.Resolution.String(),
			"perPacket", strconv.FormatBool(ow.PerPacket), "size", strconv.FormatBool(ow.Size)}
		if ow.SampleRange {
			kv = append(kv, "sampleRange", fmt.Sprintf("0x%08x-0x%08x", ow.SampleLo, ow.SampleHi))
		} else if ow.Sample > 1 {
			kv = append(kv, "sample", "1/"+strconv.FormatUint(uint64(ow.Sample), 10))
		}
		e.open(2, "oneWay", false, kv...)
		for _, hp := range ow.Pairs {
			sl := make([]string, len(hp.Slices))
			for i, s := range hp.Slices {
				sl[i] = s.String()
			}
			kv := []string{"from", hopName(ow, hp.From), "to", hopName(ow, hp.To), "slices", strings.Join(sl, " ")}
			if len(hp.Thresholds) == 0 {
				e.open(3, "hopPair", true, kv...)
				continue
			}
			e.open(3, "hopPair", false, kv...)
			for _, t := range hp.Thresholds {
				e.threshold(4, t)
			}
			e.close(3, "hopPair")
		}
		e.close(2, "oneWay")
	}
	e.close(1, "flowClass")
}

func hopName(ow *OneWay, i int) string {
	if i < 0 || i >= len(ow.Hops) {
		return ""
	}
	return ow.Hops[i].Name
}

func (e *encoder) match(depth int, p Pred) {
	var vals []string
	for _, r := range p.Ranges {
		vals = append(vals, r.String())
	}
	for _, pf := range p.Prefixes {
		vals = append(vals, pf.String())
	}
	kv := []string{"field", p.Field.String(), "value", strings.Join(vals, ",")}
	e.open(depth, "match", true, append(kv, notKV(p.Not)...)...)
}
