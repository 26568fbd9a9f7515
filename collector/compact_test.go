package collector

import (
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
	"github.com/tmon-project/tmon/transport"
)

const compactXML = `<tmon version="t" interval="1s">
  <collector name="c" address="127.0.0.1:1"/>
  <probe name="a" id="1"><interface name="a0" hop="A"/></probe>
  <probe name="b" id="2"><interface name="b0" hop="B"/></probe>
  <flowClass name="u"><granular fields="ip.dst"/><oneWay hops="A B" perPacket="true"/></flowClass>
</tmon>`

type probeState struct {
	id      uint16
	seq     uint32
	b       *pdu.Builder
	defined int
}

// floor: probe 1 never raises its floor (the receiver's window settles
// its seqs), probe 2 raises it with every PDU.
func (p *probeState) floor() uint32 {
	if p.id == 1 {
		return 1
	}
	return p.seq
}

// compactTraffic builds the datagrams two probes send, in arrival order:
// flows defined along the way (each used long after its definition),
// packets seen at A and 13 ms later at B, every 13th lost before B.
func compactTraffic(t *testing.T, base int64) [][]byte {
	t.Helper()
	const secs, flows, perSec = 120, 40, 100
	ps := []*probeState{{id: 1, seq: 1, b: pdu.NewBuilder(1400)}, {id: 2, seq: 1, b: pdu.NewBuilder(1400)}}
	var out [][]byte
	emit := func(p *probeState, now int64) {
		if p.b.Len() == 0 {
			return
		}
		d := append([]byte(nil), p.b.Finish(pdu.Header{ProbeTime: now})...)
		p.b.Reset()
		if err := pdu.Restamp(d, p.id, 77, p.seq, p.floor()); err != nil {
			t.Fatal(err)
		}
		p.seq++
		out = append(out, d)
	}
	key := func(i int) flow.Key {
		return flow.Key{Class: 0, Fields: flow.Set(0).With(flow.Dst), Dst: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})}
	}
	for sec := 0; sec < secs; sec++ {
		want := min(flows, 4+sec) // a flow more every second
		for _, p := range ps {
			for p.defined < want {
				if !p.b.AddFlowDef(pdu.FlowDef{ID: uint32(p.defined), Iface: 0, Key: key(p.defined)}) {
					emit(p, base+int64(sec)*1e9)
					continue
				}
				p.defined++
			}
			emit(p, base+int64(sec)*1e9)
		}
		for k := 0; k < perSec; k++ {
			n := sec*perSec + k
			ts := base + int64(sec)*1e9 + int64(k)*(1e9/perSec)
			fl := uint32(n % want)
			sig := uint32(n*2654435761) | 1
			for i, p := range ps {
				if i == 1 && n%13 == 0 {
					continue
				}
				s := pdu.Sighting{Flow: fl, Sig: sig, TS: ts + int64(i)*13e6} // some cross into the next interval
				if !p.b.AddSighting(fl, 0, false, s) {
					emit(p, s.TS)
					p.b.AddSighting(fl, 0, false, s)
				}
			}
			if k%10 == 9 {
				for _, p := range ps {
					emit(p, ts+4e6)
				}
			}
		}
	}
	for _, p := range ps {
		emit(p, base+secs*1e9)
		p.b.Reset()
		d := append([]byte(nil), p.b.Finish(pdu.Header{Type: pdu.TypeBye, ProbeTime: base + secs*1e9 + 1})...)
		if err := pdu.Restamp(d, p.id, 77, p.seq, p.seq); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

type testCollector struct {
	*Collector
	rcv *transport.Receiver
	now *time.Time // the ticker's clock: a second a tick, so that the spool cuts its row files
}

func startCollector(t *testing.T, cfg *conf.Config, dir string, compactAt int64) testCollector {
	t.Helper()
	c, err := New(cfg, "c", dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := transport.NewReceiver(nil, cfg.Transport, transport.ReceiverOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c.rcv = rcv
	c.compactAt = compactAt
	if err := c.openJournal(dir); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	return testCollector{c, rcv, &now}
}

// feed hands the collector datagrams as the receiver would, with a tick
// every 20.
func (c testCollector) feed(t *testing.T, ds [][]byte, maxJournal *int64) {
	t.Helper()
	for i, d := range ds {
		if err := c.rcv.Replay(append([]byte(nil), d...), c.Collector); err != nil {
			t.Fatal(err)
		}
		if i%20 == 19 {
			*c.now = c.now.Add(time.Second)
			c.tick(*c.now)
		}
		if maxJournal != nil {
			*maxJournal = max(*maxJournal, c.j.size)
		}
	}
}

// intervalFiles reads every spool file but the flows and events ones.
// sameIntervalFiles checks that a restarted collector's interval files,
// got, are those of the uninterrupted run, want: none missing, none
// different, none more (written twice).
func sameIntervalFiles(t *testing.T, got, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s missing after the restart", name)
		} else if g != w {
			t.Errorf("%s differs after the restart:\n got %.300q\nwant %.300q", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s written only with the restart (written twice?)", name)
		}
	}
}

func intervalFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			if strings.HasPrefix(fi.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(rel, "flows") || strings.HasPrefix(rel, "events") || strings.HasPrefix(fi.Name(), ".") {
			return nil
		}
		b, err := os.ReadFile(p)
		m[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRestartJournalCompaction drives a collector through several compactions,
// kills it (no Close), restarts it from the same spool and checks that
// the spool ends as after an uninterrupted run, that retransmissions of
// PDUs acked before the kill are duplicates, and that the journal stayed
// bounded.
func TestRestartJournalCompaction(t *testing.T) {
	cfg, err := conf.Parse(strings.NewReader(compactXML), "t.xml")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Truncate(time.Second).Add(-time.Hour).UnixNano()
	ds := compactTraffic(t, base)

	ref := t.TempDir()
	c := startCollector(t, cfg, ref, 1<<40)
	var unbounded int64
	c.feed(t, ds, &unbounded)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	want := intervalFiles(t, ref)
	if len(want) < 50 {
		t.Fatalf("reference run wrote %d interval files", len(want))
	}

	dir := t.TempDir()
	const limit = 32 << 10
	c = startCollector(t, cfg, dir, limit)
	kill := len(ds) / 2
	var bounded int64
	c.feed(t, ds[:kill], &bounded)
	// Kill shortly after a compaction: the open intervals then hold
	// sightings of PDUs from before it.
	for n := c.compactions; c.compactions == n; kill++ {
		c.feed(t, ds[kill:kill+1], &bounded)
		if kill%20 == 19 {
			*c.now = c.now.Add(time.Second)
			c.tick(*c.now)
		}
	}
	c.feed(t, ds[kill:kill+3], &bounded)
	kill += 3
	if c.compactions < 3 {
		t.Fatalf("%d compactions, want several (journal %d bytes)", c.compactions, c.j.size)
	}
	// Killed: no Close; the journal file stays as written.
	t.Logf("journal: %d compactions, at most %d bytes, %d kept by the last; %d bytes without compaction", c.compactions, bounded, c.j.kept, unbounded)
	if bounded > unbounded/3 {
		t.Errorf("journal reached %d bytes, %d without compaction", bounded, unbounded)
	}

	c2 := startCollector(t, cfg, dir, limit)
	// The restored flow tables hold their slots against maxFlows, as the
	// definitions did before the kill.
	if c2.flowSlots != c.flowSlots || c.flowSlots == 0 {
		t.Errorf("flow slots held after the restart %d, before the kill %d", c2.flowSlots, c.flowSlots)
	}
	// Retransmissions of PDUs acked before the kill, long compacted away
	// and recent ones: duplicates.
	before := c2.rcv.Stats()
	again := append(append([][]byte(nil), ds[:10]...), ds[kill-30:kill]...)
	c2.feed(t, again, nil)
	after := c2.rcv.Stats()
	if after.Delivered != before.Delivered || after.Duplicates-before.Duplicates != uint64(len(again)) {
		t.Fatalf("retransmissions: delivered %d→%d, duplicates %d→%d, want %d duplicates",
			before.Delivered, after.Delivered, before.Duplicates, after.Duplicates, len(again))
	}
	c2.feed(t, ds[kill:], nil)
	if st := c2.rcv.Stats(); st.HandlerErrors != 0 {
		t.Fatalf("%d PDUs refused after the restart (flows defined before the compaction?)", st.HandlerErrors)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	sameIntervalFiles(t, intervalFiles(t, dir), want)
	if fi, err := os.Stat(filepath.Join(dir, ".collector", "journal")); err != nil || fi.Size() != 0 {
		t.Errorf("journal after a clean stop: %v %v", fi, err)
	}
}
