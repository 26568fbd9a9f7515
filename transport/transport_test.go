package transport

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
)

func fastConfig() conf.Transport {
	return conf.Transport{
		MaxPDUSize:        1400,
		Window:            256,
		MaxBuildTime:      time.Second,
		BreakBorder:       time.Minute,
		MinGap:            500 * time.Microsecond,
		InitialTimeout:    40 * time.Millisecond,
		TimeoutIncrement:  10 * time.Millisecond,
		TimeoutMultiplier: 1,
		MaxRetries:        1000,
		FinalTimeout:      time.Minute,
		Heartbeat:         time.Second,
	}
}

func newSender(t testing.TB, cfg conf.Transport, collectors []netip.AddrPort, log *sendLog) *Sender {
	t.Helper()
	return newSenderOpt(t, cfg, collectors, log, SenderOptions{})
}

func newSenderOpt(t testing.TB, cfg conf.Transport, collectors []netip.AddrPort, log *sendLog, opt SenderOptions) *Sender {
	t.Helper()
	opt.Logger = quiet
	if log != nil {
		opt.OnSend = log.record
	}
	s, err := NewSender(cfg, collectors, 42, 0xabcd, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		s.Close(ctx) // no-op (ErrClosed) when the test closed it
	})
	return s
}

func sendAll(t testing.TB, s *Sender, pdus [][]byte) {
	t.Helper()
	for i, p := range pdus {
		seq, err := s.Send(p)
		if err != nil {
			t.Fatal(err)
		}
		if seq != uint32(i+1) {
			t.Fatalf("seq %d, want %d", seq, i+1)
		}
	}
}

func closeWithin(t testing.TB, s *Sender, d time.Duration) (Stats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Close(ctx)
}

// (a) Over a clean path, everything is acked and delivered exactly once,
// the Bye last, and the watermark reaches it.
func TestDeliverExactlyOnce(t *testing.T) {
	h := newCollect()
	r, addr := startReceiver(t, h)
	var log sendLog
	s := newSender(t, fastConfig(), []netip.AddrPort{addr}, &log)
	pdus := makePDUs(100, 1)
	sendAll(t, s, pdus)
	st, err := closeWithin(t, s, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := st.Collectors[0]
	if st.Submitted != 101 || c.Acked != 101 || c.GivenUp != 0 || c.Pending != 0 || c.Sent != 101 {
		t.Fatalf("stats = %+v", st)
	}
	h.check(t, pdus)
	if h.byes != 1 || h.counts[101] != 1 {
		t.Fatalf("bye delivered %d times", h.byes)
	}
	wm, ok := r.Watermark(42, 0xabcd)
	last, _ := pdu.Parse(pdus[99])
	if !ok || wm.Seq != 101 || wm.ProbeTime < last.Header.ProbeTime {
		t.Fatalf("watermark = %+v, %v", wm, ok)
	}
	rs := r.Stats()
	if rs.Delivered != 101 || rs.Invalid != ([NumReasons]uint64{}) {
		t.Fatalf("receiver stats = %+v", rs)
	}
	if len(h.wms) == 0 || h.wms[len(h.wms)-1] != wm {
		t.Fatalf("watermark notifications end at %+v, want %+v", h.wms[len(h.wms)-1:], wm)
	}
	log.checkGaps(t, 0, fastConfig().MinGap)
}

// (b) Through a proxy that drops 30% both ways, duplicates and reorders,
// everything is still delivered exactly once, and retries keep the gaps.
func TestLossyPath(t *testing.T) {
	h := newCollect()
	r, addr := startReceiver(t, h)
	px := startProxy(t, addr, 0.3, 0.1, 0.1)
	var log sendLog
	cfg := fastConfig()
	s := newSender(t, cfg, []netip.AddrPort{px.addr()}, &log)
	pdus := makePDUs(200, 2)
	sendAll(t, s, pdus)
	st, err := closeWithin(t, s, 15*time.Second)
	if err != nil {
		t.Fatalf("close: %v (stats %+v)", err, st)
	}
	c := st.Collectors[0]
	if c.Acked != 201 || c.GivenUp != 0 || c.Retried == 0 {
		t.Fatalf("stats = %+v", c)
	}
	h.check(t, pdus)
	if rs := r.Stats(); rs.Duplicates == 0 {
		t.Errorf("no duplicate seen by the receiver: %+v", rs)
	}
	if wm, _ := r.Watermark(42, 0xabcd); wm.Seq != 201 {
		t.Errorf("watermark = %+v", wm)
	}
	log.checkGaps(t, 0, cfg.MinGap)
	t.Logf("sent %d, retried %d, acked %d", c.Sent, c.Retried, c.Acked)
}

// (c) A burst of PDUs leaves in slots at least MinGap apart.
func TestMinGap(t *testing.T) {
	h := newCollect()
	_, addr := startReceiver(t, h)
	var log sendLog
	cfg := fastConfig()
	cfg.MinGap = 5 * time.Millisecond
	s := newSender(t, cfg, []netip.AddrPort{addr}, &log)
	pdus := makePDUs(40, 3)
	start := time.Now()
	sendAll(t, s, pdus)
	if _, err := closeWithin(t, s, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	h.check(t, pdus)
	evs := log.events(0)
	if len(evs) < 41 {
		t.Fatalf("%d sends", len(evs))
	}
	log.checkGaps(t, 0, cfg.MinGap)
	// Seen from outside too: 41 datagrams (40 + Bye) need 40 gaps.
	if d := time.Since(start); d < 40*cfg.MinGap {
		t.Errorf("41 datagrams in %v, want at least %v", d, 40*cfg.MinGap)
	}
}

// (d) Retries follow InitialTimeout, ×Multiplier +Increment, up to
// MaxRetries, then the maximum timeout until FinalTimeout; flow
// definitions are never given up; a give-up is announced by a heartbeat
// with the new floor.
func TestRetryTimings(t *testing.T) {
	sink := listen(t) // a collector that never acks
	var log sendLog
	cfg := conf.Transport{
		MaxPDUSize:        1400,
		Window:            256,
		MaxBuildTime:      time.Second,
		MinGap:            time.Millisecond,
		InitialTimeout:    40 * time.Millisecond,
		TimeoutIncrement:  20 * time.Millisecond,
		TimeoutMultiplier: 1.5,
		MaxRetries:        3,
		FinalTimeout:      600 * time.Millisecond,
		BreakBorder:       time.Second,
		Heartbeat:         time.Hour,
	}
	// timeouts: 40, 40×1.5+20=80, 80×1.5+20=140, 140×1.5+20=230 (maximum)
	want := []time.Duration{40, 80, 140, 230}
	basic := func(c conf.Transport, _ netip.AddrPort) Policy { return NewBasicPolicy(c) }
	s := newSenderOpt(t, cfg, []netip.AddrPort{addrOf(sink)}, &log, SenderOptions{Policy: basic})
	pdus := makePDUs(2, 4)
	// seq 1: sightings; seq 2: flow definitions.
	sendAll(t, s, pdus[1:2])
	if _, err := s.Send(pdus[0]); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Collectors[0].GivenUp == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing given up: %+v", s.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Flow definitions keep going at the maximum timeout.
	for countSeq(log.events(0), 2) < 7 {
		if time.Now().After(deadline) {
			t.Fatalf("flow definitions: %d sends", countSeq(log.events(0), 2))
		}
		time.Sleep(5 * time.Millisecond)
	}
	evs := log.events(0)
	for _, seq := range []uint32{1, 2} {
		var times []time.Time
		for _, e := range evs {
			if e.Header.Seq == seq && e.Header.Type != pdu.TypeHeartbeat {
				times = append(times, e.At)
			}
		}
		if seq == 1 && len(times) != 5 {
			t.Fatalf("seq 1 sent %d times, want 5 (1 + 3 retries + 1 at the maximum timeout)", len(times))
		}
		for i := 1; i < len(times); i++ {
			exp := want[min(i-1, len(want)-1)] * time.Millisecond
			if gap := times[i].Sub(times[i-1]); gap < exp || gap > exp+150*time.Millisecond {
				t.Errorf("seq %d: retry %d after %v, want %v", seq, i, gap, exp)
			}
		}
		if seq == 1 {
			if age := s.Stats(); age.Collectors[0].GivenUp != 1 {
				t.Errorf("given up = %d", age.Collectors[0].GivenUp)
			}
		}
	}
	// The give-up is announced by a notice (seq 3, events, to this
	// collector); until that is acked the floor stays at the given-up seq,
	// so that the collector learns what was given up before passing it.
	var notice bool
	for _, e := range evs {
		if e.Header.Type == pdu.TypeEvents && e.Header.Seq == 3 && e.Header.Floor == 1 {
			notice = true
		}
	}
	if !notice {
		t.Error("no given-up notice holding the floor")
	}
	st, err := closeWithin(t, s, 20*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || st.Collectors[0].Pending != 2 {
		t.Errorf("Close = %+v, %v; want the flow definitions and the notice pending", st, err)
	}
}

func countSeq(evs []SendEvent, seq uint32) int {
	n := 0
	for _, e := range evs {
		if e.Header.Seq == seq && e.Header.Type != pdu.TypeHeartbeat {
			n++
		}
	}
	return n
}

// (e) Every collector gets everything on its own; one that is down does not
// hold up the others.
func TestCollectorsIndependent(t *testing.T) {
	ha, hb := newCollect(), newCollect()
	_, a := startReceiver(t, ha)
	_, b := startReceiver(t, hb)
	var log sendLog
	cfg := fastConfig()
	s := newSender(t, cfg, []netip.AddrPort{a, deadAddr(t), b}, &log)
	pdus := makePDUs(60, 5)
	sendAll(t, s, pdus)
	deadline := time.Now().Add(5 * time.Second)
	for ha.delivered() < 60 || hb.delivered() < 60 {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d and %d of 60", ha.delivered(), hb.delivered())
		}
		time.Sleep(5 * time.Millisecond)
	}
	st, err := closeWithin(t, s, 300*time.Millisecond)
	if err != nil {
		t.Fatalf("Close error = %v, want none: the live collectors acked everything (the dead one is redundant)", err)
	}
	ha.check(t, pdus)
	hb.check(t, pdus)
	if c := st.Collectors[1]; c.Acked != 0 || c.Sent == 0 || c.Retried == 0 || c.Pending != 60 {
		t.Errorf("dead collector stats = %+v", c)
	}
	for _, i := range []int{0, 2} {
		if c := st.Collectors[i]; c.Acked != 61 || c.Pending != 0 { // the 60 and the Bye
			t.Errorf("collector %d stats = %+v", i, c)
		}
		log.checkGaps(t, i, cfg.MinGap)
	}
	// The live collectors acked the Bye.
	ha.mu.Lock()
	defer ha.mu.Unlock()
	if ha.byes != 1 {
		t.Errorf("collector a got %d byes", ha.byes)
	}
}

func TestHeartbeatWhenIdle(t *testing.T) {
	h := newCollect()
	r, addr := startReceiver(t, h)
	cfg := fastConfig()
	cfg.Heartbeat = 30 * time.Millisecond
	s := newSender(t, cfg, []netip.AddrPort{addr}, nil)
	if _, err := s.Send(makePDUs(2, 6)[1]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	st := s.Stats().Collectors[0]
	rs := r.Stats()
	if st.Heartbeats < 3 || rs.Heartbeats < 3 {
		t.Fatalf("heartbeats sent %d, received %d", st.Heartbeats, rs.Heartbeats)
	}
	// Heartbeats are not acked.
	if st.Acked != 1 {
		t.Fatalf("acked %d", st.Acked)
	}
}

func TestSendRejects(t *testing.T) {
	_, addr := startReceiver(t, newCollect())
	s := newSender(t, fastConfig(), []netip.AddrPort{addr}, nil)
	if _, err := s.Send(pdu.AppendControl(nil, pdu.Header{Type: pdu.TypeHeartbeat})); !errors.Is(err, ErrNotData) {
		t.Errorf("heartbeat: %v", err)
	}
	if _, err := s.Send([]byte("garbage")); !errors.Is(err, pdu.ErrShort) {
		t.Errorf("garbage: %v", err)
	}
	closeWithin(t, s, time.Second)
	if _, err := s.Send(makePDUs(1, 1)[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if _, err := NewSender(conf.Transport{TimeoutMultiplier: 0.5}, []netip.AddrPort{addr}, 1, 1, SenderOptions{}); err == nil {
		t.Error("multiplier 0.5 accepted")
	}
}
