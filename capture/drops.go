package capture

import "fmt"

// DropMonitor turns the kernel ring counters of one capture socket, read
// every second or so, into events: one when the ring starts dropping
// packets, one when it has stopped (a sample with no new drop), with the
// episode's total. It is not safe for concurrent use.
type DropMonitor struct {
	Iface    string
	last     LiveStats
	dropping bool
	episode  LiveStats // counters at the start of the drop episode
}

// Update takes the cumulative counters and returns an event kind
// ("capture.drops" or "capture.drops.stop") and detail when the state
// changed, ok false otherwise.
func (m *DropMonitor) Update(st LiveStats) (kind, detail string, ok bool) {
	prev := m.last
	m.last = st
	dDrops := st.Drops - prev.Drops
	dPkts := st.Packets - prev.Packets
	switch {
	case dDrops > 0 && !m.dropping:
		m.dropping = true
		m.episode = prev
		return "capture.drops", fmt.Sprintf("%s: the kernel ring dropped %d of %d packets since the last check (ring full %d times); the sieve does not keep up",
			m.Iface, dDrops, dPkts, st.Freezes-prev.Freezes), true
	case dDrops == 0 && m.dropping:
		m.dropping = false
		return "capture.drops.stop", fmt.Sprintf("%s: no more drops; %d packets dropped of %d during the episode",
			m.Iface, st.Drops-m.episode.Drops, st.Packets-m.episode.Packets), true
	}
	return "", "", false
}

// Dropping reports whether the last sample had new drops.
func (m *DropMonitor) Dropping() bool { return m.dropping }
