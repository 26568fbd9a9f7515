package collector

import (
	"time"

	"github.com/tmon-project/tmon/health"
	"github.com/tmon-project/tmon/transport"
)

// metrics is the collector's health.Func: at each scrape it reads the
// receiver's, the reconciler's and the spool's counters and what the
// collector knows of each probe.
func (c *Collector) metrics() health.Func {
	return func(e health.Emit) {
		e.Gauge("tmon_collector_info", "The collector's name and the version of the configuration it runs (value 1).", 1, "collector", c.self, "config_version", c.cfg.Version)
		if v, from, ok := c.cw.HeldLabels(); ok {
			e.Gauge("tmon_collector_config_held_info", "The version of the configuration validated and held for its validFrom (value 1); absent when none.", 1, "config_version", v, "valid_from", from)
		}
		if c.rcv != nil {
			st := c.rcv.Stats()
			e.Counter("tmon_collector_pdus_delivered_total", "New PDUs taken from the probes.", float64(st.Delivered))
			e.Counter("tmon_collector_pdus_duplicate_total", "PDUs received again (acked again, not taken).", float64(st.Duplicates))
			e.Counter("tmon_collector_heartbeats_total", "Probe heartbeats received.", float64(st.Heartbeats))
			e.Counter("tmon_collector_pdus_refused_total", "PDUs the collector refused to take (not acked: the probe sends them again).", float64(st.HandlerErrors))
			e.Counter("tmon_collector_seqs_skipped_total", "Sequence numbers below a probe's floor that never arrived (given up by the probe).", float64(st.Skipped))
			e.Counter("tmon_collector_probe_restarts_total", "New sessions of a known probe.", float64(st.Restarts))
			e.Counter("tmon_collector_sessions_evicted_total", "Probe sessions forgotten to respect the session limit.", float64(st.Evicted))
			for r, n := range st.Invalid {
				e.Counter("tmon_collector_datagrams_rejected_total", "Datagrams rejected, by reason.", float64(n), "reason", transport.Reason(r).String())
			}
		}
		for typ, st := range c.sp.Stats() {
			e.Counter("tmon_collector_spool_files_total", "Spool files written, by type.", float64(st.Files), "type", typ)
			e.Counter("tmon_collector_spool_rows_total", "Data rows in the spool files written, by type.", float64(st.Rows), "type", typ)
			e.Counter("tmon_collector_spool_bytes_total", "Bytes of the spool files written, by type.", float64(st.Bytes), "type", typ)
			e.Counter("tmon_collector_spool_write_errors_total", "Spool files that could not be written, by type.", float64(st.Errors), "type", typ)
		}
		for pi := range c.cfg.Probes {
			st := c.clk.state(pi)
			if !st.Known {
				continue
			}
			l := []string{"probe", c.cfg.Probes[pi].Name}
			e.Gauge("tmon_collector_probe_clock_synced", "1 when the probe's latest clock record says synchronised.", b2f(st.Synced), l...)
			e.Gauge("tmon_collector_probe_clock_error_bound_seconds", "The probe's clock error bound (|offset| + root distance) from its latest clock record.", time.Duration(st.Bound).Seconds(), l...)
			if k, ok := c.clk.latest(pi); ok {
				e.Gauge("tmon_collector_probe_clock_offset_seconds", "The probe's clock offset from its latest clock record.", time.Duration(k.Offset).Seconds(), l...)
			}
		}

		c.mu.Lock()
		defer c.mu.Unlock()
		k := c.recCounters()
		e.Gauge("tmon_collector_reconcile_records", "Records held by the reconciler: waiting for sightings, or kept for the duplicate window (the backlog).", float64(k.Live))
		e.Counter("tmon_collector_sightings_total", "Sightings given to the reconciler.", float64(k.Sightings))
		for _, o := range []struct {
			kind string
			v    uint64
		}{{"completed", k.Completed}, {"lost", k.Lost}, {"missed", k.Missed}, {"dropped", k.Dropped}, {"forced", k.Forced}} {
			e.Counter("tmon_collector_records_total", "Reconciled packet records, by outcome.", float64(o.v), "outcome", o.kind)
		}
		e.Counter("tmon_collector_sightings_duplicate_total", "Sightings dropped as duplicates.", float64(k.Duplicates))
		e.Counter("tmon_collector_signature_clashes_total", "Records created beside another of the same flow and signature.", float64(k.Clashes))
		e.Counter("tmon_collector_sightings_late_total", "Sightings dropped because their interval was already written (late rows).", float64(k.Late))
		e.Counter("tmon_collector_sightings_invalid_total", "Sightings of an undeclared flow or a hop outside the path.", float64(k.Invalid))
		e.Counter("tmon_collector_intervals_total", "Intervals closed and handed to the spool.", float64(k.Intervals))
		e.Gauge("tmon_collector_flows", "Flow instances the collector knows (its flow dictionary; forgotten once unused, see docs/transport.md).", float64(len(c.global)))
		e.Counter("tmon_collector_flows_forgotten_total", "Flow instances forgotten: no session referred to them and the reconciler held nothing of them.", float64(c.forgotten))
		now := time.Now()
		for pi, s := range c.latest {
			l := []string{"probe", c.cfg.Probes[pi].Name}
			e.Gauge("tmon_collector_probe_silence_seconds", "Time since the probe's current session was last heard.", now.Sub(s.lastHeard).Seconds(), l...)
			e.Gauge("tmon_collector_probe_unreachable", "1 while the probe is reported unreachable (silent too long).", b2f(c.unreachable[pi]), l...)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
