package probe

import (
	"testing"
	"time"

	"github.com/tmon-project/tmon/transport"
)

type step struct {
	at   time.Duration
	v    uint64
	want string // event kind, "" for none
}

func TestIdleMonitor(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := idleMonitor{iface: "eth1", idle: 10 * time.Second}
	for i, s := range []step{
		{0, 5, ""}, {5 * time.Second, 9, ""}, // traffic
		{14 * time.Second, 9, ""},             // 9 s quiet
		{15 * time.Second, 9, "capture.idle"}, // 10 s quiet
		{16 * time.Second, 9, ""},             // once per episode
		{40 * time.Second, 9, ""},
		{41 * time.Second, 10, "capture.active"},
		{42 * time.Second, 11, ""},
		{51 * time.Second, 11, ""},
		{52 * time.Second, 11, "capture.idle"},
	} {
		kind, _, ok := m.update(t0.Add(s.at), s.v)
		if ok != (s.want != "") || kind != s.want {
			t.Errorf("step %d (%v, %d): %q %v, want %q", i, s.at, s.v, kind, ok, s.want)
		}
	}
}

func TestRingMonitor(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := ringMonitor{sieve: "eth1#0", calm: 5 * time.Second}
	for i, s := range []step{
		{0, 0, ""},
		{time.Second, 3, "ring.saturated"},
		{2 * time.Second, 7, ""}, // still full: the same episode
		{4 * time.Second, 7, ""},
		{6 * time.Second, 9, ""}, // full again before the calm ended: no flapping
		{10 * time.Second, 9, ""},
		{11 * time.Second, 9, "ring.recovered"},
		{12 * time.Second, 9, ""},
		{13 * time.Second, 10, "ring.saturated"},
	} {
		kind, detail, ok := m.update(t0.Add(s.at), s.v)
		if ok != (s.want != "") || kind != s.want {
			t.Errorf("step %d (%v, %d): %q %v, want %q", i, s.at, s.v, kind, ok, s.want)
		}
		if kind == "ring.recovered" && detail != "sieve eth1#0: ring clear for 5s; full 9 times during the episode" {
			t.Errorf("detail %q", detail)
		}
	}
}

func TestReachMonitor(t *testing.T) {
	m := reachMonitor{collector: "127.0.0.1:1"}
	for i, s := range []struct {
		st   transport.CollectorStats
		want string
	}{
		{transport.CollectorStats{Acked: 10}, ""},
		{transport.CollectorStats{Acked: 12, Retried: 4}, ""}, // retries alone: not yet
		{transport.CollectorStats{Acked: 12, LongRetry: 1}, "collector.unreachable"},
		{transport.CollectorStats{Acked: 12, LongRetry: 2}, ""}, // still away
		{transport.CollectorStats{Acked: 13, LongRetry: 2}, "collector.back"},
		{transport.CollectorStats{Acked: 20, LongRetry: 2}, ""},
		{transport.CollectorStats{Acked: 20, LongRetry: 3}, "collector.unreachable"},
		{transport.CollectorStats{Acked: 25, LongRetry: 3}, "collector.back"},
		{transport.CollectorStats{Acked: 30, LongRetry: 4}, ""}, // retries ran out while acks flow
		{transport.CollectorStats{Acked: 40, LongRetry: 4}, ""},
		{transport.CollectorStats{Acked: 50, LongRetry: 5}, ""},
		{transport.CollectorStats{Acked: 50, LongRetry: 5}, "collector.unreachable"}, // then a second without ack
	} {
		kind, _, ok := m.update(s.st)
		if ok != (s.want != "") || kind != s.want {
			t.Errorf("step %d: %q %v, want %q", i, kind, ok, s.want)
		}
	}
}

// The retry monitor reports, once a period, the retransmissions of that
// period (counts worked out by hand from the samples; the sender is new, so
// the first period counts from zero), and nothing for a period without any.
func TestRetryMonitor(t *testing.T) {
	m := retryMonitor{collector: "c1", period: 10 * time.Second}
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	steps := []struct {
		at            time.Duration
		sent, retried uint64
		want          string
	}{
		{0, 5, 0, ""},                // the first sample: the period starts
		{5 * time.Second, 40, 3, ""}, // mid-period
		{10 * time.Second, 100, 7, "collector c1: 7 retries of 100 PDUs sent in the last 10s"},
		{20 * time.Second, 180, 7, ""}, // no retry in this period
		{31 * time.Second, 200, 9, "collector c1: 2 retries of 20 PDUs sent in the last 11s"},
	}
	for _, s := range steps {
		kind, detail, ok := m.update(t0.Add(s.at), transport.CollectorStats{Sent: s.sent, Retried: s.retried})
		if ok != (s.want != "") || detail != s.want || (ok && kind != "transport.retries") {
			t.Errorf("at %v: %q %q %v, want %q", s.at, kind, detail, ok, s.want)
		}
	}
}
