package collector

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/pdu"
)

// A probe session's flow ids are held against maxFlows until the session
// ends: released once its bye and everything before it arrived (a plain
// bye, or one that says a new session follows, the probe's roll), or once
// a new session of the probe replaces it without a bye (a restart, or a
// redundant collector that missed the bye). The probe's next session then
// has the table it needs; and after a continuing bye the probe is still
// waited for at the old session's watermark until the new one comes.
func TestSessionFlowsReleased(t *testing.T) {
	cfg, err := conf.Parse(strings.NewReader(compactXML), "t.xml")
	if err != nil {
		t.Fatal(err)
	}
	c := startCollector(t, cfg, t.TempDir(), 1<<40)
	base := time.Now().Truncate(time.Second).Add(-time.Hour).UnixNano()
	const n = 25
	// defs: session's PDU 1 defines n flows, PDU 2 is its bye (continues
	// or not), or nothing when bye is 0.
	session := func(probe uint16, id uint32, bye int, ts int64) [][]byte {
		b := pdu.NewBuilder(1400)
		for i := range n {
			if !b.AddFlowDef(pdu.FlowDef{ID: uint32(i), Key: flow.Key{Fields: flow.Set(0).With(flow.Dst), Dst: netip.AddrFrom4([4]byte{10, 9, byte(id), byte(i)})}}) {
				t.Fatal("flow definitions do not fit one PDU")
			}
		}
		defs := append([]byte(nil), b.Finish(pdu.Header{ProbeTime: ts})...)
		if err := pdu.Restamp(defs, probe, id, 1, 1); err != nil {
			t.Fatal(err)
		}
		ds := [][]byte{defs}
		if bye != 0 {
			d := pdu.AppendBye(nil, pdu.Header{ProbeTime: ts + 1}, bye == 2)
			if err := pdu.Restamp(d, probe, id, 2, 2); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, d)
		}
		return ds
	}
	slots := func() int64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.flowSlots
	}
	c.feed(t, session(2, 50, 0, base), nil) // probe b: present, so that a's data is waited for
	c.feed(t, session(1, 100, 0, base), nil)
	if got := slots(); got != 2*n {
		t.Fatalf("slots after two sessions of %d flows: %d", n, got)
	}
	// A restart: a new session of probe a replaces 100 without its bye.
	c.feed(t, session(1, 101, 2, base+1e9), nil)
	if got := slots(); got != n {
		t.Errorf("slots after session 101 (continuing bye) replaced 100: %d, want %d (probe b's)", got, n)
	}
	c.mu.Lock()
	s := c.latest[0]
	waited := s.continues && s.closed && !s.ended()
	c.mu.Unlock()
	if !waited {
		t.Errorf("after a continuing bye the probe is not waited for: closed %v continues %v", s.closed, s.continues)
	}
	c.mu.Lock()
	c.advance(time.Now())
	wm := c.wmBuf[0]
	c.mu.Unlock()
	if wm != s.wm || wm == 0 {
		t.Errorf("probe a waited for at %d, want its continuing session's watermark %d", wm, s.wm)
	}
	// The roll's next session, then its plain bye.
	c.feed(t, session(1, 102, 1, base+2e9), nil)
	if got := slots(); got != n {
		t.Errorf("slots after session 102 ended: %d, want %d (probe b's)", got, n)
	}
	c.mu.Lock()
	ended := c.latest[0].ended()
	c.mu.Unlock()
	if !ended {
		t.Error("a plain bye does not end the probe")
	}
}
