package probe

import (
	"sync/atomic"
	"time"

	"github.com/tmon-project/tmon/capture"
	"github.com/tmon-project/tmon/transport"
)

// watermark wraps the capture source to know which packets the sieve has
// finished with: when it asks for packet n+1, packet n has been pushed.
type watermark struct {
	src  capture.Source
	last atomic.Int64 // time of the last packet fully handled by the sieve
	prev int64        // time of the packet being handled (sieve goroutine only)
}

func (w *watermark) ReadPacket() ([]byte, int64, uint8, uint16, error) {
	if w.prev != 0 {
		w.last.Store(w.prev)
	}
	data, ts, iface, lt, err := w.src.ReadPacket()
	if err != nil {
		// End of input, or an idle gap of a paced replay: no packet
		// stamped before the source's clock can come any more.
		if c := w.src.Clock(); c > w.last.Load() {
			w.last.Store(c)
		}
		return data, ts, iface, lt, err
	}
	w.prev = ts
	return data, ts, iface, lt, nil
}

// safe returns a time before which every packet has left the sieve.
func (w *watermark) safe() int64 { return w.last.Load() }

// processStart is when this process started (near enough).
var processStart = time.Now()

// lastSession is the latest session of this process.
var lastSession atomic.Uint32

// newSession returns the session id: the start time in milliseconds
// (transport.SessionID), so that sessions grow from one run to the next
// and a collector refuses a replayed older session. A previous process of
// this probe ended before this one started, so its sessions are at most
// the millisecond this process started in: a session is taken from a later
// one (by the time the configuration is read, it has passed; otherwise the
// wait is below a millisecond). Within a process, sessions grow by at
// least one.
func newSession() uint32 {
	if wait := time.Until(processStart.Truncate(time.Millisecond).Add(time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	for {
		last := lastSession.Load()
		s := transport.SessionID(time.Now())
		if last != 0 && int32(s-last) <= 0 {
			s = last + 1
		}
		if lastSession.CompareAndSwap(last, s) {
			return s
		}
	}
}
