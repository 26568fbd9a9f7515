package collector

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/spool"
	"github.com/tmon-project/tmon/transport"
)

// TestReconcilingGoroutine feeds the same PDUs — flow definitions, clock
// records, sightings over several intervals with losses at B, a sightings
// PDU refused because its flows are not defined yet, byes — to a collector
// that calls the reconciler directly (as a journal replay does) and to one
// whose reconciler runs on its own goroutine (as while listening): every
// owd_* spool file must be the same, byte for byte, and the figures the
// generated ones.
func TestReconcilingGoroutine(t *testing.T) {
	const xml = `<tmon version="t" interval="1s">
  <collector name="c" address="127.0.0.1:1"/>
  <probe name="a" id="1"><interface name="a0" hop="A"/></probe>
  <probe name="b" id="2"><interface name="b0" hop="B"/></probe>
  <flowClass name="u"><granular fields="ip.dst"/><oneWay hops="A B" maxTransit="100ms" timeout="200ms" perPacket="true"/></flowClass>
</tmon>`
	cfg, err := conf.Parse(strings.NewReader(xml), "t.xml")
	if err != nil {
		t.Fatal(err)
	}
	const (
		packets = 40_000
		gap     = 100_000 // ns between packets: 4 s of data time
		flows   = 16
	)
	base := time.Now().Truncate(time.Second).Add(-time.Minute).UnixNano()
	// pdus[h]: probe h+1's PDUs, sequenced.
	var pdus [2][][]byte
	for h := range 2 {
		b := pdu.NewBuilder(1400)
		add := func(hd pdu.Header) {
			d := append([]byte(nil), b.Finish(hd)...)
			seq := uint32(len(pdus[h]) + 1)
			if err := pdu.Restamp(d, uint16(h+1), 77, seq, seq); err != nil {
				t.Fatal(err)
			}
			pdus[h] = append(pdus[h], d)
			b.Reset()
		}
		for f := range flows {
			b.AddFlowDef(pdu.FlowDef{ID: uint32(f), Key: flow.Key{Class: 0, Fields: flow.Set(0).With(flow.Dst), Dst: netip.AddrFrom4([4]byte{10, 0, 0, byte(f)})}})
		}
		add(pdu.Header{ProbeTime: base})
		clock := base
		for i := range packets {
			if i%10_000 == 0 { // a PDU holds one type of record
				if b.Len() > 0 {
					add(pdu.Header{ProbeTime: clock})
				}
				b.AddClock(pdu.Clock{TS: clock, Synced: true, Offset: int64(h+1) * int64(i+1), RootDistance: 1000})
				add(pdu.Header{ProbeTime: clock})
			}
			if h == 1 && i%37 == 0 {
				continue // lost before B
			}
			fl := uint32(i % flows)
			s := pdu.Sighting{Flow: fl, Sig: uint32(i+1) * 2654435761, TS: base + int64(i)*gap + int64(h)*3e6}
			if !b.AddSighting(fl, 0, false, s) {
				add(pdu.Header{ProbeTime: clock})
				b.AddSighting(fl, 0, false, s)
			}
			clock = s.TS
		}
		add(pdu.Header{ProbeTime: clock})
		add(pdu.Header{Type: pdu.TypeBye, ProbeTime: clock})
		if h == 1 {
			// B's third PDU (after flows and clock) must be sightings (refused below).
			if f, err := pdu.Parse(pdus[h][2]); err != nil || f.Header.Type != pdu.TypeSightings {
				t.Fatalf("B's third PDU: %v %v", f.Header.Type, err)
			}
		}
	}
	run := func(async bool) string {
		dir := t.TempDir()
		c, err := New(cfg, "c", dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if async {
			c.startReconciling()
		}
		deliver := func(h, i int) error {
			f, err := pdu.Parse(pdus[h][i])
			if err != nil {
				t.Fatal(err)
			}
			if err := c.handle(&f); err != nil {
				return err
			}
			c.HandleWatermark(uint16(h+1), 77, transport.Watermark{Seq: f.Header.Seq, ProbeTime: f.Header.ProbeTime})
			return nil
		}
		// B's first sightings before its flow definitions: refused whole.
		if err := deliver(1, 2); !errors.Is(err, errUnknownFlow) {
			t.Fatalf("sightings before their flows: %v, want errUnknownFlow", err)
		}
		for i := 0; i < max(len(pdus[0]), len(pdus[1])); i++ {
			for h := range 2 {
				if i < len(pdus[h]) {
					if err := deliver(h, i); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if c.rq != nil {
			t.Fatal("the reconciling goroutine still runs after Close")
		}
		k := c.rec.Counters()
		if k.Sightings != 2*packets-(packets+36)/37 || k.Completed != packets-(packets+36)/37 || k.Lost != (packets+36)/37 || k.Late != 0 || k.Invalid != 0 {
			t.Errorf("async=%v: counters %+v", async, k)
		}
		return dir
	}
	sync, async := run(false), run(true)
	files, _ := filepath.Glob(filepath.Join(sync, "owd_*", "*.tsv"))
	stats := 0
	for _, f := range files {
		rel, _ := filepath.Rel(sync, f)
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(async, rel))
		if err != nil {
			t.Fatalf("async: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs:\nsync:\n%s\nasync:\n%s", rel, want, got)
		}
		if strings.HasPrefix(rel, spool.TypeStats) {
			stats++
		}
	}
	if got, _ := filepath.Glob(filepath.Join(async, "owd_*", "*.tsv")); len(got) != len(files) {
		t.Errorf("async: %d owd files, sync %d", len(got), len(files))
	}
	if stats < 4 {
		t.Errorf("%d owd_stats files, want one per interval of the 4 s", stats)
	}
}
