package probe

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/analyse/counters"
	"github.com/tmon-project/tmon/analyse/ftp"
	"github.com/tmon-project/tmon/analyse/rtt"
	"github.com/tmon-project/tmon/analyse/tcpconn"
	"github.com/tmon-project/tmon/sieve"
)

// Every capture of tcpdump's test suite through the sieve (with
// reassembly) and every protocol analysis, in process: no panic, no hang,
// and no state left after Close — the reassembler, the counters and the
// round-trip tables are empty, every pending request accounted
// unanswered.
func TestTcpdumpCorpusAnalyses(t *testing.T) {
	dir := corpus(t, "tcpdump")
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	cfg := everythingConf(t, 9)
	var packets, records, rtts, conns int
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var next func() ([]byte, int64, uint16, error)
		if r, err := pcapgo.NewReader(bytes.NewReader(raw)); err == nil {
			r.SetSnaplen(262144)
			next = func() ([]byte, int64, uint16, error) {
				d, ci, err := r.ReadPacketData()
				return d, ci.Timestamp.UnixNano(), uint16(r.LinkType()), err
			}
		} else if r, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions); err == nil {
			next = func() ([]byte, int64, uint16, error) {
				d, ci, err := r.ReadPacketData()
				return d, ci.Timestamp.UnixNano(), uint16(r.LinkType()), err
			}
		} else {
			continue
		}
		sv, err := sieve.Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out := newOutput(1400)
		out.sender = nopSender{}
		ctr := counters.New(cfg.Interval, 0, out)
		rt := rtt.New(rtt.Config{Interval: cfg.Interval}, out)
		tc := tcpconn.New(tcpconn.Config{Interval: cfg.Interval}, out)
		fa := ftp.New(ftp.Config{Interval: cfg.Interval}, out)
		an, err := analyse.New(cfg, 0, out, analyse.Config{Analyses: []analyse.Analysis{ctr, rt, tc, fa}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for {
			data, ts, link, err := next()
			if err != nil {
				break
			}
			packets++
			var rec sieve.Record
			if ok, _ := sv.Packet(data, ts, 0, link, &rec); ok {
				records++
				if rec.Flags&sieve.FlagPayload != 0 {
					an.PacketPayload(&rec, sv.Payload())
				} else {
					an.Packet(&rec)
				}
				an.Advance(ts)
			}
		}
		sv.CloseReassembly()
		an.Close()
		rtts += int(rt.Matched)
		conns += int(tc.Conns)
		if time.Since(start) > 10*time.Second {
			t.Errorf("%s: %v", filepath.Base(f), time.Since(start))
		}
		if st := sv.Reassembly(); st.Held != 0 || st.HeldBytes != 0 {
			t.Errorf("%s: reassembly holds %+v after Close", filepath.Base(f), st)
		}
		if ctr.Len() != 0 || rt.Pending() != 0 || tc.Len() != 0 || fa.Len() != 0 {
			t.Errorf("%s: %d counters, %d round trips, %d TCP connections, %d FTP sessions held after Close",
				filepath.Base(f), ctr.Len(), rt.Pending(), tc.Len(), fa.Len())
		}
	}
	t.Logf("%d captures: %d packets, %d records, %d round trips matched, %d TCP connections", len(files), packets, records, rtts, conns)
	if rtts == 0 || conns == 0 {
		t.Error("no round trip or no TCP connection in the whole corpus")
	}
}
