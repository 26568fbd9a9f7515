package collector

import (
	"io"
	"log/slog"
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

// TestByeOvertakes: probe b's bye arrives before its sightings PDU (which
// was lost once and retried). The collector must keep waiting for b until
// every PDU before the bye has arrived: deciding at the bye made the packet
// lost at A and its B sighting late.
func TestByeOvertakes(t *testing.T) {
	cfg, err := conf.Parse(strings.NewReader(clockXML), "t.xml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, err := New(cfg, "c", dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Truncate(time.Second).Add(-time.Minute).UnixNano()
	key := flow.Key{Class: 0, Fields: flow.Set(0).With(flow.Dst)}
	pdus := func(probe uint16) [][]byte {
		var out [][]byte
		b := pdu.NewBuilder(1400)
		add := func(h pdu.Header) {
			d := append([]byte(nil), b.Finish(h)...)
			seq := uint32(len(out) + 1)
			if err := pdu.Restamp(d, probe, 77, seq, 1); err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
			b.Reset()
		}
		b.AddFlowDef(pdu.FlowDef{ID: 0, Iface: 0, Key: key})
		add(pdu.Header{ProbeTime: base})
		b.AddSighting(0, 0, false, pdu.Sighting{Flow: 0, Sig: 42, TS: base + int64(probe)*1000})
		add(pdu.Header{ProbeTime: base + 10_000})
		add(pdu.Header{Type: pdu.TypeBye, ProbeTime: base + 20_000})
		return out
	}
	// contiguous is what the receiver reports: the watermark of the
	// PDUs delivered without a gap.
	deliver := func(probe uint16, d []byte, contiguous uint32, at int64) {
		t.Helper()
		f, err := pdu.Parse(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.handle(&f); err != nil {
			t.Fatal(err)
		}
		c.HandleWatermark(probe, 77, transport.Watermark{Seq: contiguous, ProbeTime: at})
	}
	a, b := pdus(1), pdus(2)
	for i, d := range a {
		deliver(1, d, uint32(i+1), base+int64(i)*10_000)
	}
	deliver(2, b[0], 1, base)
	deliver(2, b[2], 1, base) // the bye, before seq 2
	c.mu.Lock()
	c.advance(time.Now())
	c.mu.Unlock()
	deliver(2, b[1], 3, base+20_000) // the retry: now every seq up to the bye
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "owd_stats", "*.tsv"))
	if len(files) != 1 {
		t.Fatalf("owd_stats files %q", files)
	}
	hdr, rows, err := spool.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]string{}
	for i, h := range hdr {
		col[h] = rows[0][i]
	}
	if len(rows) != 1 || col["count"] != "1" || col["lost"] != "0" || col["missed"] != "0" {
		t.Errorf("owd_stats %v: want one delay, nothing lost or missed", rows)
	}
	if k := c.rec.Counters(); k.Late != 0 {
		t.Errorf("%d late sightings", k.Late)
	}
}
