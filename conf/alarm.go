package conf

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Alarms says where a collector sends the notifications of threshold
// crossings and recoveries (<alarms>, at most once). Every collector
// evaluates the thresholds of the figures it computes and notifies.
type Alarms struct {
	Webhook   string // http(s) URL receiving a POST with a JSON body (docs/operations.md); empty: none
	Trap      string // host:port of an SNMP v2c trap receiver; empty: none
	Community string // SNMP community; default "public"
	Line      int
}

// Threshold is one alarm on a figure of a hop pair, evaluated at every
// interval over all the flows of the class (<threshold> in <hopPair>).
// Static: Above and Clear. Learned: Learn intervals make a baseline (the
// mean of the metric), then the limit is Factor × baseline and the clear
// level ClearFactor × baseline; the baseline keeps following the metric
// (exponential mean over Learn intervals) in the intervals at or under the
// clear level while no alarm is raised.
type Threshold struct {
	Metric string // one of ThresholdMetrics
	// Above raises the alarm when the metric exceeds it; Clear ends it
	// when the metric is at or below it (hysteresis: Clear ≤ Above).
	// Delays in ns, loss as a ratio 0–1.
	Above, Clear float64
	Learn        int     // 0: static; else the baseline's intervals
	Factor       float64 // learned: the limit is Factor × baseline; default 2
	ClearFactor  float64 // learned: clear at ClearFactor × baseline; default (1+Factor)/2
	// After is the number of consecutive intervals over the limit that
	// raise the alarm (default 1); ClearAfter the number at or under the
	// clear level that end it (default 1): a link flapping faster does not
	// page every interval.
	After, ClearAfter int
	Line              int
}

// ThresholdMetrics are the figures a threshold may watch: quantiles and
// maximum of the one-way delay and of the PDV (RFC 5481, delay minus the
// interval's minimum, per flow), and the loss ratio lost/(delivered+lost).
var ThresholdMetrics = []string{"delay.p50", "delay.p90", "delay.p99", "delay.p999", "delay.max",
	"pdv.p50", "pdv.p90", "pdv.p99", "pdv.p999", "pdv.max", "loss"}

// IsLoss reports whether the metric is a ratio (else a duration in ns).
func (t *Threshold) IsLoss() bool { return t.Metric == "loss" }

func (p *parser) alarms(n *node, al *Alarms) {
	a := p.attrs(n, "webhook", "trap", "community")
	al.Line = n.line
	al.Webhook = a.vals["webhook"]
	al.Trap = a.vals["trap"]
	al.Community = "public"
	if v, ok := a.vals["community"]; ok {
		al.Community = v
	}
	p.noKids(n)
}

// thresholds reads the <threshold> children of a <hopPair>.
func (p *parser) thresholds(n *node) []Threshold {
	var out []Threshold
	for _, k := range n.kids {
		if k.name != "threshold" {
			p.unknownKid(n, k, "threshold")
			continue
		}
		a := p.attrs(k, "metric", "above", "clear", "learn", "factor", "clearFactor", "after", "clearAfter")
		p.noKids(k)
		t := Threshold{Line: k.line, After: 1, ClearAfter: 1}
		t.Metric, _ = a.required("metric")
		if t.Metric != "" && !slices.Contains(ThresholdMetrics, t.Metric) {
			a.bad("metric", fmt.Errorf("want one of %s", strings.Join(ThresholdMetrics, ", ")))
		}
		value := func(attr string, dst *float64) {
			v, ok := a.vals[attr]
			if !ok {
				return
			}
			f, err := parseLevel(v, t.IsLoss())
			if err != nil {
				a.bad(attr, err)
				return
			}
			*dst = f
		}
		value("above", &t.Above)
		t.Clear = t.Above
		value("clear", &t.Clear)
		a.integer("learn", &t.Learn)
		a.float("factor", &t.Factor)
		a.float("clearFactor", &t.ClearFactor)
		a.integer("after", &t.After)
		a.integer("clearAfter", &t.ClearAfter)
		switch {
		case t.Learn > 0 && (a.has("above") || a.has("clear")):
			p.errf(k, "learn and above/clear are exclusive: a threshold is static or learned")
		case t.Learn == 0 && !a.has("above"):
			p.errf(k, "give above (static) or learn (a learned baseline)")
		}
		if t.Learn > 0 {
			if t.Factor == 0 {
				t.Factor = 2
			}
			if t.ClearFactor == 0 {
				t.ClearFactor = (1 + t.Factor) / 2
			}
		}
		out = append(out, t)
	}
	return out
}

// parseLevel reads a delay ("25ms") or, for loss, a ratio ("0.01") or a
// percentage ("1%").
func parseLevel(v string, loss bool) (float64, error) {
	if loss {
		pct := strings.HasSuffix(v, "%")
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if err != nil {
			return 0, errors.New("want a ratio such as 0.01 or a percentage such as 1%")
		}
		if pct {
			f /= 100
		}
		return f, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return 0, err
	}
	return float64(d), nil
}

func (v *validator) alarms() {
	al := v.c.Alarms
	e := elem("alarms")
	if al.Webhook != "" {
		u, err := url.Parse(al.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.addf(al.Line, e, "webhook=%q: want an http:// or https:// URL", al.Webhook)
		}
	}
	if al.Trap != "" {
		if err := checkListen(al.Trap); err != nil {
			v.addf(al.Line, e, "trap=%q: %v", al.Trap, err)
		} else if h, _, _ := net.SplitHostPort(al.Trap); h == "" {
			v.addf(al.Line, e, "trap=%q: want the receiver's host:port", al.Trap)
		}
	}
	if !validText(al.Community) {
		v.addf(al.Line, e, "community: no tabs, line breaks or control characters")
	}
}

// threshold checks one threshold of a hop pair.
func (v *validator) threshold(t *Threshold) {
	e := elem("threshold", "metric", t.Metric)
	if t.Above < 0 || t.Clear < 0 {
		v.addf(t.Line, e, "above and clear must not be negative")
	}
	if t.Clear > t.Above {
		v.addf(t.Line, e, "clear (%s) above the limit (%s): the alarm would end before it ends", t.level(t.Clear), t.level(t.Above))
	}
	if t.IsLoss() && t.Above > 1 {
		v.addf(t.Line, e, "above=%v: a loss ratio is at most 1 (100%%)", t.Above)
	}
	if t.Learn < 0 || t.Learn > 10000 {
		v.addf(t.Line, e, "learn=%d: want 1-10000 intervals", t.Learn)
	}
	if t.Learn > 0 && (t.Factor <= 1 || t.ClearFactor < 1 || t.ClearFactor > t.Factor) {
		v.addf(t.Line, e, "factor=%v clearFactor=%v: want 1 ≤ clearFactor ≤ factor, factor > 1", t.Factor, t.ClearFactor)
	}
	if t.After < 1 || t.After > 1000 || t.ClearAfter < 1 || t.ClearAfter > 1000 {
		v.addf(t.Line, e, "after=%d clearAfter=%d: want 1-1000 intervals", t.After, t.ClearAfter)
	}
}

// level renders a level in the metric's unit.
func (t *Threshold) level(x float64) string {
	if t.IsLoss() {
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return time.Duration(x).String()
}

// Level renders a level of t in its metric's unit: a duration, or a ratio.
func (t *Threshold) Level(x float64) string { return t.level(x) }

func (e *encoder) alarms(al Alarms) {
	if al.Line == 0 && al.Webhook == "" && al.Trap == "" {
		return
	}
	kv := []string{}
	if al.Webhook != "" {
		kv = append(kv, "webhook", al.Webhook)
	}
	if al.Trap != "" {
		kv = append(kv, "trap", al.Trap)
	}
	kv = append(kv, "community", al.Community)
	e.open(1, "alarms", true, kv...)
}

func (e *encoder) threshold(depth int, t Threshold) {
	kv := []string{"metric", t.Metric}
	if t.Learn > 0 {
		kv = append(kv, "learn", strconv.Itoa(t.Learn), "factor", strconv.FormatFloat(t.Factor, 'g', -1, 64),
			"clearFactor", strconv.FormatFloat(t.ClearFactor, 'g', -1, 64))
	} else {
		kv = append(kv, "above", t.level(t.Above), "clear", t.level(t.Clear))
	}
	kv = append(kv, "after", strconv.Itoa(t.After), "clearAfter", strconv.Itoa(t.ClearAfter))
	e.open(depth, "threshold", true, kv...)
}
