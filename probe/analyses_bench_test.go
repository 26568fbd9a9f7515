package probe

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/analyse/rtt"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/sieve"
)

type nopSender struct{}

func (nopSender) Send(b []byte) (uint32, error) { return 0, nil }

const benchConf = `<tmon version="bench" interval="10s">
  <transport insecure="true"/>
  <collector name="c1" address="127.0.0.1:9"/>
  <probe name="pa" id="1"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2"><interface name="b0" hop="B"/></probe>
  <flowClass name="site">
    <filter><match field="ip.src" value="10.1.0.0/16"/></filter>
    <granular fields="ip.src ip.dst l4.dport"/>
    <oneWay hops="A B" maxTransit="1s" timeout="2s"/>
  </flowClass>
  <flowClass name="other">
    <filter not="true"><match field="ip.src" value="10.1.0.0/16"/></filter>
    <granular fields="ip.src ip.dst"/>
  </flowClass>
</tmon>`

// BenchmarkAnalyses is the probe's per-packet cost from the sieve to the
// PDU builders (sieve with reassembly, analyser, PDU encoding) on a mixed
// trace — generated traffic at hop A: UDP and TCP flows, 5 % of the UDP
// datagrams fragmented, IPv6, background — with the one-way sightings
// only, with counters and round trips, and with every protocol analysis on
// (counters, round trips, TCP connections, FTP).
func BenchmarkAnalyses(b *testing.B) {
	dir := b.TempDir()
	gc := gen.DefaultConfig()
	gc.Count, gc.Frag, gc.IPv6, gc.Background = 100_000, 0.05, 0.1, 0.05
	if _, _, err := gen.Generate(gc, dir); err != nil {
		b.Fatal(err)
	}
	frames := readFrames(b, filepath.Join(dir, gen.FileHopA))
	cfg, err := conf.Parse(bytes.NewReader([]byte(benchConf)), "bench.xml")
	if err != nil {
		b.Fatal(err)
	}
	for _, set := range []string{"one-way-only", "counters-rtt", "all-analyses"} {
		b.Run(set, func(b *testing.B) {
			sv, err := sieve.Compile(cfg)
			if err != nil {
				b.Fatal(err)
			}
			out := newOutput(1400)
			out.sender = nopSender{}
			var plug []analyse.Analysis
			switch set {
			case "counters-rtt": // the analyses before TCP connections and FTP
				plug = analyses(cfg, out)[:2]
			case "all-analyses":
				plug = analyses(cfg, out)
			}
			an, err := analyse.New(cfg, 0, out, analyse.Config{Analyses: plug})
			if err != nil {
				b.Fatal(err)
			}
			var rec sieve.Record
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f := &frames[i%len(frames)]
				// shift each replay of the trace by its length, so that
				// intervals and timeouts move on as in a long capture
				ts := f.ts + int64(i/len(frames))*int64(20*time.Second)
				if ok, _ := sv.Packet(f.data, ts, 0, sieve.LinkEthernet, &rec); ok {
					an.Packet(&rec)
				}
				if i%256 == 255 {
					an.Advance(ts)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}

type frame struct {
	data []byte
	ts   int64
}

func readFrames(tb testing.TB, path string) []frame {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := pcapgo.NewReader(bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	var out []frame
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, frame{append([]byte(nil), data...), ci.Timestamp.UnixNano()})
	}
}

// TestRTTMemoryPer100k quotes the memory of the round-trip analysis holding
// 100 000 TCP handshakes in flight (SYNs waiting for their SYN/ACK).
func TestRTTMemoryPer100k(t *testing.T) {
	a := rtt.New(rtt.Config{Interval: time.Minute, Timeout: time.Hour}, rttDiscard{})
	var ids analyse.FlowIDs
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range 100_000 {
		r := sieve.Record{TS: int64(i), Classes: 1, IPVersion: 4, Proto: 6, TCPFlags: 0x02, TxnKind: sieve.TxnTCP, Txn: uint64(i) << 32,
			SrcPort: uint16(i), DstPort: 80}
		r.Src[0], r.Src[1], r.Src[2] = 10, byte(i>>16), byte(i>>8)
		a.Packet(&r, &ids)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if a.Pending() != 100_000 {
		t.Fatalf("%d pending", a.Pending())
	}
	per := float64(m1.HeapAlloc-m0.HeapAlloc) / 100_000
	t.Logf("round-trip analysis: %.0f bytes per pending handshake, %.1f MB per 100 k", per, per*100_000/1e6)
	if per > 400 {
		t.Errorf("%.0f bytes per pending transaction", per)
	}
}

type rttDiscard struct{}

func (rttDiscard) RTT(*pdu.RTT) {}
