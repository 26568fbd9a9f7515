package reconcile

import "github.com/tmon-project/tmon/conf"

// Clock tolerance of the spatial composition checks (Metrics.ComposeViol).
// A packet's time tj at an intermediate hop is a violation when it lies
// outside [t_from − e, t_to + e], e the sum of the clock error bounds of the
// distinct probes observing hop_from, the intermediate hop and hop_to:
// within e the clocks, not the packet, may have put it there. e is 0 when
// one probe observes all three hops (one clock) or with assumeSynced, and
// also, keeping the check strict, while a bound is unknown.

// ClockBound returns the clock error bound (ns, ≥ 0) of the probe of
// index probe in the configuration and whether the collector knows it.
type ClockBound func(probe int) (bound int64, known bool)

// tolRefresh is the data time between refreshes of the tolerances from
// the ClockBound, at Advance.
const tolRefresh = int64(1e9)

// clockTol is the reconciler's view of the probes' clocks.
type clockTol struct {
	bound   ClockBound
	assumed bool  // assumeSynced: every tolerance is 0
	at      int64 // watermark of the last refresh
}

// SetClocks gives the reconciler the probes' clock error bounds. They are
// read now and then at Advance, at most once a second of data time, under
// the caller's lock: f must not block on a lock held around Advance. nil
// makes every tolerance 0 again.
func (r *Reconciler) SetClocks(f ClockBound) {
	r.clk.bound = f
	r.refreshTol()
}

// newTol fills the per-hop probes of c, from ow.
func (c *class) newTol(ow *conf.OneWay) {
	for h := range ow.Hops {
		for _, pi := range ow.Hops[h].Interfaces {
			c.probes[h] = append(c.probes[h], pi.Probe)
		}
	}
	c.tol = make([]int64, len(c.pairs)*MaxHops)
}

// refreshTol recomputes every class's tolerances from the ClockBound.
func (r *Reconciler) refreshTol() {
	r.clk.at = r.wm
	var seen [3 * 8]int
	for ci := range r.classes {
		c := &r.classes[ci]
		if c.nhops < 3 {
			continue
		}
		for p, pp := range c.pairs {
			for j := pp.from + 1; j < pp.to; j++ {
				e := int64(0)
				if r.clk.bound != nil && !r.clk.assumed {
					probes := seen[:0]
					for _, h := range [3]int{pp.from, j, pp.to} {
						for _, pr := range c.probes[h] {
							if !contains(probes, pr) {
								probes = append(probes, pr)
							}
						}
					}
					if len(probes) > 1 {
						for _, pr := range probes {
							b, ok := r.clk.bound(pr)
							if !ok {
								e = 0
								break
							}
							e += max(b, 0)
						}
					}
				}
				c.tol[p*MaxHops+j] = e
			}
		}
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
