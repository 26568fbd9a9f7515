package collector

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/spool"
)

const ageingXML = `<tmon version="t" interval="1s">
  <collector name="c" address="127.0.0.1:1"/>
  <probe name="a" id="1"><interface name="a0" hop="A"/></probe>
  <probe name="b" id="2"><interface name="b0" hop="B"/></probe>
  <flowClass name="u"><granular fields="ip.dst"/><oneWay hops="A B" maxTransit="100ms" timeout="200ms" perPacket="true"/></flowClass>
</tmon>`

// churnTraffic builds what two probes send while their flows churn: each
// probe session (a second of data time) announces 20 flows — half of them
// the previous session's, the rest new — sends 100 packets over them (seen
// at A and 13 ms later at B, every 13th lost before B) and rolls to a new
// session (bye with ByeContinues), as probes do before their ids fill the
// collector's table. Keys cycle through 500 addresses, so a key comes back
// fifty seconds after its flow went quiet. It returns the datagrams in
// arrival order and, per key, the packets sent and lost.
func churnTraffic(t *testing.T, base int64, sessions int) (ds [][]byte, sent, lost map[string]int) {
	t.Helper()
	sent, lost = map[string]int{}, map[string]int{}
	const perSession, flows, perSec = 20, 500, 100
	keyOf := func(i int) flow.Key {
		i %= flows
		return flow.Key{Class: 0, Fields: flow.Set(0).With(flow.Dst), Dst: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})}
	}
	ps := []*probeState{{id: 1, b: pdu.NewBuilder(1400)}, {id: 2, b: pdu.NewBuilder(1400)}}
	last := false // the last session's bye says none follows
	emit := func(p *probeState, sess uint32, hd pdu.Header) {
		p.seq++
		var d []byte
		if hd.Type == pdu.TypeBye {
			d = pdu.AppendBye(nil, pdu.Header{Probe: p.id, Session: sess, Seq: p.seq, Floor: p.seq, ProbeTime: hd.ProbeTime}, !last)
		} else {
			d = append([]byte(nil), p.b.Finish(hd)...)
			p.b.Reset()
			if err := pdu.Restamp(d, p.id, sess, p.seq, p.seq); err != nil {
				t.Fatal(err)
			}
		}
		ds = append(ds, d)
	}
	for k := range sessions {
		sess := uint32(1000 + k)
		t0 := base + int64(k)*1e9
		first := k * perSession / 2 // half the previous session's keys, half new
		for _, p := range ps {
			p.seq = 0
			for j := range perSession {
				p.b.AddFlowDef(pdu.FlowDef{ID: uint32(j), Key: keyOf(first + j)})
			}
			emit(p, sess, pdu.Header{ProbeTime: t0})
		}
		for i := range perSec {
			ts := t0 + int64(i)*(1e9/perSec)
			j := (i * 7) % perSession
			n := k*perSec + i
			sig := uint32(n*2654435761) | 1
			_, key, _ := strings.Cut(keyOf(first+j).String(), " ") // as the flows rows give it
			sent[key]++
			for h, p := range ps {
				if h == 1 && n%13 == 0 {
					lost[key]++
					continue
				}
				s := pdu.Sighting{Flow: uint32(j), Sig: sig, TS: ts + int64(h)*13e6}
				if !p.b.AddSighting(uint32(j), 0, false, s) {
					emit(p, sess, pdu.Header{ProbeTime: s.TS})
					p.b.AddSighting(uint32(j), 0, false, s)
				}
			}
			if i%10 == 9 {
				for _, p := range ps {
					emit(p, sess, pdu.Header{ProbeTime: ts + 14e6})
				}
			}
		}
		last = k == sessions-1
		for _, p := range ps {
			if p.b.Len() > 0 {
				emit(p, sess, pdu.Header{ProbeTime: t0 + 1e9 - 1})
			}
			emit(p, sess, pdu.Header{Type: pdu.TypeBye, ProbeTime: t0 + 1e9 - 1})
		}
	}
	return ds, sent, lost
}

// TestFlowAgeing runs a collector through 150 seconds of churning flows
// (churnTraffic: 1 510 flow instances over 500 keys, each key back under
// a new id after it was forgotten): the dictionary stays bounded by the
// flows in use and the margin, far below the ids given out; every packet's
// delay and loss is counted once, under a collector flow id whose flows row
// names its key; a collector killed after a compaction and restarted from
// its journal (whose 'A' records repeat the forgetting) ends with the same
// interval files, flow ids included, as the uninterrupted run.
func TestFlowAgeing(t *testing.T) {
	cfg, err := conf.Parse(strings.NewReader(ageingXML), "t.xml")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Truncate(time.Second).Add(-time.Hour).UnixNano()
	const sessions = 150
	ds, sent, lost := churnTraffic(t, base, sessions)

	// step hands datagram i to c as the receiver would, and ticks every
	// 20 datagrams (the same moments in every run: forgetting happens at
	// ticks).
	step := func(c testCollector, i int) {
		t.Helper()
		if err := c.rcv.Replay(append([]byte(nil), ds[i]...), c.Collector); err != nil {
			t.Fatal(err)
		}
		if i%20 == 19 {
			*c.now = c.now.Add(time.Second)
			c.tick(*c.now)
		}
	}
	ref := t.TempDir()
	c := startCollector(t, cfg, ref, 1<<40)
	c.SetVolatileSpool() // the spool's fsyncs are not what is tested
	maxFlows := 0
	for i := range ds {
		step(c, i)
		maxFlows = max(maxFlows, len(c.global), len(c.byID))
	}
	ids, forgotten := c.nextFlow, c.forgotten
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d collector flow ids given out for %d keys, %d forgotten, at most %d known at once", ids, len(sent), forgotten, maxFlows)
	// In use: a session's 20 flows (and its predecessor's until its bye);
	// waiting for the margin (4 × (timeout + interval) + maxTransit ≈ 5 s):
	// about 50 more.
	if maxFlows > 120 {
		t.Errorf("the dictionary held %d flows at once, want ≤ 120", maxFlows)
	}
	if ids < 1500 || forgotten < uint64(ids)-120 {
		t.Errorf("%d ids given out, %d forgotten: the test does not churn", ids, forgotten)
	}

	// Every figure exact, each key's under its ids.
	keyOf := map[string]string{}
	flowsFiles, _ := filepath.Glob(filepath.Join(ref, spool.TypeFlows, "*.tsv"))
	for _, f := range flowsFiles {
		hdr, rows, err := spool.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		col := colIndex(hdr)
		for _, r := range rows {
			id := r[col["flow"]]
			if k, ok := keyOf[id]; ok && k != r[col["key"]] {
				t.Fatalf("flow id %s defined twice: %q and %q", id, k, r[col["key"]])
			}
			keyOf[id] = r[col["key"]]
		}
	}
	if len(keyOf) != int(ids) {
		t.Errorf("%d flows rows, %d ids given out", len(keyOf), ids)
	}
	idsOfKey := map[string]int{}
	for _, k := range keyOf {
		idsOfKey[k]++
	}
	gotCount, gotLost := map[string]int{}, map[string]int{}
	statsFiles, _ := filepath.Glob(filepath.Join(ref, spool.TypeStats, "*.tsv"))
	for _, f := range statsFiles {
		hdr, rows, err := spool.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		col := colIndex(hdr)
		for _, r := range rows {
			k, ok := keyOf[r[col["flow"]]]
			if !ok {
				t.Fatalf("owd_stats row of flow %s, which no flows row defines", r[col["flow"]])
			}
			n, _ := strconv.Atoi(r[col["count"]])
			l, _ := strconv.Atoi(r[col["lost"]])
			m, _ := strconv.Atoi(r[col["missed"]])
			gotCount[k] += n
			gotLost[k] += l
			if m != 0 {
				t.Errorf("%s: %d missed", k, m)
			}
		}
	}
	reseen := 0
	for k, n := range sent {
		if gotCount[k] != n-lost[k] || gotLost[k] != lost[k] {
			t.Errorf("%s: %d measured, %d lost; want %d, %d", k, gotCount[k], gotLost[k], n-lost[k], lost[k])
		}
		if idsOfKey[k] > 1 {
			reseen++
		}
	}
	if reseen < len(sent)/2 {
		t.Errorf("%d of %d keys came back under a new id", reseen, len(sent))
	}
	want := intervalFiles(t, ref)

	// Killed after a compaction, restarted from the journal.
	dir := t.TempDir()
	c = startCollector(t, cfg, dir, 64<<10)
	c.SetVolatileSpool()
	kill := 0
	for ; kill < len(ds)*2/3 || c.compactions < 2; kill++ {
		step(c, kill)
	}
	// Killed (no Close) a little after the compaction, forgetting since.
	for end := kill + 200; kill < end; kill++ {
		step(c, kill)
	}
	c2 := startCollector(t, cfg, dir, 64<<10)
	c2.SetVolatileSpool()
	if c2.forgotten == 0 {
		t.Error("the journal's replay forgot no flow: the kill is not after a forgetting")
	}
	if c2.nextFlow != c.nextFlow || len(c2.global) != len(c.global) {
		t.Errorf("restarted: next flow id %d, %d flows known; before the kill %d, %d", c2.nextFlow, len(c2.global), c.nextFlow, len(c.global))
	}
	for i := kill; i < len(ds); i++ {
		step(c2, i)
	}
	if c2.nextFlow != ids {
		t.Errorf("restarted: %d ids given out in the end, %d without the kill", c2.nextFlow, ids)
	}
	if st := c2.rcv.Stats(); st.HandlerErrors != 0 {
		t.Errorf("%d PDUs refused after the restart", st.HandlerErrors)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	sameIntervalFiles(t, intervalFiles(t, dir), want)
}

func colIndex(hdr []string) map[string]int {
	m := map[string]int{}
	for i, h := range hdr {
		m[strings.TrimPrefix(h, "#")] = i
	}
	return m
}

// TestReleasedSessionRefs: the replay of a released session's flow
// definitions (PDUs a compaction kept) takes and gives back no reference:
// a live session's flow of the same key stays referred to, and a flow only
// the released session defines waits to be forgotten.
func TestReleasedSessionRefs(t *testing.T) {
	cfg, err := conf.Parse(strings.NewReader(ageingXML), "t.xml")
	if err != nil {
		t.Fatal(err)
	}
	c := startCollector(t, cfg, t.TempDir(), 1<<40)
	key := flow.Key{Class: 0, Fields: flow.Set(0).With(flow.Dst), Dst: netip.AddrFrom4([4]byte{10, 9, 9, 9})}
	old, err := c.sessionOf(1, 500)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.flowDef(old, &pdu.FlowDef{ID: 0, Key: key}); err != nil {
		t.Fatal(err)
	}
	live, err := c.sessionOf(2, 600)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.flowDef(live, &pdu.FlowDef{ID: 3, Key: key}); err != nil {
		t.Fatal(err)
	}
	id := c.global[key]
	c.releaseFlows(old)
	if e := c.byID[id]; e.refs != 1 {
		t.Fatalf("after the release: %d references, want the live session's 1", e.refs)
	}
	// Replayed: the same definition, and one of its id 1 (another key).
	key2 := key
	key2.Dst = netip.AddrFrom4([4]byte{10, 9, 9, 10})
	c.replaying = true
	for _, d := range []pdu.FlowDef{{ID: 0, Key: key}, {ID: 0, Key: key2}} {
		if err := c.flowDef(old, &d); err != nil {
			t.Fatal(err)
		}
	}
	c.replaying = false
	if e := c.byID[id]; e.refs != 1 {
		t.Errorf("after the released session's definitions replayed: %d references, want 1", e.refs)
	}
	if e := c.byID[c.global[key2]]; e == nil || e.refs != 0 {
		t.Errorf("a flow defined by a released session only: %+v, want no reference", e)
	}
	if i := slices.IndexFunc(c.idleFlows, func(q idleFlow) bool { return q.id == c.global[key2] }); i < 0 {
		t.Error("a flow defined by a released session only does not wait to be forgotten")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
