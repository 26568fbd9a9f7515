package collector

import (
	"cmp"
	"math"
	"slices"

	"github.com/tmon-project/tmon/selection"

	"github.com/tmon-project/tmon/reconcile"
)

// Load shedding at a probe (docs/transport.md, "Shedding"): from each of
// its notices (selection.EventShed) the collector knows from which capture
// time the probe left out which packets. The packets it shed are seen only
// at the other hops: the reconciler counts those sightings as dropped
// (reconcile.Gap with Shed), never as lost or missed.

// shedStart is one notice: level from capture time From on, until the
// probe's next notice.
type shedStart struct {
	From  int64 `json:"from"`
	Level uint8 `json:"level"`
}

// maxShedStarts bounds what a probe's notices cost; the oldest go first
// (their records are long decided).
const maxShedStarts = 256

// shedNotice takes a probe's shedding notice. Notices may arrive in any
// order (retries): the probe's spans are rebuilt from all it sent. c.mu is
// held.
func (c *Collector) shedNotice(s *session, detail string) {
	level, from, err := selection.ParseShedNotice(detail)
	if err != nil {
		c.log.Warn("collector: probe "+s.name+": bad shedding notice", "err", err)
		return
	}
	st := c.sheds[s.probe]
	i, found := slices.BinarySearchFunc(st, from, func(x shedStart, t int64) int { return cmp.Compare(x.From, t) })
	if found {
		st[i].Level = level
	} else {
		st = slices.Insert(st, i, shedStart{From: from, Level: level})
	}
	if len(st) > maxShedStarts {
		st = st[len(st)-maxShedStarts:]
	}
	c.sheds[s.probe] = st
	c.applyShed(s.probe)
}

// applyShed gives the reconciler the spans of probe pi's shedding, at the
// probe's hops of every one-way class. c.mu is held.
func (c *Collector) applyShed(pi int) {
	st := c.sheds[pi]
	var gs []reconcile.Gap
	for i, x := range st {
		if x.Level == 0 {
			continue
		}
		to := int64(math.MaxInt64)
		if i+1 < len(st) {
			to = st[i+1].From - 1
		}
		for ci := range c.cfg.Classes {
			if hops := c.probeHops(pi, ci); hops != 0 {
				gs = append(gs, reconcile.Gap{Class: ci, Hops: hops, From: x.From, To: to, Shed: x.Level})
			}
		}
	}
	c.recDo(func(r *reconcile.Reconciler) { r.SetShed(pi, gs) })
}

// probeHops returns the hops of one-way class ci (a bit per hop) at which
// probe pi has an interface; 0 for another class.
func (c *Collector) probeHops(pi, ci int) uint8 {
	cl := &c.cfg.Classes[ci]
	if cl.OneWay == nil {
		return 0
	}
	var hops uint8
	for ii := range c.cfg.Probes[pi].Interfaces {
		if h, ok := cl.HopIndex(pi, ii); ok && h < reconcile.MaxHops {
			hops |= 1 << h
		}
	}
	return hops
}
