package offline

import (
	"fmt"
	"net/netip"

	"github.com/tmon-project/tmon/collector"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/transport"
)

// queue hands the probes' PDUs and watermarks to the collector on a second
// goroutine, in batches, so that reading and sieving the captures (the
// probes' side) and reconciling (the collector's) run on two cores at once.
// The collector is called in exactly the order the probes' side made the
// calls, as it was when they were made in line: the figures do not depend
// on the goroutines' timing. A batch holds copies of its PDUs (a builder is
// reused as soon as its PDU is finished); batches go back and forth between
// the two sides, so that the probes' side is at most queueDepth batches
// ahead and the memory stays bounded.
type queue struct {
	coll    *collector.Collector
	batches chan *batch
	free    chan *batch
	cur     *batch
	failed  chan struct{} // closed when the collector's side fails
	done    chan struct{} // closed when it has ended
	err     error         // its error: read after failed or done is closed
}

// queueDepth is the number of batches: one being filled, the others
// waiting or being handed over.
const queueDepth = 4

type batch struct {
	ops  []op
	data []byte // the PDUs, one after another
}

// op is one call to the collector: a PDU (data[from:to]) or a watermark.
type op struct {
	probe    uint16
	typ      pdu.Type
	seq      uint32
	from, to int
	wm       *transport.Watermark // a watermark, not a PDU
}

func newQueue(coll *collector.Collector) *queue {
	q := &queue{
		coll:    coll,
		batches: make(chan *batch, queueDepth),
		free:    make(chan *batch, queueDepth),
		failed:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	for range queueDepth - 1 {
		q.free <- &batch{}
	}
	q.cur = &batch{}
	go q.run()
	return q
}

// pdu queues a finished PDU; buf may be reused once it returns.
func (q *queue) pdu(probe uint16, t pdu.Type, seq uint32, buf []byte) {
	b := q.cur
	from := len(b.data)
	b.data = append(b.data, buf...)
	b.ops = append(b.ops, op{probe: probe, typ: t, seq: seq, from: from, to: len(b.data)})
}

// watermark queues a watermark of probe.
func (q *queue) watermark(probe uint16, wm transport.Watermark) {
	q.cur.ops = append(q.cur.ops, op{probe: probe, wm: &wm})
}

// flush hands the batch being filled over and takes a free one (waiting
// while the collector's side is queueDepth−1 batches behind). It returns
// the collector's error once it has failed.
func (q *queue) flush() error {
	if len(q.cur.ops) > 0 {
		q.batches <- q.cur
		q.cur = <-q.free
	}
	return q.err0()
}

// err0 is the collector's error if it has failed already, else nil.
func (q *queue) err0() error {
	select {
	case <-q.failed:
		return q.err
	default:
		return nil
	}
}

// close hands the last batch over, waits until the collector has been
// given everything, and returns the first error it gave.
func (q *queue) close() error {
	if len(q.cur.ops) > 0 {
		q.batches <- q.cur
	}
	close(q.batches)
	<-q.done
	return q.err
}

// run is the collector's side. After an error it only returns the batches
// (the probes' side stops at its next flush).
func (q *queue) run() {
	defer close(q.done)
	for b := range q.batches {
		if q.err == nil {
			if err := q.handle(b); err != nil {
				q.err = err
				close(q.failed)
			}
		}
		b.ops, b.data = b.ops[:0], b.data[:0]
		q.free <- b
	}
}

func (q *queue) handle(b *batch) error {
	for i := range b.ops {
		o := &b.ops[i]
		if o.wm != nil {
			q.coll.HandleWatermark(o.probe, session, *o.wm)
			continue
		}
		f, err := pdu.Parse(b.data[o.from:o.to])
		if err == nil {
			err = q.coll.HandlePDU(netip.AddrPort{}, &f)
		}
		if err != nil {
			return fmt.Errorf("offline: probe id %d: %v PDU %d: %w", o.probe, o.typ, o.seq, err)
		}
	}
	return nil
}
