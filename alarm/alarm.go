// Package alarm watches what the collector measures against the thresholds
// of the configuration and says when a hop pair crosses one and when it
// recovers. It sits beside the spool in the collector's data flow:
//
//	reconcile ──Interval──► spool
//	                   └──► alarm ──Notice──► events (spool), webhook, SNMP trap
//
// At every interval it merges the figures of all flows of a class per hop
// pair (delay and PDV histograms, losses), computes each threshold's metric
// and applies the threshold with hysteresis: After consecutive intervals
// over the limit raise the alarm, ClearAfter at or under the clear level end
// it, intervals without packets change nothing. A learned threshold first
// averages Learn intervals into a baseline, which then follows the metric
// (an exponential mean over Learn intervals) in the intervals at or under
// its clear level.
package alarm

import (
	"fmt"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/hist"
	"github.com/tmon-project/tmon/reconcile"
)

// Kinds of the notices (and of the events written for them).
const (
	KindCrossed = "threshold.crossed"
	KindCleared = "threshold.cleared"
)

// Notice is one crossing or recovery. Its JSON form is the webhook's body
// (docs/operations.md): delays in seconds, loss as a ratio.
type Notice struct {
	Kind          string    `json:"kind"`
	Collector     string    `json:"collector"`
	Class         string    `json:"class"`
	From          string    `json:"hop_from"`
	To            string    `json:"hop_to"`
	Metric        string    `json:"metric"`
	Unit          string    `json:"unit"`  // "s" or "ratio"
	Value         float64   `json:"value"` // the interval's figure that decided
	Limit         float64   `json:"limit"` // raise above
	Clear         float64   `json:"clear"` // end at or below
	Baseline      float64   `json:"baseline,omitempty"`
	Intervals     int       `json:"intervals"` // consecutive intervals that decided (After or ClearAfter)
	IntervalStart time.Time `json:"interval_start"`
	IntervalLen   float64   `json:"interval_s"`
	Time          time.Time `json:"time"` // when the collector decided
}

// Detail is the text of the event written for n.
func (n *Notice) Detail() string {
	f := func(x float64) string {
		if n.Unit == "s" {
			return time.Duration(x * 1e9).String()
		}
		return fmt.Sprintf("%.4g", x)
	}
	s := fmt.Sprintf("class=%s pair=%s>%s metric=%s value=%s limit=%s clear=%s intervals=%d interval_start=%s",
		n.Class, n.From, n.To, n.Metric, f(n.Value), f(n.Limit), f(n.Clear), n.Intervals, n.IntervalStart.UTC().Format(time.RFC3339))
	if n.Baseline != 0 {
		s += " baseline=" + f(n.Baseline)
	}
	return s
}

// state is one threshold's memory.
type state struct {
	t        *conf.Threshold
	class    int
	pair     int
	raised   bool
	run      int     // consecutive intervals towards the other state
	baseline float64 // learned: the mean
	learned  int     // learned: intervals averaged so far (≤ Learn)
}

// Watcher evaluates every threshold of a configuration. It is not safe for
// concurrent use: the collector calls it with each interval, in order.
type Watcher struct {
	cfg       *conf.Config
	collector string
	states    []*state
	delay     hist.Hist
	pdv       hist.Hist
}

// New returns a Watcher of every threshold of cfg; nil when there is none.
func New(cfg *conf.Config, collector string) *Watcher {
	w := &Watcher{cfg: cfg, collector: collector}
	for ci := range cfg.Classes {
		ow := cfg.Classes[ci].OneWay
		if ow == nil {
			continue
		}
		for pi := range ow.Pairs {
			for ti := range ow.Pairs[pi].Thresholds {
				w.states = append(w.states, &state{t: &ow.Pairs[pi].Thresholds[ti], class: ci, pair: pi})
			}
		}
	}
	if len(w.states) == 0 {
		return nil
	}
	return w
}

// figures are a hop pair's merged figures of one interval.
type figures struct {
	count, lost      uint64
	delayMax, pdvMax int64
	delayQ, pdvQ     [4]int64 // at reconcile.QuantileLevels
}

// Interval evaluates the thresholds on one closed interval and returns the
// crossings and recoveries it decided, stamped now.
func (w *Watcher) Interval(iv *reconcile.Interval, now time.Time) []Notice {
	if w == nil {
		return nil
	}
	var out []Notice
	// One pass per (class, pair) that has thresholds.
	done := map[[2]int]*figures{}
	for _, s := range w.states {
		k := [2]int{s.class, s.pair}
		f, ok := done[k]
		if !ok {
			f = w.figures(iv, s.class, s.pair)
			done[k] = f
		}
		if f == nil {
			continue // no packet of the pair in this interval: nothing to judge
		}
		if n, ok := w.apply(s, f, iv, now); ok {
			out = append(out, n)
		}
	}
	return out
}

// figures merges the flows of class and pair; nil when none had a packet.
func (w *Watcher) figures(iv *reconcile.Interval, class, pair int) *figures {
	f := &figures{}
	w.delay.Reset()
	w.pdv.Reset()
	seen := false
	for i := range iv.Stats {
		st := &iv.Stats[i]
		if st.Class != class || st.Pair != pair {
			continue
		}
		seen = true
		f.lost += st.Lost
		if st.Count == 0 {
			continue
		}
		f.count += st.Count
		f.delayMax = max(f.delayMax, st.Max)
		if i < len(iv.Metrics) {
			m := &iv.Metrics[i]
			w.delay.AddSparse(string(m.DelayHist))
			w.pdv.AddSparse(string(m.PDVHist))
			f.pdvMax = max(f.pdvMax, m.PDVMax)
		}
	}
	if !seen || f.count+f.lost == 0 {
		return nil
	}
	for i, q := range reconcile.QuantileLevels {
		if w.delay.Count() > 0 {
			f.delayQ[i], _ = w.delay.Quantile(q)
		}
		if w.pdv.Count() > 0 {
			f.pdvQ[i], _ = w.pdv.Quantile(q)
		}
	}
	return f
}

// value returns the metric of f in the threshold's unit (ns or ratio),
// and false when the interval has nothing to say about it (no delay).
func value(metric string, f *figures) (float64, bool) {
	if metric == "loss" {
		return float64(f.lost) / float64(f.count+f.lost), true
	}
	if f.count == 0 {
		return 0, false
	}
	switch metric {
	case "delay.max":
		return float64(f.delayMax), true
	case "pdv.max":
		return float64(f.pdvMax), true
	}
	qs := map[string]int{"p50": 0, "p90": 1, "p99": 2, "p999": 3}
	if len(metric) > 6 && metric[:6] == "delay." {
		return float64(f.delayQ[qs[metric[6:]]]), true
	}
	if len(metric) > 4 && metric[:4] == "pdv." {
		return float64(f.pdvQ[qs[metric[4:]]]), true
	}
	return 0, false
}

func (w *Watcher) apply(s *state, f *figures, iv *reconcile.Interval, now time.Time) (Notice, bool) {
	t := s.t
	v, ok := value(t.Metric, f)
	if !ok {
		return Notice{}, false
	}
	limit, clear := t.Above, t.Clear
	if t.Learn > 0 {
		if s.learned < t.Learn {
			// Learning: the mean of the first Learn intervals.
			s.learned++
			s.baseline += (v - s.baseline) / float64(s.learned)
			return Notice{}, false
		}
		limit, clear = t.Factor*s.baseline, t.ClearFactor*s.baseline
	}
	var kind string
	switch {
	case !s.raised && v > limit:
		s.run++
		if s.run >= t.After {
			s.raised, s.run, kind = true, 0, KindCrossed
		}
	case s.raised && v <= clear:
		s.run++
		if s.run >= t.ClearAfter {
			s.raised, s.run, kind = false, 0, KindCleared
		}
	default:
		s.run = 0
		if t.Learn > 0 && !s.raised && v <= clear {
			// The baseline follows the link while it is plainly normal
			// (at or under the clear level), never towards an alarm.
			s.baseline += (v - s.baseline) / float64(t.Learn)
		}
	}
	if kind == "" {
		return Notice{}, false
	}
	ow := w.cfg.Classes[s.class].OneWay
	hp := ow.Pairs[s.pair]
	n := Notice{
		Kind: kind, Collector: w.collector, Class: w.cfg.Classes[s.class].Name,
		From: ow.Hops[hp.From].Name, To: ow.Hops[hp.To].Name, Metric: t.Metric,
		Unit: "s", Value: v / 1e9, Limit: limit / 1e9, Clear: clear / 1e9,
		IntervalStart: time.Unix(0, iv.Start).UTC(), IntervalLen: iv.Length.Seconds(), Time: now.UTC(),
		Intervals: t.After,
	}
	if kind == KindCleared {
		n.Intervals = t.ClearAfter
	}
	if t.IsLoss() {
		n.Unit, n.Value, n.Limit, n.Clear = "ratio", v, limit, clear
	}
	if t.Learn > 0 {
		n.Baseline = s.baseline
		if !t.IsLoss() {
			n.Baseline /= 1e9
		}
	}
	return n, true
}
