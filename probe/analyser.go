package probe

import (
	"context"
	"errors"
	"time"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/ring"
	"github.com/tmon-project/tmon/sieve"
)

// analyseLoop is the analyser goroutine: it drains the rings of every
// sieve into the analyser (records of different rings interleave in time:
// the analyser and the PDU deltas take that), closes PDUs that are full or
// older than maxBuild, passes on the helpers' events, and advances the data
// clock that heartbeats and PDU headers carry. It returns nil when every
// ring is closed and drained.
func analyseLoop(ctx context.Context, rgs []*ring.Ring[sieve.Record], pls []*ring.Ring[sieve.Payload], an *analyse.Analyser, out *output, wms []*watermark, nt *notes, shed *shedder, roll *roller, maxBuild time.Duration) error {
	batch := make([]sieve.Record, 256)
	var pl sieve.Payload
	for {
		// Read the watermark before draining: every record of a packet
		// read before it is already in the ring.
		w := safe(wms)
		n := 0
		for j, rg := range rgs {
			k := rg.PopN(batch)
			for i := 0; i < k; i++ {
				// A record's payload was pushed before it: it is there.
				if batch[i].Flags&sieve.FlagPayload != 0 && pls[j].Pop(&pl) {
					an.PacketPayload(&batch[i], pl.Bytes())
					continue
				}
				an.Packet(&batch[i])
			}
			if k == len(batch) {
				// The ring may hold more records from before w; a
				// ring is in time order, so they are not earlier
				// than the last one taken.
				w = min(w, batch[k-1].TS)
			}
			n += k
		}
		// Every record captured before w has been analysed: the protocol
		// analyses may send what ended before it.
		an.Advance(w)
		roll.check(an.IDs())
		nt.drain(out)
		if out.err != nil {
			return out.err
		}
		// Every packet captured before w has been analysed.
		out.progress(w, maxBuild)
		if err := shed.check(ctx, out, out.done); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, maxBuild/4+time.Millisecond)
		var err error
		if len(rgs) == 1 {
			err = rgs[0].Wait(wctx)
		} else {
			err = waitAny(wctx, rgs)
		}
		cancel()
		switch {
		case errors.Is(err, ring.ErrClosed):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
	}
}

// waitAny waits until a ring has a record (nil), every ring is closed and
// drained (ring.ErrClosed) or ctx ends, polling with a short sleep: with
// several rings there is no single index to spin on.
func waitAny(ctx context.Context, rgs []*ring.Ring[sieve.Record]) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for d := 20 * time.Microsecond; ; d = min(2*d, time.Millisecond) {
		closed := 0
		for _, rg := range rgs {
			if rg.Len() > 0 {
				return nil
			}
			if rg.Closed() {
				if rg.Len() > 0 {
					return nil
				}
				closed++
			}
		}
		if closed == len(rgs) {
			return ring.ErrClosed
		}
		t.Reset(d)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// safe returns a time before which every packet of every sieve has been
// pushed to its ring.
func safe(wms []*watermark) int64 {
	w := wms[0].safe()
	for _, m := range wms[1:] {
		w = min(w, m.safe())
	}
	return w
}
