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
