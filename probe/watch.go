package probe

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tmon-project/tmon/capture"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/sieve"
	"github.com/tmon-project/tmon/transport"
)

// The monitors below turn counters sampled about once a second into
// events that mark the start and the end of an episode, never one event
// per sample. Each is fed by one goroutine (watchHealth).

// reachMonitor follows one collector through the sender's counters: it
// becomes unreachable when the sender entered long-retry mode for it (the
// retries of a PDU ran out without an ack) and then a whole sample went by
// without any ack; it is back at the next ack. A PDU that runs out of
// retries while acks flow (a burst after an outage) is no outage.
type reachMonitor struct {
	collector   string
	last        transport.CollectorStats
	entered     bool // long-retry mode entered since acks last flowed
	unreachable bool
}

func (m *reachMonitor) update(st transport.CollectorStats) (kind, detail string, ok bool) {
	prev := m.last
	m.last = st
	acked := st.Acked > prev.Acked
	if st.LongRetry > prev.LongRetry {
		m.entered = true
	} else if acked {
		m.entered = false
	}
	switch {
	case !m.unreachable && m.entered && !acked:
		m.unreachable = true
		return "collector.unreachable", fmt.Sprintf("collector %s: no ack after every retry; long-retry mode, %d PDUs pending", m.collector, st.Pending), true
	case m.unreachable && acked:
		m.unreachable, m.entered = false, false
		return "collector.back", fmt.Sprintf("collector %s acknowledges again; %d PDUs pending", m.collector, st.Pending), true
	}
	return "", "", false
}

// retryMonitor reports a collector's PDU retransmissions of the last
// period, when there were any: the database (and the report's Probes page)
// learns them only through events, as it does capture drops. Period
// conf.RetryReport; a quiet link raises none.
type retryMonitor struct {
	collector string
	period    time.Duration
	since     time.Time
	sent      uint64 // Sent at since
	retried   uint64 // Retried at since
}

func (m *retryMonitor) update(now time.Time, st transport.CollectorStats) (kind, detail string, ok bool) {
	if m.since.IsZero() {
		m.since = now
	}
	if now.Sub(m.since) < m.period {
		return "", "", false
	}
	retried, sent := st.Retried-m.retried, st.Sent-m.sent
	d := now.Sub(m.since).Round(time.Second)
	m.since, m.sent, m.retried = now, st.Sent, st.Retried
	if retried == 0 {
		return "", "", false
	}
	return "transport.retries", fmt.Sprintf("collector %s: %d retries of %d PDUs sent in the last %s", m.collector, retried, sent, d), true
}

// idleMonitor notices an interface that captures nothing for idle.
type idleMonitor struct {
	iface   string
	idle    time.Duration
	packets uint64
	changed time.Time // when packets last grew (or the monitor started)
	quiet   bool
}

func (m *idleMonitor) update(now time.Time, packets uint64) (kind, detail string, ok bool) {
	if m.changed.IsZero() {
		m.changed, m.packets = now, packets
	}
	if packets != m.packets {
		m.packets, m.changed = packets, now
		if m.quiet {
			m.quiet = false
			return "capture.active", fmt.Sprintf("%s: traffic again", m.iface), true
		}
		return "", "", false
	}
	if !m.quiet && now.Sub(m.changed) >= m.idle {
		m.quiet = true
		return "capture.idle", fmt.Sprintf("%s: no packet captured for %s", m.iface, now.Sub(m.changed).Round(time.Second)), true
	}
	return "", "", false
}

// ringMonitor notices a sieve→analyser ring that fills (the analyser does
// not keep up: the sieve waits, then the kernel ring drops), and its
// recovery once it stayed clear for calm.
type ringMonitor struct {
	sieve     string
	calm      time.Duration
	full      uint64 // RingFull at the last sample
	lastFull  time.Time
	saturated bool
	episode   uint64 // RingFull at the start of the episode
}

func (m *ringMonitor) update(now time.Time, full uint64) (kind, detail string, ok bool) {
	prev := m.full
	m.full = full
	switch {
	case full > prev:
		m.lastFull = now
		if !m.saturated {
			m.saturated, m.episode = true, prev
			return "ring.saturated", fmt.Sprintf("sieve %s: the ring to the analyser is full (%d times since the last check); the analyser does not keep up", m.sieve, full-prev), true
		}
	case m.saturated && now.Sub(m.lastFull) >= m.calm:
		m.saturated = false
		return "ring.recovered", fmt.Sprintf("sieve %s: ring clear for %s; full %d times during the episode", m.sieve, m.calm, full-m.episode), true
	}
	return "", "", false
}

// watchHealth samples the sender's, the capture sockets' and the sieves'
// counters every second until ctx ends, and reports collector
// reachability, idle interfaces and ring saturation as events.
func watchHealth(ctx context.Context, snd *transport.Sender, socks []*capture.LiveSource, svs []*sieve.Sieve, names []string, log *slog.Logger, ev func(kind, detail string)) {
	// The sender is new: its counters start at zero, as the monitors do.
	var reach []reachMonitor
	var retries []retryMonitor
	for _, c := range snd.Stats().Collectors {
		reach = append(reach, reachMonitor{collector: c.Collector.String()})
		retries = append(retries, retryMonitor{collector: c.Collector.String(), period: conf.RetryReport})
	}
	idle := make([]idleMonitor, len(socks))
	for i, s := range socks {
		idle[i] = idleMonitor{iface: s.Iface(), idle: conf.CaptureIdle}
	}
	var rings []ringMonitor
	if len(socks) > 0 { // live: a replay fills the ring by design and waits
		for _, n := range names {
			rings = append(rings, ringMonitor{sieve: n, calm: conf.RingCalm})
		}
	}
	report := func(kind, detail string, ok bool) {
		if ok {
			log.Warn("probe: "+detail, "kind", kind)
			ev(kind, detail)
		}
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for i, c := range snd.Stats().Collectors {
				report(reach[i].update(c))
				if kind, detail, ok := retries[i].update(now, c); ok {
					log.Info("probe: "+detail, "kind", kind) // a fact for the figures, not a fault
					ev(kind, detail)
				}
			}
			for i, s := range socks {
				if st, err := s.Stats(); err == nil {
					report(idle[i].update(now, st.Packets))
				}
			}
			for i := range rings {
				report(rings[i].update(now, svs[i].LiveStats().RingFull))
			}
		}
	}
}
