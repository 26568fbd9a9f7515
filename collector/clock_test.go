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

const clockXML = `<tmon version="t" interval="1s">
  <clock budget="1ms"/>
  <collector name="c" address="127.0.0.1:1"/>
  <probe name="a" id="1"><interface name="a0" hop="A"/></probe>
  <probe name="b" id="2"><interface name="b0" hop="B"/></probe>
  <flowClass name="u"><granular fields="ip.dst"/><oneWay hops="A B"/></flowClass>
</tmon>`

// TestClockBound feeds two probes' flow definitions, sightings and clock
// PDUs to a collector and checks the clock columns of owd_stats.
func TestClockBound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		clocks  map[uint16]pdu.Clock
		err, ok string
	}{
		{"synced", map[uint16]pdu.Clock{
			1: {Offset: -100_000, RootDistance: 200_000, Stratum: 2, Synced: true, Server: "s"},
			2: {Offset: 50_000, RootDistance: 150_000, Stratum: 2, Synced: true, Server: "s"},
		}, "500000", "1"},
		{"one unsynchronised", map[uint16]pdu.Clock{
			1: {Offset: -100_000, RootDistance: 200_000, Stratum: 2, Synced: true},
			2: {}, // no offset: the pair's bound is unknown, not 300 µs
		}, "", "0"},
		{"one unknown", map[uint16]pdu.Clock{1: {Synced: true, Assumed: true}}, "", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
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
			for probe := uint16(1); probe <= 2; probe++ {
				seq := uint32(1)
				feed := func(b []byte) {
					t.Helper()
					b = append([]byte(nil), b...)
					if err := pdu.Restamp(b, probe, 77, seq, seq); err != nil {
						t.Fatal(err)
					}
					seq++
					f, err := pdu.Parse(b)
					if err != nil {
						t.Fatal(err)
					}
					if err := c.handle(&f); err != nil {
						t.Fatal(err)
					}
					// As the receiver does once the PDUs up to it arrived.
					c.HandleWatermark(probe, 77, transport.Watermark{Seq: f.Header.Seq, ProbeTime: f.Header.ProbeTime})
				}
				b := pdu.NewBuilder(1400)
				if k, ok := tc.clocks[probe]; ok {
					b.AddClock(k)
					feed(b.Finish(pdu.Header{}))
					b.Reset()
				}
				key := flow.Key{Class: 0, Fields: flow.Set(0).With(flow.Dst)}
				b.AddFlowDef(pdu.FlowDef{ID: 0, Iface: 0, Key: key})
				feed(b.Finish(pdu.Header{}))
				b.Reset()
				b.AddSighting(0, 0, false, pdu.Sighting{Flow: 0, Sig: 42, TS: base + int64(probe)*1000})
				feed(b.Finish(pdu.Header{ProbeTime: base + 1000}))
				b.Reset()
				feed(b.Finish(pdu.Header{Type: pdu.TypeBye, ProbeTime: base + 2000}))
			}
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
			if len(rows) != 1 || hdr[len(hdr)-2] != "clock_err_ns" {
				t.Fatalf("%q %q", hdr, rows)
			}
			r := rows[0]
			if r[6] != "1" || r[len(r)-2] != tc.err || r[len(r)-1] != tc.ok {
				t.Fatalf("row %q: want count 1, clock_err_ns %q, clock_ok %q", r, tc.err, tc.ok)
			}
		})
	}
}
