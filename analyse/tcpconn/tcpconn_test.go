package tcpconn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/sieve"
)

type sink struct{ got []pdu.TCPConn }

func (s *sink) TCPConn(c *pdu.TCPConn) {
	x := *c
	x.History = append([]byte(nil), c.History...)
	s.got = append(s.got, x)
}
func (s *sink) FlowDef(pdu.FlowDef)                {}
func (s *sink) Sighting(pdu.Sighting, uint8, bool) {}

// final returns the last record of every connection, by number.
func (s *sink) final() map[uint64]pdu.TCPConn {
	m := map[uint64]pdu.TCPConn{}
	for _, c := range s.got {
		if c.Status != pdu.TCPOpen {
			if _, dup := m[c.Conn]; dup {
				panic(fmt.Sprintf("connection %d ended twice", c.Conn))
			}
			m[c.Conn] = c
		}
	}
	return m
}

func corpus(t testing.TB, sub string) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, "shared", "corpus", sub)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("corpus %s not found above the test directory", sub)
		}
		dir = filepath.Dir(dir)
	}
}

// replay runs a capture through a sieve and an analyser with this
// analysis (one class, every packet, one flow).
func replay(t testing.TB, path string, cfg Config) *sink {
	t.Helper()
	ccfg := &conf.Config{Interval: time.Hour,
		Probes:  []conf.Probe{{Name: "p", ID: 1, Interfaces: []conf.Interface{{Name: "i0"}}}},
		Classes: []conf.Class{{Name: "all"}}}
	sv, err := sieve.Compile(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	out := &sink{}
	an, err := analyse.New(ccfg, 0, out, analyse.Config{Analyses: []analyse.Analysis{New(cfg, out)}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := pcapgo.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := pr.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var rec sieve.Record
		if ok, _ := sv.Packet(data, ci.Timestamp.UnixNano(), 0, uint16(pr.LinkType()), &rec); ok {
			an.Packet(&rec)
			an.Advance(rec.TS)
		}
	}
	an.Close()
	return out
}

// zeekConn is a row of Zeek's conn.log.
type zeekConn struct {
	orig, resp         netip.AddrPort
	duration           float64
	origBytes, respB   uint64
	state, history     string
	origPkts, respPkts uint64
}

func readConnLog(t *testing.T, path string) []zeekConn {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cols []string
	var out []zeekConn
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "#fields\t"); ok {
			cols = strings.Split(rest, "\t")
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		v := map[string]string{}
		for i, f := range strings.Split(line, "\t") {
			v[cols[i]] = f
		}
		if v["proto"] != "tcp" {
			continue
		}
		u := func(k string) uint64 {
			n, err := strconv.ParseUint(v[k], 10, 64)
			if err != nil {
				t.Fatalf("%s: %s %q: %v", path, k, v[k], err)
			}
			return n
		}
		d, err := strconv.ParseFloat(v["duration"], 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, zeekConn{
			orig:      netip.AddrPortFrom(netip.MustParseAddr(v["id.orig_h"]), uint16(u("id.orig_p"))),
			resp:      netip.AddrPortFrom(netip.MustParseAddr(v["id.resp_h"]), uint16(u("id.resp_p"))),
			duration:  d,
			origBytes: u("orig_bytes"), respB: u("resp_bytes"), state: v["conn_state"], history: v["history"],
			origPkts: u("orig_pkts"), respPkts: u("resp_pkts"),
		})
	}
	return out
}

// TestZeekConnLog: every TCP connection of the Zeek FTP captures, field by
// field against Zeek's conn.log (the independent oracle): originator and
// responder, duration (to the µs of the captures), payload bytes and
// packets each way, conn_state and history.
func TestZeekConnLog(t *testing.T) {
	for _, name := range []string{"ipv4", "ipv6"} {
		t.Run(name, func(t *testing.T) {
			z := readConnLog(t, filepath.Join(corpus(t, "zeek"), "baseline", "ftp-"+name, "conn.log"))
			got := replay(t, filepath.Join(corpus(t, "zeek"), "ftp", name+".pcap"), Config{}).final()
			if len(got) != len(z) {
				t.Errorf("%d connections, Zeek %d", len(got), len(z))
			}
			for _, zc := range z {
				var c *pdu.TCPConn
				for _, g := range got {
					if g.Orig == zc.orig && g.Resp == zc.resp {
						c = &g
						break
					}
				}
				if c == nil {
					t.Errorf("no connection %v → %v", zc.orig, zc.resp)
					continue
				}
				dur := float64(c.Last-c.First) / 1e9
				if math.Abs(dur-zc.duration) > 0.5e-6 {
					t.Errorf("%v: duration %.6f, Zeek %.6f", zc.orig, dur, zc.duration)
				}
				if c.O.Bytes != zc.origBytes || c.R.Bytes != zc.respB || c.O.Packets != zc.origPkts || c.R.Packets != zc.respPkts {
					t.Errorf("%v: bytes %d/%d packets %d/%d, Zeek %d/%d %d/%d", zc.orig, c.O.Bytes, c.R.Bytes, c.O.Packets, c.R.Packets,
						zc.origBytes, zc.respB, zc.origPkts, zc.respPkts)
				}
				if s := pdu.TCPStateName(c.State); s != zc.state || string(c.History) != zc.history {
					t.Errorf("%v: state %s history %s, Zeek %s %s", zc.orig, s, c.History, zc.state, zc.history)
				}
				if c.Status != pdu.TCPFin {
					t.Errorf("%v: status %s, want fin", zc.orig, pdu.TCPStatusName(c.Status))
				}
			}
		})
	}
}

// seg makes the record of a segment from a (10.0.0.1:1000) to b
// (10.0.0.2:80) or back.
func seg(ts int64, fromA bool, flags uint8, seq, ack uint32, pay uint16, win uint16) sieve.Record {
	r := sieve.Record{TS: ts, Classes: 1, IPVersion: 4, Proto: 6, TCPFlags: flags, TxnKind: sieve.TxnTCP,
		Txn: uint64(seq)<<32 | uint64(ack), TCPPayload: pay, TCPWindow: win, Length: 40 + uint32(pay)}
	a, b := [16]byte{10, 0, 0, 1}, [16]byte{10, 0, 0, 2}
	if fromA {
		r.Src, r.Dst, r.SrcPort, r.DstPort = a, b, 1000, 80
	} else {
		r.Src, r.Dst, r.SrcPort, r.DstPort = b, a, 80, 1000
	}
	return r
}

// TestGenerated: a connection whose client sequence numbers wrap past
// 2³², with a retransmission, a segment out of order, a zero window and
// a RST; every figure worked out by hand below.
func TestGenerated(t *testing.T) {
	const ms = int64(time.Millisecond)
	t0 := int64(1_700_000_000) * int64(time.Second)
	isn := uint32(0xffffff00) // 256 bytes before the wrap
	srv := uint32(5000)
	recs := []sieve.Record{
		seg(t0, true, fSYN, isn, 0, 0, 1000),                      // S
		seg(t0+1*ms, false, fSYN|fACK, srv, isn+1, 0, 1000),       // h
		seg(t0+2*ms, true, fACK, isn+1, srv+1, 0, 1000),           // A
		seg(t0+3*ms, true, fACK, isn+1, srv+1, 200, 1000),         // D: bytes 0–200
		seg(t0+4*ms, true, fACK, isn+201, srv+1, 200, 1000),       // 200–400 (crosses the wrap at 255)
		seg(t0+5*ms, true, fACK, isn+601, srv+1, 100, 1000),       // 600–700: a gap 400–600
		seg(t0+6*ms, true, fACK, isn+401, srv+1, 200, 1000),       // 400–600: out of order, fills the gap
		seg(t0+7*ms, true, fACK, isn+201, srv+1, 200, 1000),       // 200–400 again: retransmission (T)
		seg(t0+8*ms, false, fACK, srv+1, isn+701, 0, 0),           // zero window (w) — also a pure ack (a)
		seg(t0+9*ms, false, fACK, srv+1, isn+701, 50, 1000),       // d: 50 bytes
		seg(t0+10*ms, true, fRST|fACK, isn+701, srv+51, 0, 0),     // R (a RST with window 0: not a zero window)
		seg(t0+11*ms, false, fACK, srv+51, isn+701, 0, 1000),      // after the RST, within the close delay
		seg(t0+10*int64(time.Second), true, fSYN, 77, 0, 0, 1000), // a new connection on the same ports, later
	}
	out := &sink{}
	a := New(Config{Interval: time.Minute}, out)
	var ids analyse.FlowIDs
	for i := range recs {
		a.Packet(&recs[i], &ids)
		a.Advance(recs[i].TS)
	}
	a.Close()
	f := out.final()
	if len(f) != 2 {
		t.Fatalf("%d connections, want 2: %+v", len(f), out.got)
	}
	c := f[0]
	want := pdu.TCPConn{Conn: 0, First: t0, Last: t0 + 10*ms, Status: pdu.TCPRst, State: pdu.TCPStateCode("RSTO"),
		Orig: netip.MustParseAddrPort("10.0.0.1:1000"), Resp: netip.MustParseAddrPort("10.0.0.2:80"),
		Report: t0 - t0%int64(time.Minute),
		O:      pdu.TCPSide{Packets: 8, Bytes: 700, Retrans: 1, OutOfOrder: 1},
		R:      pdu.TCPSide{Packets: 4, Bytes: 50, ZeroWindow: 1},
	}
	c.History, want.History = nil, nil
	if fmt.Sprint(c) != fmt.Sprint(want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if h := string(f[0].History); h != "ShADTawdR" {
		t.Errorf("history %s, want ShADTawdR", h)
	}
	if n := f[1]; n.Status != pdu.TCPEnd || n.State != pdu.TCPStateCode("S0") || n.O.Packets != 1 {
		t.Errorf("second connection %+v", n)
	}
}

// TestOpenReports: a connection spanning four intervals is reported
// open at the end of the first two (cumulative, excluding packets of the
// next interval), not at the end of the third (no packet in it), then
// ended by FIN both ways.
func TestOpenReports(t *testing.T) {
	iv := int64(time.Minute)
	t0 := int64(1_700_000_040) * int64(time.Second) // 40 s into a minute
	t0 -= t0 % iv
	recs := []sieve.Record{
		seg(t0+1, true, fSYN, 1, 0, 0, 9),
		seg(t0+2, false, fSYN|fACK, 1, 2, 0, 9),
		seg(t0+3, true, fACK, 2, 2, 10, 9),
		seg(t0+iv+5, true, fACK, 12, 2, 10, 9),
		seg(t0+3*iv+5, true, fFIN|fACK, 22, 2, 0, 9),
		seg(t0+3*iv+6, false, fFIN|fACK, 2, 23, 0, 9),
		seg(t0+3*iv+7, true, fACK, 23, 3, 0, 9),
	}
	out := &sink{}
	a := New(Config{Interval: time.Minute}, out)
	var ids analyse.FlowIDs
	for i := range recs {
		a.Packet(&recs[i], &ids)
	}
	a.Advance(t0 + 3*iv + 7 + int64(conf.DefaultAnalyses().TCPCloseDelay))
	var got []string
	for _, c := range out.got {
		got = append(got, fmt.Sprintf("%s@%d:%d/%d", pdu.TCPStatusName(c.Status), (c.Report-t0)/iv, c.O.Packets, c.O.Bytes))
	}
	if w := "[open@0:2/10 open@1:3/20 fin@3:5/20]"; fmt.Sprint(got) != w {
		t.Errorf("records %v, want %s", got, w)
	}
	if len(out.got) == 3 && pdu.TCPStateName(out.got[2].State) != "SF" {
		t.Errorf("state %s, want SF", pdu.TCPStateName(out.got[2].State))
	}
}

// TestFlood: a flood of new connections (SYNs from new ports) holds at
// most MaxConns; every connection is reported exactly once.
func TestFlood(t *testing.T) {
	out := &sink{}
	const max = 1000
	a := New(Config{MaxConns: max}, out)
	var ids analyse.FlowIDs
	for i := range 50_000 {
		r := seg(int64(i), true, fSYN, uint32(i), 0, 0, 9)
		r.SrcPort = uint16(i)
		r.Src[3] = byte(i >> 16)
		a.Packet(&r, &ids)
		if a.Len() > max {
			t.Fatalf("%d connections held, bound %d", a.Len(), max)
		}
	}
	a.Close()
	if f := out.final(); len(f) != 50_000 || a.Evicted != 50_000-max {
		t.Errorf("%d reported, %d evicted", len(f), a.Evicted)
	}
}

// TestMemoryPer100k quotes the memory of 100 000 open connections.
func TestMemoryPer100k(t *testing.T) {
	var ids analyse.FlowIDs
	a := New(Config{}, &sink{})
	var m0, m1 runtimeMem
	m0.read()
	for i := range 100_000 {
		r := seg(int64(i), true, fSYN, uint32(i), 0, 0, 9)
		r.SrcPort = uint16(i)
		r.Src[3] = byte(i >> 16)
		a.Packet(&r, &ids)
	}
	m1.read()
	if a.Len() != 100_000 {
		t.Fatalf("%d connections", a.Len())
	}
	per := float64(m1.heap-m0.heap) / 1e5
	t.Logf("%.0f bytes per connection, %.1f MB per 100 k", per, per*1e5/1e6)
	if per > 600 {
		t.Errorf("%.0f bytes per connection", per)
	}
}

// TestNoAlloc: a packet of a known connection allocates nothing.
func TestNoAlloc(t *testing.T) {
	a := New(Config{}, &sink{})
	var ids analyse.FlowIDs
	r := seg(1, true, fACK, 1, 1, 100, 9)
	a.Packet(&r, &ids)
	if n := testing.AllocsPerRun(1000, func() {
		r.TS++
		r.Txn += 100 << 32
		a.Packet(&r, &ids)
		a.Advance(r.TS)
	}); n != 0 {
		t.Errorf("%v allocations per packet", n)
	}
}

type runtimeMem struct{ heap uint64 }

func (m *runtimeMem) read() {
	runtime.GC()
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.heap = s.HeapAlloc
}

// TestCorpus: every capture of the Zeek and tcpdump corpora through the
// analysis (short intervals, so that open reports happen): no panic, and
// for every connection exactly one final record, after its open ones,
// whose figures never go down from one record to the next; payload bytes
// by sequence numbers never exceed the payload bytes of the packets.
func TestCorpus(t *testing.T) {
	var files []string
	for _, d := range []string{"zeek", "tcpdump"} {
		root := corpus(t, d)
		filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() && (strings.HasSuffix(p, ".pcap") || strings.HasSuffix(p, ".cap")) {
				files = append(files, p)
			}
			return nil
		})
	}
	conns := 0
	for _, f := range files {
		out := replayPayload(t, f)
		if out == nil {
			continue
		}
		last := map[uint64]pdu.TCPConn{}
		done := map[uint64]bool{}
		for _, c := range out.s.got {
			if done[c.Conn] {
				t.Errorf("%s: connection %d reported after its end", filepath.Base(f), c.Conn)
			}
			if p, ok := last[c.Conn]; ok && (c.O.Packets < p.O.Packets || c.R.Packets < p.R.Packets || c.O.Bytes < p.O.Bytes ||
				c.R.Bytes < p.R.Bytes || c.Last < p.Last || c.First != p.First) {
				t.Errorf("%s: connection %d went back: %+v after %+v", filepath.Base(f), c.Conn, c, p)
			}
			last[c.Conn] = c
			done[c.Conn] = c.Status != pdu.TCPOpen
		}
		for id, c := range last {
			if c.Status == pdu.TCPOpen {
				t.Errorf("%s: connection %d never ended", filepath.Base(f), id)
			}
			pay := out.payload[c.Orig.String()+">"+c.Resp.String()]
			if c.O.Bytes > pay {
				t.Errorf("%s: connection %d: %d bytes by sequence numbers, %d in the packets", filepath.Base(f), id, c.O.Bytes, pay)
			}
		}
		conns += len(last)
	}
	t.Logf("%d captures, %d TCP connections", len(files), conns)
	if conns < 100 {
		t.Errorf("only %d connections in the corpora", conns)
	}
}

type corpusOut struct {
	s       *sink
	payload map[string]uint64 // payload bytes of the packets, by "src>dst"
}

// replayPayload is replay with 1 s intervals, keeping the payload bytes
// of every direction; nil when the file is not a readable pcap.
func replayPayload(t *testing.T, path string) *corpusOut {
	ccfg := &conf.Config{Interval: time.Second,
		Probes:  []conf.Probe{{Name: "p", ID: 1, Interfaces: []conf.Interface{{Name: "i0"}}}},
		Classes: []conf.Class{{Name: "all"}}}
	sv, err := sieve.Compile(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	out := &corpusOut{s: &sink{}, payload: map[string]uint64{}}
	a := New(Config{Interval: time.Second}, out.s)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := pcapgo.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil
	}
	var ids analyse.FlowIDs
	for {
		data, ci, err := pr.ReadPacketData()
		if err != nil {
			break
		}
		var rec sieve.Record
		if ok, _ := sv.Packet(data, ci.Timestamp.UnixNano(), 0, uint16(pr.LinkType()), &rec); ok {
			a.Packet(&rec, &ids)
			a.Advance(rec.TS)
			if rec.TxnKind == sieve.TxnTCP && rec.Flags&(sieve.FlagICMPError|sieve.FlagNoL4) == 0 {
				k := endpoint(&rec.Src, rec.SrcPort, &conn{key: connKey{a: rec.Src, b: rec.Dst}}).String() + ">" +
					endpoint(&rec.Dst, rec.DstPort, &conn{key: connKey{a: rec.Src, b: rec.Dst}}).String()
				out.payload[k] += uint64(rec.TCPPayload)
			}
		}
	}
	a.Close()
	return out
}

// TestFINBytes: segments lost before the probe (bytes 100–300) are
// counted in the bytes by the FIN's sequence number (the FIN sits at 300),
// and a retransmission of part of them fills the gap (out of order, not a
// retransmission).
func TestFINBytes(t *testing.T) {
	out := &sink{}
	a := New(Config{}, out)
	var ids analyse.FlowIDs
	recs := []sieve.Record{
		seg(1, true, fSYN, 999, 0, 0, 9),
		seg(2, false, fSYN|fACK, 5, 1000, 0, 9),
		seg(3, true, fACK, 1000, 6, 100, 9),    // 0–100
		seg(4, true, fACK|fFIN, 1300, 6, 0, 9), // FIN at 300; 100–300 never seen
		seg(5, true, fACK, 1100, 6, 100, 9),    // 100–200 sent again: fills the gap
		seg(6, false, fACK|fFIN, 6, 1301, 0, 9),
	}
	for i := range recs {
		a.Packet(&recs[i], &ids)
	}
	a.Close()
	c := out.final()[0]
	if c.O.Bytes != 300 || c.O.OutOfOrder != 1 || c.O.Retrans != 0 {
		t.Errorf("bytes %d, out of order %d, retransmitted %d; want 300 1 0", c.O.Bytes, c.O.OutOfOrder, c.O.Retrans)
	}
}

// TestZeekTCPCaptures: the two TCP edge cases of the Zeek corpus, each
// figure worked out from `tcpdump -tt -S -nr F` (no Zeek baseline comes
// with them).
//
// handshake-reorder.pcap: the SYN/ACK is captured before the SYN, so the
// originator is the SYN's sender, the receiver of the first packet
// (history starts with ^); 7 packets each way; the client sends
// 4263588547 − 4263588411 = 136 bytes, the server 2779767246 − 2779762239
// = 5007; both FIN: SF, closed by the server's FIN at .080828, 0.141744 s
// after the first packet at .939084 (the client's last ACK after it is
// counted, not in the duration).
//
// fin_retransmission.pcap: a SYN, a FIN without ACK at the SYN's sequence
// number, the SYN/ACK, the FIN again with ACK, a RST from the server at
// .971258: 3 + 2 packets, no payload, RSTR (the originator had closed),
// 0.971258 − 0.360849 = 0.610409 s.
func TestZeekTCPCaptures(t *testing.T) {
	for _, tc := range []struct {
		file, orig, resp    string
		dur                 int64 // µs
		op, rp, ob, rb      uint64
		state, hist, status string
	}{
		{"handshake-reorder.pcap", "141.142.228.5:59856", "192.150.187.43:80", 141744, 7, 7, 136, 5007, "SF", "^hSADadFf", "fin"},
		{"fin_retransmission.pcap", "10.1.30.117:55344", "17.167.193.62:443", 610409, 3, 2, 0, 0, "RSTR", "SFhr", "rst"},
	} {
		f := replay(t, filepath.Join(corpus(t, "zeek"), "tcp", tc.file), Config{}).final()
		if len(f) != 1 {
			t.Fatalf("%s: %d connections", tc.file, len(f))
		}
		c := f[0]
		got := fmt.Sprint(c.Orig, " ", c.Resp, " ", (c.Last-c.First)/1000, " ", c.O.Packets, " ", c.R.Packets, " ", c.O.Bytes, " ", c.R.Bytes, " ",
			pdu.TCPStateName(c.State), " ", string(c.History), " ", pdu.TCPStatusName(c.Status))
		want := fmt.Sprint(tc.orig, " ", tc.resp, " ", tc.dur, " ", tc.op, " ", tc.rp, " ", tc.ob, " ", tc.rb, " ", tc.state, " ", tc.hist, " ", tc.status)
		if got != want {
			t.Errorf("%s\n got %s\nwant %s", tc.file, got, want)
		}
	}
}

// TestSummary: the memory bound's cost is said (the probe's
// analysis.bound event), nothing when there was none.
func TestSummary(t *testing.T) {
	a := New(Config{MaxConns: 1}, &sink{})
	var ids analyse.FlowIDs
	for i := range 3 {
		r := seg(int64(i), true, fSYN, 1, 0, 0, 9)
		r.SrcPort = uint16(1000 + i)
		a.Packet(&r, &ids)
		if s := a.Summary(); (i == 0) != (s == "") {
			t.Errorf("after %d connections: %q", i+1, s)
		}
	}
	if s := a.Summary(); s != "tcp connections=3 evicted (table full, 1)=2" {
		t.Errorf("summary %q", s)
	}
}
