package transport

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
)

// rawProbe sends hand-made datagrams to a receiver and reads its acks.
type rawProbe struct {
	t    testing.TB
	conn *net.UDPConn
}

func newRawProbe(t testing.TB, to netip.AddrPort) *rawProbe {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawProbe{t, c}
}

func (p *rawProbe) send(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

// ack returns the seq of the next ack, or 0 when none comes within wait.
func (p *rawProbe) ack(wait time.Duration) uint32 {
	p.t.Helper()
	buf := make([]byte, 256)
	p.conn.SetReadDeadline(time.Now().Add(wait))
	n, err := p.conn.Read(buf)
	if err != nil {
		return 0
	}
	f, err := pdu.Parse(buf[:n])
	if err != nil {
		p.t.Fatalf("ack: %v", err)
	}
	_, seq, err := f.Ack()
	if err != nil {
		p.t.Fatalf("ack: %v", err)
	}
	return seq
}

// stamped returns a copy of p with the given ids.
func stamped(p []byte, probe uint16, session, seq, floor uint32) []byte {
	b := append([]byte(nil), p...)
	if err := pdu.Restamp(b, probe, session, seq, floor); err != nil {
		panic(err)
	}
	return b
}

func TestReceiverAcksDuplicates(t *testing.T) {
	h := newCollect()
	r, addr := startReceiver(t, h)
	p := newRawProbe(t, addr)
	d := stamped(makePDUs(2, 1)[1], 1, 7, 1, 1)
	p.send(d)
	if got := p.ack(time.Second); got != 1 {
		t.Fatalf("ack %d", got)
	}
	p.send(d) // the first ack may have been lost: ack again, deliver once
	if got := p.ack(time.Second); got != 1 {
		t.Fatalf("ack of duplicate %d", got)
	}
	if st := r.Stats(); st.Delivered != 1 || st.Duplicates != 1 || h.delivered() != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReceiverInvalid(t *testing.T) {
	h := newCollect()
	r, addr := startReceiver(t, h)
	p := newRawProbe(t, addr)
	good := stamped(makePDUs(2, 1)[1], 1, 7, 1, 1)

	flipped := append([]byte(nil), good...)
	flipped[40] ^= 1
	badBody := append([]byte(nil), good...)
	badBody[pdu.HeaderSize+8] = 0x9f // reserved selector behind a valid CRC
	if err := pdu.Restamp(badBody, 1, 7, 1, 1); err != nil {
		t.Fatal(err)
	}
	oversized := pdu.NewBuilder(3000)
	for oversized.AddEvent(pdu.Event{Kind: "x", Detail: "yyyyyyyyyyyyyyyyyyyyyyyyyyyy"}) {
	}
	cases := []struct {
		b      []byte
		reason Reason
	}{
		{[]byte("hello"), ReasonShort},
		{append([]byte("xx"), good[2:]...), ReasonMagic},
		{flipped, ReasonCRC},
		{good[:len(good)-1], ReasonShort},
		{badBody, ReasonMalformed},
		{stamped(good, 1, 7, 0, 1), ReasonMalformed}, // seq 0
		{stamped(good, 1, 7, 5, 6), ReasonMalformed}, // floor above seq
		{pdu.AppendAck(nil, 1, 7, 1, 0), ReasonDirection},
		{stamped(oversized.Finish(pdu.Header{}), 1, 7, 1, 1), ReasonSize},
		{stamped(good, 1, 7, 1+4096, 1), ReasonWindow},
	}
	for _, c := range cases {
		p.send(c.b)
	}
	if got := p.ack(200 * time.Millisecond); got != 0 {
		t.Fatalf("an invalid datagram was acked (seq %d)", got)
	}
	st := r.Stats()
	want := [NumReasons]uint64{}
	for _, c := range cases {
		want[c.reason]++
	}
	if st.Invalid != want || st.Delivered != 0 || h.delivered() != 0 {
		t.Fatalf("invalid = %v, want %v; delivered %d", st.Invalid, want, st.Delivered)
	}
}

// A new session of a known probe is a restart: both are tracked apart.
func TestReceiverRestart(t *testing.T) {
	h := newCollect()
	r, addr := startReceiver(t, h)
	p := newRawProbe(t, addr)
	d := makePDUs(2, 1)[1]
	p.send(stamped(d, 3, 100, 1, 1))
	p.ack(time.Second)
	p.send(stamped(d, 3, 200, 1, 1))
	p.ack(time.Second)
	p.send(stamped(d, 3, 100, 2, 1)) // a late PDU of the old session
	p.ack(time.Second)
	w1, ok1 := r.Watermark(3, 100)
	w2, ok2 := r.Watermark(3, 200)
	if !ok1 || !ok2 || w1.Seq != 2 || w2.Seq != 1 {
		t.Fatalf("watermarks %+v %v, %+v %v", w1, ok1, w2, ok2)
	}
	if st := r.Stats(); st.Restarts != 1 || st.Delivered != 3 {
		t.Fatalf("stats %+v", st)
	}
	if n := len(r.Sessions()); n != 2 {
		t.Fatalf("%d sessions", n)
	}
}

// Heartbeats move the watermark's time once nothing is outstanding, and a
// floor settles a PDU the probe gave up.
func TestReceiverWatermark(t *testing.T) {
	h := newCollect()
	r, addr := startReceiver(t, h)
	p := newRawProbe(t, addr)
	d := makePDUs(2, 1)[1]
	f, _ := pdu.Parse(d)
	t0 := f.Header.ProbeTime

	p.send(stamped(d, 1, 1, 1, 1))
	p.ack(time.Second)
	p.send(stamped(d, 1, 1, 3, 1)) // 2 is missing
	p.ack(time.Second)
	hb := func(seq, floor uint32, pt int64) {
		p.send(pdu.AppendControl(nil, pdu.Header{Type: pdu.TypeHeartbeat, Probe: 1, Session: 1, Seq: seq, Floor: floor, ProbeTime: pt}))
	}
	hb(3, 2, t0+1000) // 2 still outstanding: no change
	waitFor(t, func() bool { return r.Stats().Heartbeats == 1 })
	if w, _ := r.Watermark(1, 1); w != (Watermark{1, t0}) {
		t.Fatalf("watermark %+v", w)
	}
	hb(3, 4, t0+2000) // the probe gave 2 up: everything settled, time moves
	waitFor(t, func() bool { return r.Stats().Heartbeats == 2 })
	if w, _ := r.Watermark(1, 1); w != (Watermark{3, t0 + 2000}) {
		t.Fatalf("watermark %+v", w)
	}
	if st := r.Stats(); st.Skipped != 1 {
		t.Fatalf("skipped %d", st.Skipped)
	}
	if got := p.ack(50 * time.Millisecond); got != 0 {
		t.Fatalf("heartbeat acked (%d)", got)
	}
}

type refuse struct{ n int }

func (r *refuse) HandlePDU(netip.AddrPort, *pdu.Frame) error {
	r.n++
	if r.n == 1 {
		return errors.New("disk full")
	}
	return nil
}

// A PDU the handler refuses is not acked, and is delivered when it comes again.
func TestReceiverHandlerError(t *testing.T) {
	h := &refuse{}
	r, addr := startReceiver(t, h)
	p := newRawProbe(t, addr)
	d := stamped(makePDUs(2, 1)[1], 1, 1, 1, 1)
	p.send(d)
	if got := p.ack(100 * time.Millisecond); got != 0 {
		t.Fatal("refused PDU acked")
	}
	p.send(d)
	if got := p.ack(time.Second); got != 1 {
		t.Fatalf("ack %d", got)
	}
	if st := r.Stats(); st.HandlerErrors != 1 || st.Delivered != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReceiverMaxSessions(t *testing.T) {
	conn := listen(t)
	r, err := NewReceiver(conn, conf.Transport{}, ReceiverOptions{Logger: quiet, MaxSessions: 4, Window: 64})
	if err != nil {
		t.Fatal(err)
	}
	d := makePDUs(2, 1)[1]
	h := newCollect()
	for i := range 100 {
		r.process(stamped(d, uint16(i), 1, 1, 1), netip.AddrPort{}, h, nil, false)
	}
	if n := len(r.Sessions()); n != 4 || r.Stats().Evicted != 96 {
		t.Fatalf("%d sessions, %d evicted", n, r.Stats().Evicted)
	}
}

// waitFor polls cond; the deadline only bounds a failing test (a loaded
// CI machine is slow, a passing test never waits for it).
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// The receive path allocates nothing per PDU.
func TestReceiverNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	conn := listen(t)
	r, _ := NewReceiver(conn, conf.Transport{}, ReceiverOptions{Logger: quiet})
	d := makePDUs(2, 1)[1]
	h := &decodeHandler{}
	seq := uint32(0)
	r.process(stamped(d, 1, 1, 1, 1), netip.AddrPort{}, h, nil, false) // create the session
	b := append([]byte(nil), d...)
	allocs := testing.AllocsPerRun(200, func() {
		seq++
		pdu.Restamp(b, 1, 1, seq+1, seq+1)
		if r.process(b, netip.AddrPort{}, h, nil, false) == nil {
			t.Fatal("not acked")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocs per PDU", allocs)
	}
}

// decodeHandler decodes sightings, as a collector would.
type decodeHandler struct{ n int }

func (d *decodeHandler) HandlePDU(_ netip.AddrPort, f *pdu.Frame) error {
	var r pdu.SightingReader
	var s pdu.Sighting
	r.Reset(f.Body)
	for r.Next(&s) {
		d.n++
	}
	return r.Err()
}

// BenchmarkReceiverProcess measures the collector's per-PDU work: checks
// (CRC, body validation), dedupe, watermark, ack encoding, and the handler
// decoding every sighting. Each iteration also restamps the PDU (one CRC) to
// make it new.
func BenchmarkReceiverProcess(b *testing.B) {
	conn := listen(b)
	r, _ := NewReceiver(conn, conf.Transport{}, ReceiverOptions{Logger: quiet})
	bu := pdu.NewBuilder(1400)
	for i := 0; bu.AddSighting(uint32(i%16), 3, false, pdu.Sighting{Sig: uint32(i), TS: int64(i) * 5000}); i++ {
	}
	p := append([]byte(nil), bu.Finish(pdu.Header{})...)
	h := &decodeHandler{}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	start := time.Now()
	for i := 0; i < b.N; i++ {
		seq := uint32(i + 1)
		pdu.Restamp(p, 1, 1, seq, seq)
		if r.process(p, netip.AddrPort{}, h, nil, false) == nil {
			b.Fatal("not acked")
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "PDUs/s")
	b.ReportMetric(float64(bu.Len()), "sightings/PDU")
}

// Sending allocates nothing per PDU once the buffers are warm.
func TestSenderSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	_, addr := startReceiver(t, &decodeHandler{}) // AllocsPerRun counts every goroutine
	cfg := fastConfig()
	cfg.MinGap = time.Microsecond
	s := newSender(t, cfg, []netip.AddrPort{addr}, nil)
	d := makePDUs(2, 1)[1]
	wait := func() {
		waitFor(t, func() bool { st := s.Stats().Collectors[0]; return st.Pending == 0 })
	}
	for range 50 { // warm up buffers, maps and queues
		s.Send(d)
	}
	wait()
	// Packets are recycled once acked: as many as may be in flight while
	// the 50 measured sends outrun the acks (on a loaded machine) are made
	// now, as a long-running sender has them.
	for range 64 {
		s.pool.free = append(s.pool.free, &packet{buf: make([]byte, 0, s.pool.size)})
	}
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := s.Send(d); err != nil {
			t.Fatal(err)
		}
	})
	wait()
	if allocs > 0 {
		t.Errorf("%v allocs per Send", allocs)
	}
}

// TestReceiverByeOvertaken: the bye arrives before a PDU lost once and
// retried: the retry is data of the session, delivered and acked, not a
// replay after the bye; a new seq after the bye is.
func TestReceiverByeOvertaken(t *testing.T) {
	h := newCollect()
	r, addr := startReceiver(t, h)
	p := newRawProbe(t, addr)
	d := makePDUs(2, 1)[1]
	p.send(stamped(d, 1, 9, 1, 1))
	p.ack(time.Second)
	p.send(stamped(pdu.AppendControl(nil, pdu.Header{Type: pdu.TypeBye, Probe: 1, Session: 9}), 1, 9, 3, 2))
	if got := p.ack(time.Second); got != 3 {
		t.Fatalf("bye acked as %d", got)
	}
	p.send(stamped(d, 1, 9, 2, 2)) // the retry the bye overtook
	if got := p.ack(time.Second); got != 2 {
		t.Fatalf("retry before the bye not acked (%d): %+v", got, r.Stats())
	}
	p.send(stamped(d, 1, 9, 4, 4)) // after the bye: a replay
	if got := p.ack(200 * time.Millisecond); got != 0 {
		t.Fatalf("seq after the bye acked (%d)", got)
	}
	if st := r.Stats(); st.Delivered != 3 || st.Invalid[ReasonStale] != 1 {
		t.Fatalf("stats %+v", st)
	}
}
