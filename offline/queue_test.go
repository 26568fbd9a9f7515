package offline

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/collector"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/transport"
)

// TestQueueCollectorFails: a PDU the collector refuses stops the queue with
// that PDU's error (probe, type, sequence), seen by the probes' side at a
// later flush and at close, without a hang however many batches follow.
func TestQueueCollectorFails(t *testing.T) {
	cfg, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := collector.New(cfg, cfg.Collectors[0].Name, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	coll.SetVolatileSpool()
	q := newQueue(coll)
	b := pdu.NewBuilder(pdu.MaxPDUSize)
	b.AddEvent(pdu.Event{TS: 1, Kind: "start", Detail: "test"})
	q.pdu(1, pdu.TypeEvents, 1, b.Finish(pdu.Header{Type: pdu.TypeEvents, Probe: 1, Session: session, Seq: 1}))
	q.pdu(1, pdu.TypeSightings, 2, []byte("not a PDU"))
	var flushErr error
	for i := range 50 { // more batches than the queue holds
		q.watermark(1, transport.Watermark{Seq: 2, ProbeTime: int64(i)})
		if err := q.flush(); err != nil && flushErr == nil {
			flushErr = err
		}
	}
	err = q.close()
	if err == nil || !strings.Contains(err.Error(), "probe id 1: ") || !strings.Contains(err.Error(), " PDU 2: ") {
		t.Fatalf("close: %v, want the error of PDU 2 of probe 1", err)
	}
	if flushErr != nil && flushErr != err {
		t.Errorf("flush said %v, close %v", flushErr, err)
	}
}
