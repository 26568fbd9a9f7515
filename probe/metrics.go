package probe

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tmon-project/tmon/capture"
	"github.com/tmon-project/tmon/clock"
	"github.com/tmon-project/tmon/health"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/ring"
	"github.com/tmon-project/tmon/rollout"
	"github.com/tmon-project/tmon/sieve"
	"github.com/tmon-project/tmon/transport"
)

// gauges holds the probe's state that is not a counter of a stage: the
// latest clock measurement and whether the run is draining.
type gauges struct {
	clk      atomic.Pointer[pdu.Clock]
	clkErr   atomic.Bool // the latest measurement failed (unsynchronised)
	draining atomic.Bool
}

// metrics is the probe's health.Func: at each scrape it reads the counters
// of the capture sockets, the sieves, the rings, the PDU output and the
// transport, and the probe's gauges.
func metrics(name, version string, socks []*capture.LiveSource, svs []*sieve.Sieve, rgs []*ring.Ring[sieve.Record], names []string,
	out *output, snd *transport.Sender, g *gauges, cw *rollout.Watcher) health.Func {
	return func(e health.Emit) {
		e.Gauge("tmon_probe_info", "The probe's name and the version of the configuration it runs (value 1).", 1, "probe", name, "config_version", version)
		heldInfo(e, "tmon_probe_config_held_info", cw)
		for _, s := range socks {
			st, err := s.Stats()
			if errors.Is(err, capture.ErrClosed) || err != nil {
				continue
			}
			e.Counter("tmon_probe_capture_packets_total", "Frames the kernel's capture filter accepted on the interface, dropped ones included.", float64(st.Packets), "iface", s.Iface())
			e.Counter("tmon_probe_capture_drops_total", "Frames lost because the capture ring was full.", float64(st.Drops), "iface", s.Iface())
			e.Counter("tmon_probe_capture_ring_freezes_total", "Times the capture ring was full (TPACKET_V3 queue freezes).", float64(st.Freezes), "iface", s.Iface())
		}
		for i, sv := range svs {
			st := sv.LiveStats()
			l := []string{"sieve", names[i]}
			for _, o := range []struct {
				outcome string
				v       uint64
			}{{"wanted", st.Wanted}, {"unwanted", st.Unwanted}, {"not_ip", st.NotIP}, {"unsupported_link", st.UnsupportedLink}, {"truncated", st.Truncated}, {"malformed", st.Malformed}, {"held", st.Held}} {
				e.Counter("tmon_probe_sieve_packets_total", "Packets the sieve examined, by outcome (their sum is every packet read).", float64(o.v), append(l, "outcome", o.outcome)...)
			}
			e.Counter("tmon_probe_sieve_fragments_total", "IP fragments the sieve dissected.", float64(st.Fragments), l...)
			e.Counter("tmon_probe_sieve_signed_total", "Packet signatures computed.", float64(st.Signed), l...)
			e.Counter("tmon_probe_ring_full_total", "Times the sieve found its ring to the analyser full.", float64(st.RingFull), l...)
			e.Counter("tmon_probe_ring_drops_total", "Records dropped on a full ring.", float64(st.RingDrops), l...)
			e.Gauge("tmon_probe_ring_records", "Records waiting in the sieve's ring to the analyser.", float64(rgs[i].Len()), l...)
			e.Gauge("tmon_probe_ring_capacity_records", "Capacity of the sieve's ring to the analyser.", float64(rgs[i].Cap()), l...)
		}
		e.Counter("tmon_probe_pdus_built_total", "PDUs built (every type) and handed to the transport.", float64(out.pdus.Load()))
		e.Counter("tmon_probe_sightings_total", "One-way sightings put into PDUs.", float64(out.sightings.Load()))
		e.Counter("tmon_probe_sightings_bytes_total", "Bytes of the sightings PDUs.", float64(out.sightBytes.Load()))
		e.Counter("tmon_probe_sightings_shed_total", "One-way sightings left out by load shedding (the transport could not carry them).", float64(out.shed.Load()))
		e.Gauge("tmon_probe_shed_level", "Load shedding level: 0 none, k keeps 1 packet in 2^k (by consistent hash).", float64(out.shedNow.Load()))
		ts := snd.Stats()
		e.Counter("tmon_probe_transport_submitted_total", "PDUs submitted to the transport (the Bye included).", float64(ts.Submitted))
		for _, c := range ts.Collectors {
			l := []string{"collector", c.Collector.String()}
			e.Counter("tmon_probe_transport_sent_total", "PDUs sent for the first time.", float64(c.Sent), l...)
			e.Counter("tmon_probe_transport_retries_total", "PDU retransmissions.", float64(c.Retried), l...)
			e.Counter("tmon_probe_transport_acked_total", "PDUs acknowledged by the collector.", float64(c.Acked), l...)
			e.Counter("tmon_probe_transport_given_up_total", "PDUs given up without an ack (final timeout).", float64(c.GivenUp), l...)
			e.Counter("tmon_probe_transport_long_retry_total", "Times long-retry mode was entered.", float64(c.LongRetry), l...)
			e.Counter("tmon_probe_transport_bytes_total", "Bytes of every datagram sent (UDP payload).", float64(c.Bytes), l...)
			e.Counter("tmon_probe_transport_heartbeats_total", "Heartbeats sent.", float64(c.Heartbeats), l...)
			e.Counter("tmon_probe_transport_send_errors_total", "Datagram writes that failed.", float64(c.SendErrors), l...)
			e.Counter("tmon_probe_transport_bad_acks_total", "Datagrams from the collector that were not a valid ack.", float64(c.BadAcks), l...)
			e.Gauge("tmon_probe_transport_queue_pdus", "PDUs not yet acknowledged nor given up (queued or in flight).", float64(c.Pending), l...)
		}
		if c := g.clk.Load(); c != nil {
			e.Gauge("tmon_probe_clock_offset_seconds", "Clock offset measured against NTP at the latest measurement.", time.Duration(c.Offset).Seconds())
			e.Gauge("tmon_probe_clock_error_bound_seconds", "Clock error bound (|offset| + root distance) at the latest measurement.", time.Duration(clock.Bound(*c)).Seconds())
			e.Gauge("tmon_probe_clock_synced", "1 when the latest clock measurement succeeded (or the configuration assumes synchronised clocks).", b2f(c.Synced && !g.clkErr.Load()))
		}
		e.Gauge("tmon_probe_draining", "1 once the input ended and the probe waits for the collectors' acks before it exits.", b2f(g.draining.Load()))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// serveMetrics starts the probe's endpoint when the configuration asks for
// one; the returned stop is never nil.
func serveMetrics(addr string, log *slog.Logger, f health.Func) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	s, err := health.Serve(addr, log, f)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return func() { s.Close() }, nil
}

// heldInfo emits the version of the configuration held for later, if any.
func heldInfo(e health.Emit, name string, cw *rollout.Watcher) {
	if v, from, ok := cw.HeldLabels(); ok {
		e.Gauge(name, "The version of the configuration validated and held for its validFrom (value 1); absent when none.", 1, "config_version", v, "valid_from", from)
	}
}
