package transport

import (
	"cmp"
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
)

// The bandwidth cap holds over every span of sends: the bytes sent between
// two sends never exceed the cap times the time between them.
func TestBandwidthCap(t *testing.T) {
	h := newCollect()
	_, addr := startReceiver(t, h)
	var log sendLog
	cfg := fastConfig()
	cfg.Bandwidth = 100_000 // bytes/s: 60 PDUs of ~600 B take ~0.36 s
	s := newSender(t, cfg, []netip.AddrPort{addr}, &log)
	pdus := makePDUs(60, 9)
	start := time.Now()
	sendAll(t, s, pdus)
	if _, err := closeWithin(t, s, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	h.check(t, pdus)
	evs := log.events(0)
	var total int
	for i := range evs {
		sum := 0
		for j := i + 1; j < len(evs); j++ {
			sum += evs[j-1].Size
			if allowed := float64(cfg.Bandwidth) * evs[j].At.Sub(evs[i].At).Seconds(); float64(sum) > allowed+1 {
				t.Fatalf("sends %d..%d: %d bytes in %v, cap allows %.0f", i, j, sum, evs[j].At.Sub(evs[i].At), allowed)
			}
		}
		total += evs[i].Size
	}
	if d := time.Since(start); float64(total-evs[len(evs)-1].Size) > float64(cfg.Bandwidth)*d.Seconds() {
		t.Errorf("%d bytes in %v: above the cap", total, d)
	}
	log.checkGaps(t, 0, cfg.MinGap)
}

// gate is a Handler that refuses everything (so nothing is acked) while
// down, and records the events PDUs it takes.
type gate struct {
	*collect
	down   atomic.Bool
	mu     sync.Mutex
	events []pdu.Event
}

func (g *gate) HandlePDU(from netip.AddrPort, f *pdu.Frame) error {
	if g.down.Load() {
		return errors.New("down")
	}
	if f.Header.Type == pdu.TypeEvents {
		var r pdu.EventReader
		var e pdu.Event
		r.Reset(f.Body)
		g.mu.Lock()
		for r.Next(&e) {
			g.events = append(g.events, pdu.Event{TS: e.TS, Kind: strings.Clone(e.Kind), Detail: strings.Clone(e.Detail)})
		}
		g.mu.Unlock()
	}
	return g.collect.HandlePDU(from, f)
}

// Long-retry mode (trafMon §1.5): once a PDU has exhausted its retries, it
// alone is retried at the initial timeout, every other at the maximum
// timeout; sightings older than the final timeout are given up unless
// submitted within the break border before long-retry mode; flow
// definitions never; the first ack restores normal mode, and the collector
// is told all of it.
func TestLongRetry(t *testing.T) {
	// The time unit of the scenario: the comments give it in ms at u = 1
	// ms; it runs three times slower so that a loaded machine's timer
	// delays (up to ~100 ms seen) do not move a PDU across the border.
	const u = 3 * time.Millisecond
	g := &gate{collect: newCollect()}
	g.down.Store(true)
	_, addr := startReceiver(t, g)
	var log sendLog
	cfg := conf.Transport{
		MaxPDUSize:        1400,
		Window:            256,
		MaxBuildTime:      time.Second,
		MinGap:            time.Millisecond,
		InitialTimeout:    40 * u,
		TimeoutIncrement:  20 * u,
		TimeoutMultiplier: 1,
		MaxRetries:        2, // timeouts 40, 60, 80 (maximum): exhausted 180 ms after the first send
		FinalTimeout:      500 * u,
		BreakBorder:       100 * u,
		Heartbeat:         time.Hour,
	}
	s := newSender(t, cfg, []netip.AddrPort{addr}, &log)
	sights := makePDUs(10, 5)[1:4] // sightings
	defs := makePDUs(1, 5)[0]      // flow definitions
	t0 := time.Now()
	send := func(b []byte) uint32 {
		seq, err := s.Send(b)
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	pilot := send(sights[0]) // exhausts at ~180 ms: long-retry mode, the pilot
	def := send(defs)
	time.Sleep(120 * u)
	border := send(sights[1]) // 60 ms before long-retry mode: kept
	time.Sleep(150 * u)
	slow := send(sights[2]) // during long-retry mode: slow pace, given up
	time.Sleep(900 * u)

	st := s.Stats().Collectors[0]
	if st.LongRetry != 1 || st.GivenUp != 2 {
		t.Fatalf("long retry %d, given up %d; want 1, 2 (pilot and slow): %+v", st.LongRetry, st.GivenUp, st)
	}
	gaps := func(seq uint32) []time.Duration {
		var ts []time.Time
		for _, e := range log.events(0) {
			if e.Header.Seq == seq && e.Header.Type != pdu.TypeHeartbeat {
				ts = append(ts, e.At)
			}
		}
		var d []time.Duration
		for i := 1; i < len(ts); i++ {
			d = append(d, ts[i].Sub(ts[i-1]))
		}
		return d
	}
	// Late by up to 35 units: a loaded CI machine's timers.
	near := func(d, want time.Duration) bool { return d >= want && d < want+35*u }
	pg := gaps(pilot)
	if len(pg) < 5 || !near(pg[0], 40*u) || !near(pg[1], 60*u) || !near(pg[2], 80*u) {
		t.Fatalf("pilot retries %v: want 40, 60, 80 units of %v, then 40", pg, u)
	}
	for i, d := range pg[3:] {
		if want := min(40*u<<i, 80*u); !near(d, want) {
			t.Errorf("pilot in long-retry mode: retry %d after %v, want %v (from the initial timeout, doubling up to the maximum)", i, d, want)
		}
	}
	// A PDU sent in long-retry mode backs off from the maximum timeout,
	// doubling up to the final timeout, while the pilot lives; once the
	// pilot is given up, the next PDU to expire is elected pilot
	// (TrafMonPolicy.GiveUp) and may be this one: from then on, the pilot's
	// timeouts are right too. Which one is elected depends on the timers,
	// so both are allowed after the pilot's last send.
	var pilotLast time.Time
	var slowSends []time.Time
	for _, e := range log.events(0) {
		switch {
		case e.Header.Type == pdu.TypeHeartbeat:
		case e.Header.Seq == pilot:
			pilotLast = e.At
		case e.Header.Seq == slow:
			slowSends = append(slowSends, e.At)
		}
	}
	for i := 1; i < len(slowSends); i++ {
		d := slowSends[i].Sub(slowSends[i-1])
		want := min(80*u<<(i-1), 500*u)
		switch {
		case near(d, want):
		case slowSends[i-1].After(pilotLast) && (near(d, 40*u) || near(d, 80*u)):
		default:
			t.Errorf("PDU sent in long-retry mode: retry %d after %v (pilot last sent %v before), want %v (backing off from the maximum timeout), or the pilot's timeouts once elected",
				i, d, slowSends[i-1].Sub(pilotLast), want)
		}
	}
	// The collector comes back: the first ack ends long-retry mode; the
	// kept PDUs and the notices arrive.
	g.down.Store(false)
	if _, err := closeWithin(t, s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var kinds []string
	var gu []GivenUp
	// Notices may arrive in any order; their times order them.
	slices.SortStableFunc(g.events, func(a, b pdu.Event) int { return cmp.Compare(a.TS, b.TS) })
	for _, e := range g.events {
		kinds = append(kinds, e.Kind)
		if e.Kind == EventGivenUp {
			x, err := ParseGivenUp(e.Detail)
			if err != nil {
				t.Fatal(err)
			}
			gu = append(gu, x)
		}
	}
	if strings.Join(kinds, " ") != "transport.long_retry transport.given_up transport.given_up transport.normal" {
		t.Errorf("events %v", kinds)
	}
	if len(gu) != 2 || gu[0].First != pilot || gu[1].First != slow || gu[0].Sightings == 0 || gu[0].From > gu[0].To {
		t.Errorf("given up %+v, want seqs %d and %d with their sightings", gu, pilot, slow)
	}
	g.collect.mu.Lock()
	defer g.collect.mu.Unlock()
	for _, seq := range []uint32{def, border} {
		if g.counts[seq] != 1 {
			t.Errorf("seq %d (kept) delivered %d times", seq, g.counts[seq])
		}
	}
	for _, seq := range []uint32{pilot, slow} {
		if g.counts[seq] != 0 {
			t.Errorf("seq %d (given up) delivered", seq)
		}
	}
	t.Logf("long-retry test took %v", time.Since(t0).Round(time.Millisecond))
}

// Authentication: a sender with the right key is served; a wrong key, an
// unknown probe id and an older session (a replay) are refused and
// counted; nothing of theirs is delivered or acked.
func TestAuthentication(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	h := newCollect()
	conn := listen(t)
	r, err := NewReceiver(conn, conf.Transport{}, ReceiverOptions{Logger: quiet, Keys: map[uint16][][]byte{42: {key}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, h)
	addr := addrOf(conn)
	run := func(probe uint16, session uint32, k []byte, n int) Stats {
		s, err := NewSender(fastConfig(), []netip.AddrPort{addr}, probe, session, SenderOptions{Logger: quiet, Key: k})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range makePDUs(n, 2) {
			if _, err := s.Send(p); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		st, _ := s.Close(ctx)
		return st
	}
	if st := run(42, 1000, key, 10); st.Collectors[0].Acked != 11 {
		t.Fatalf("keyed sender: %+v", st)
	}
	if st := run(42, 1001, []byte("another key of 32 bytes........."), 3); st.Collectors[0].Acked != 0 {
		t.Fatalf("wrong key acked: %+v", st)
	}
	if st := run(7, 1000, key, 3); st.Collectors[0].Acked != 0 {
		t.Fatalf("unknown probe acked: %+v", st)
	}
	if st := run(42, 999, key, 3); st.Collectors[0].Acked != 0 {
		t.Fatalf("older session acked: %+v", st)
	}
	rs := r.Stats()
	if rs.Invalid[ReasonAuth] == 0 || rs.Invalid[ReasonUnknown] == 0 || rs.Invalid[ReasonStale] == 0 || rs.Delivered != 11 {
		t.Fatalf("receiver stats %+v", rs)
	}
}

// Replay protection across a restart: a receiver given the state a
// previous one saved (State, SaveState, LoadState, RestoreState) refuses
// an older session as stale, treats a replay of the latest session as
// duplicates (acked, not delivered), takes nothing new after its bye, and
// takes a newer session.
func TestRestoredSessions(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	keys := map[uint16][][]byte{42: {key}}
	now := time.Now()
	s1, s0, s2 := SessionID(now), SessionID(now.Add(-time.Hour)), SessionID(now.Add(time.Second))
	pdus := makePDUs(6, 3)
	run := func(r *Receiver, session uint32, ps [][]byte) Stats {
		t.Helper()
		conn := r.conn
		s, err := NewSender(fastConfig(), []netip.AddrPort{addrOf(conn)}, 42, session, SenderOptions{Logger: quiet, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if _, err := s.Send(p); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		st, _ := s.Close(ctx)
		return st
	}
	start := func(st []ProbeState) (*Receiver, *collect, context.CancelFunc) {
		r, err := NewReceiver(listen(t), conf.Transport{}, ReceiverOptions{Logger: quiet, Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		r.RestoreState(st)
		h := newCollect()
		ctx, cancel := context.WithCancel(context.Background())
		go r.Run(ctx, h)
		return r, h, cancel
	}
	// The first run: session s1 ends with its bye (seq 7).
	r, _, stop := start(nil)
	if st := run(r, s1, pdus); st.Collectors[0].Acked != 7 {
		t.Fatalf("first run: %+v", st)
	}
	stop()
	path := filepath.Join(t.TempDir(), "sessions.json")
	if err := SaveState(path, r.State()); err != nil {
		t.Fatal(err)
	}
	saved, err := LoadState(path)
	if err != nil || len(saved) != 1 || saved[0].Session != s1 || saved[0].Floor != 8 || !saved[0].Closed {
		t.Fatalf("saved state %+v, %v", saved, err)
	}

	// The restarted receiver.
	r, h, stop := start(saved)
	defer stop()
	if st := run(r, s0, pdus[:2]); st.Collectors[0].Acked != 0 {
		t.Errorf("older session acked: %+v", st)
	}
	// The latest session again (a replay): acked as duplicates, not
	// delivered; its bye was seq 7, so 7 PDUs are duplicates and the
	// replayed bye (seq 8 here, new) is refused.
	if st := run(r, s1, pdus); st.Collectors[0].Acked != 7 {
		t.Errorf("replayed latest session: %d acked, want 7 (duplicates): %+v", st.Collectors[0].Acked, st)
	}
	if n := h.delivered(); n != 0 {
		t.Errorf("%d PDUs of a replayed session delivered", n)
	}
	rs := r.Stats()
	if rs.Invalid[ReasonStale] == 0 || rs.Duplicates < 7 || rs.Delivered != 0 {
		t.Errorf("receiver stats %+v", rs)
	}
	if st := run(r, s2, pdus[:3]); st.Collectors[0].Acked != 4 {
		t.Errorf("newer session: %+v", st)
	}
	if n := h.delivered(); n != 4 {
		t.Errorf("newer session: %d PDUs delivered, want 4", n)
	}
}

// The ack window: with the collector not acking, a sender in normal mode
// sends the first Window PDUs only; the rest wait unsent (and make the link
// saturated, said by an event), and all arrive, once, when the collector
// acks again; the unsaturated event follows.
func TestAckWindow(t *testing.T) {
	g := &gate{collect: newCollect()}
	g.down.Store(true)
	_, addr := startReceiver(t, g)
	var log sendLog
	cfg := fastConfig()
	cfg.Window = 8
	s := newSender(t, cfg, []netip.AddrPort{addr}, &log)
	pdus := makePDUs(60, 9)
	for _, p := range pdus { // seqs unchecked: the saturation notice may take one between them
		if _, err := s.Send(p); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return s.Stats().Collectors[0].Retried > 8 })
	firsts := map[uint32]bool{}
	for _, e := range log.events(0) {
		if e.Header.Type != pdu.TypeHeartbeat {
			firsts[e.Header.Seq] = true
		}
	}
	if len(firsts) != 8 {
		t.Errorf("%d PDUs sent while the collector acked nothing, want the window, 8: %v", len(firsts), firsts)
	}
	if st := s.Stats().Collectors[0]; st.Queued != 53 || st.Saturated != 1 { // 52 and the saturation notice
		t.Errorf("stats %+v: want 53 queued, saturated once", st)
	}
	g.down.Store(false)
	if _, err := closeWithin(t, s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.collect.mu.Lock()
	defer g.collect.mu.Unlock()
	bodies := map[string]int{}
	for seq, n := range g.counts {
		if n != 1 {
			t.Errorf("seq %d delivered %d times", seq, n)
		}
		bodies[string(g.bodies[seq])]++
	}
	for i, p := range pdus {
		f, _ := pdu.Parse(p)
		if bodies[string(f.Body)] == 0 {
			t.Errorf("PDU %d not delivered", i)
		}
		bodies[string(f.Body)]--
	}
	var kinds []string
	for _, e := range g.events {
		kinds = append(kinds, e.Kind)
	}
	if !slices.Contains(kinds, EventSaturated) || !slices.Contains(kinds, EventUnsaturated) {
		t.Errorf("events %v: want saturated and unsaturated", kinds)
	}
}

// The Bye delivered but its acks lost until the sender falls into long-retry
// mode: the long-retry notice used to take a seq after the Bye, which the
// collector refuses as a replay (nothing new after a bye), so Close waited
// for its ack until its deadline (e2e TestTransportLoss under load). The
// notice is now logged, not sent, and Close ends once the acks come back.
func TestByeAckLost(t *testing.T) {
	h := newCollect()
	r, addr := startReceiver(t, h)
	px := startProxy(t, addr, 0, 0, 0)
	cfg := fastConfig()
	cfg.MaxRetries = 2
	cfg.BreakBorder = 50 * time.Millisecond
	cfg.FinalTimeout = time.Hour
	s := newSender(t, cfg, []netip.AddrPort{px.addr()}, nil)
	pdus := makePDUs(20, 9)
	sendAll(t, s, pdus)
	waitFor(t, func() bool {
		c := s.Stats().Collectors[0]
		return c.Acked == uint64(len(pdus)) && c.Pending == 0
	})
	px.cut.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := closeWithin(t, s, 30*time.Second)
		done <- err
	}()
	waitFor(t, func() bool { // the Bye delivered, the sender in long-retry mode
		ss := r.Sessions()
		return len(ss) == 1 && ss[0].Closed && s.Stats().Collectors[0].LongRetry > 0
	})
	px.cut.Store(false)
	if err := <-done; err != nil {
		t.Fatalf("Close: %v (collector stats %+v)", err, r.Stats())
	}
	if n := r.Stats().Invalid[ReasonStale]; n != 0 {
		t.Fatalf("%d datagrams after the Bye refused as stale", n)
	}
	h.check(t, pdus)
}
