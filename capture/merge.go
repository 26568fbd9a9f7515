package capture

import (
	"errors"
	"io"
	"sync/atomic"
	"time"
)

// Merge is the two ports of a passive tap (one direction each) read as one
// interface: it delivers the packets of both sources in timestamp order,
// within a bounded reorder window. Both sources should deliver the same
// interface index.
//
// It holds at most one packet of each source (the head); a head's data
// stays valid because its source is not read again until the head has
// been delivered, so nothing is copied. A head is delivered when it is the
// older of two heads, or when the other source's clock has passed it (the
// other cannot deliver anything older any more), or when it has waited
// Window (wall time) for the other: a port whose clock stalls cannot hold
// the other back for longer.
//
// Like any Source it is read by one goroutine; Clock and Close may be
// called from any goroutine.
type Merge struct {
	src    [2]Source
	window time.Duration
	head   [2]mhead
	done   [2]bool // source ended (io.EOF)
	clock  atomic.Int64
	now    func() time.Time // wall clock; replaced in tests
}

type mhead struct {
	ok    bool
	data  []byte
	ts    int64
	iface uint8
	lt    uint16
	since time.Time // when it was read
}

var _ Source = (*Merge)(nil)

// NewMerge merges a and b; window ≤ 0 means 50ms.
func NewMerge(a, b Source, window time.Duration) *Merge {
	if window <= 0 {
		window = 50 * time.Millisecond
	}
	return &Merge{src: [2]Source{a, b}, window: window, now: time.Now}
}

// ReadPacket returns the older of the two sources' next packets (see the
// type's doc). When neither source has a packet it returns the timeout
// error of the last source read (so the sieve checks for shutdown), and
// io.EOF when both have ended.
func (m *Merge) ReadPacket() ([]byte, int64, uint8, uint16, error) {
	var idle error
	for {
		if i, ok := m.pick(); ok {
			h := &m.head[i]
			h.ok = false
			m.publish()
			return h.data, h.ts, h.iface, h.lt, nil
		}
		if m.done[0] && m.done[1] {
			return nil, 0, 0, 0, io.EOF
		}
		if idle != nil {
			m.publish()
			return nil, 0, 0, 0, idle
		}
		// Read every source without a head once. Each read either gives
		// a head (then pick succeeds or the other source is read), ends
		// a source, or reports idle (then we return after one more pick).
		for i := range 2 {
			if m.head[i].ok || m.done[i] {
				continue
			}
			data, ts, iface, lt, err := m.src[i].ReadPacket()
			switch {
			case err == nil && data != nil:
				m.head[i] = mhead{ok: true, data: data, ts: ts, iface: iface, lt: lt, since: m.now()}
			case errors.Is(err, io.EOF):
				m.done[i] = true
			case err == nil:
				idle = ErrNoTraffic
			case isTimeout(err):
				idle = err
			default:
				return nil, 0, 0, 0, err
			}
		}
	}
}

// pick chooses the head to deliver, if any may go now.
func (m *Merge) pick() (int, bool) {
	a, b := &m.head[0], &m.head[1]
	switch {
	case a.ok && b.ok:
		if b.ts < a.ts {
			return 1, true
		}
		return 0, true
	case !a.ok && !b.ok:
		return 0, false
	}
	i := 0
	if b.ok {
		i = 1
	}
	h, o := &m.head[i], 1-i
	switch {
	case m.done[o]:
		return i, true
	case m.src[o].Clock() >= h.ts:
		return i, true // the other port cannot deliver anything older
	case m.now().Sub(h.since) >= m.window:
		return i, true
	}
	return 0, false
}

// publish updates the merged clock: before any head still held, and no
// later than either source's clock (an ended source does not hold back).
func (m *Merge) publish() {
	c := int64(1<<63 - 1)
	for i := range 2 {
		if m.head[i].ok {
			c = min(c, m.head[i].ts)
		} else if !m.done[i] {
			c = min(c, m.src[i].Clock())
		} else {
			c = min(c, max(m.src[i].Clock(), m.src[1-i].Clock()))
		}
	}
	if c > m.clock.Load() {
		m.clock.Store(c)
	}
}

// Clock returns a time before which no packet will be delivered any more.
func (m *Merge) Clock() int64 { return m.clock.Load() }

// Close closes both sources.
func (m *Merge) Close() error {
	return errors.Join(m.src[0].Close(), m.src[1].Close())
}

func isTimeout(err error) bool {
	var to interface{ Timeout() bool }
	return errors.As(err, &to) && to.Timeout()
}
