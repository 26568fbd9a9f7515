package probe

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/tmon-project/tmon/selection"

	"github.com/tmon-project/tmon/pdu"
)

// sender is the part of transport.Sender the probe uses.
type sender interface {
	Send(b []byte) (uint32, error)
}

// output receives the analyser's flow definitions and sightings and packs
// them into PDUs: one builder per PDU type, so a flow definition never waits
// behind sightings. A flow definition PDU is always sent before the first
// sightings PDU that refers to it.
//
// Stamps. Every PDU header and heartbeat carries a probe time T with the
// promise of docs/pdu.md: every sighting captured before T is in this or an
// earlier PDU. The collector closes records and intervals on it, so a stamp
// one sighting too far turns that sighting into a false loss, a false
// missed, or a late row. Two times make the stamps:
//   - done: every packet captured before it has been analysed (its
//     sightings are in a sent PDU or in the open sightings builder);
//     advanced by the analyser loop after each batch (progress);
//   - the earliest sighting in the open sightings builder (openMin).
//
// A PDU that leaves while the sightings builder stays open (flow
// definitions, events, clock records) is stamped min(done, openMin): the
// sightings still waiting are not covered. A sightings PDU is stamped done
// (and not later than the sighting that did not fit): what it leaves
// behind is after that. The published clock that heartbeats carry is the
// same min(done, openMin), never going back.
type output struct {
	sender   sender
	defs     *pdu.Builder
	sights   *pdu.Builder
	events   *pdu.Builder
	counters *pdu.Builder
	rtt      *pdu.Builder
	tcp      *pdu.Builder
	ftp      *pdu.Builder
	opened   time.Time // when the oldest open builder got its first record
	done     int64     // every packet before it has been analysed
	openMin  int64     // earliest sighting in the open sightings PDU; MaxInt64 when empty
	clock    atomic.Int64
	err      error
	// shedLevel: sightings of the packets selection.Shed leaves out at it
	// are not sent (see shedder), only counted in shed.
	shedLevel uint8
	// Counters, written by the analyser goroutine, read by the metrics
	// endpoint at any time.
	pdus, sightings, sightBytes, shed atomic.Uint64
	shedNow                           atomic.Uint32 // shedLevel, for the metrics
}

func newOutput(maxSize int) *output {
	return &output{defs: pdu.NewBuilder(maxSize), sights: pdu.NewBuilder(maxSize), events: pdu.NewBuilder(maxSize),
		counters: pdu.NewBuilder(maxSize), rtt: pdu.NewBuilder(maxSize), tcp: pdu.NewBuilder(maxSize), ftp: pdu.NewBuilder(maxSize), done: math.MinInt64, openMin: math.MaxInt64}
}

func (o *output) touch() {
	if o.opened.IsZero() {
		o.opened = time.Now()
	}
}

// covered is the stamp of a PDU that leaves while the sightings builder
// stays open.
func (o *output) covered() int64 {
	return max(min(o.done, o.openMin), o.clock.Load())
}

func (o *output) FlowDef(d pdu.FlowDef) {
	o.touch()
	if o.defs.AddFlowDef(d) {
		return
	}
	o.send(o.defs, pdu.TypeFlowDef, o.covered())
	o.defs.AddFlowDef(d)
}

func (o *output) Sighting(s pdu.Sighting, exp uint8, size bool) {
	if o.shedLevel > 0 && selection.Shed(s.Sig, o.shedLevel) {
		o.shed.Add(1)
		return
	}
	o.touch()
	if o.sights.AddSighting(s.Flow, exp, size, s) {
		o.openMin = min(o.openMin, s.TS)
		return
	}
	// Full: what is analysed before done is in this PDU or an earlier
	// one, and this sighting goes into the next.
	o.closeSightings(min(o.done, s.TS))
	o.sights.AddSighting(s.Flow, exp, size, s)
	o.openMin = s.TS
	o.publish()
}

// Counters takes a record of the counters analysis (analyse/counters).
func (o *output) Counters(c pdu.Counters) {
	o.touch()
	if o.counters.AddCounters(c) {
		return
	}
	o.sendCounters(o.covered())
	o.counters.AddCounters(c)
}

// RTT takes a record of the round-trip analysis (analyse/rtt).
func (o *output) RTT(r *pdu.RTT) {
	o.touch()
	if o.rtt.AddRTT(r) {
		return
	}
	o.sendAfterDefs(o.rtt, pdu.TypeRTT, o.covered())
	o.rtt.AddRTT(r)
}

// TCPConn takes a record of the TCP connection analysis (analyse/tcpconn).
func (o *output) TCPConn(c *pdu.TCPConn) {
	o.touch()
	if o.tcp.AddTCPConn(c) {
		return
	}
	o.sendAfterDefs(o.tcp, pdu.TypeTCPConn, o.covered())
	o.tcp.AddTCPConn(c)
}

// FTPTransfer takes a record of the FTP analysis (analyse/ftp).
func (o *output) FTPTransfer(x *pdu.FTPTransfer) {
	o.touch()
	if o.ftp.AddFTPTransfer(x) {
		return
	}
	o.sendAfterDefs(o.ftp, pdu.TypeFTP, o.covered())
	o.ftp.AddFTPTransfer(x)
}

// sendAfterDefs sends the open PDU of b after the flow definitions its
// records refer to.
func (o *output) sendAfterDefs(b *pdu.Builder, t pdu.Type, clock int64) {
	if o.defs.Len() > 0 {
		o.send(o.defs, pdu.TypeFlowDef, clock)
	}
	o.send(b, t, clock)
}

// sendCounters sends the open counters PDU after the flow definitions it
// refers to.
func (o *output) sendCounters(clock int64) {
	if o.defs.Len() > 0 {
		o.send(o.defs, pdu.TypeFlowDef, clock)
	}
	o.send(o.counters, pdu.TypeCounters, clock)
}

func (o *output) event(ts int64, kind, detail string) {
	o.touch()
	e := pdu.Event{TS: ts, Kind: kind, Detail: detail}
	if o.events.AddEvent(e) {
		return
	}
	o.send(o.events, pdu.TypeEvents, o.covered())
	o.events.AddEvent(e)
}

// sendEvents sends the open events PDU now, before any later sightings
// PDU (a shedding change must reach the collector ahead of what it
// concerns).
func (o *output) sendEvents() {
	if o.events.Len() > 0 {
		o.send(o.events, pdu.TypeEvents, o.covered())
	}
}

// closeSightings sends the pending flow definitions (stamped with what
// was covered before this PDU) and then the open sightings PDU stamped
// with stamp.
func (o *output) closeSightings(stamp int64) {
	if o.defs.Len() > 0 {
		o.send(o.defs, pdu.TypeFlowDef, o.covered())
	}
	n := uint64(o.sights.Len())
	stamp = max(stamp, o.clock.Load())
	size := o.send(o.sights, pdu.TypeSightings, stamp)
	o.sightings.Add(n)
	o.sightBytes.Add(uint64(size))
	o.openMin = math.MaxInt64
	o.advance(stamp)
}

func (o *output) send(b *pdu.Builder, t pdu.Type, clock int64) int {
	if b.Len() == 0 {
		return 0
	}
	buf := b.Finish(pdu.Header{Type: t, ProbeTime: clock})
	n := len(buf)
	if _, err := o.sender.Send(buf); err != nil && o.err == nil {
		o.err = err
	}
	b.Reset()
	o.pdus.Add(1)
	return n
}

// advance publishes the data clock for heartbeats, after the PDUs it
// covers were submitted: it never goes back.
func (o *output) advance(clock int64) {
	if clock > o.clock.Load() {
		o.clock.Store(clock)
	}
}

// publish advances the heartbeats' clock to what the sent PDUs cover.
func (o *output) publish() {
	if c := min(o.done, o.openMin); c != math.MaxInt64 {
		o.advance(c)
	}
}

// progress is called by the analyser loop once every packet captured
// before w has been analysed; it closes the open PDUs when the oldest has
// waited maxBuild.
func (o *output) progress(w int64, maxBuild time.Duration) {
	o.done = max(o.done, w)
	if !o.opened.IsZero() && time.Since(o.opened) >= maxBuild {
		o.flush(w)
		return
	}
	o.publish()
}

// flush sends every open PDU; every packet before w has been analysed.
func (o *output) flush(w int64) {
	o.done = max(o.done, w)
	if o.sights.Len() > 0 {
		o.closeSightings(o.done)
	}
	if o.defs.Len() > 0 {
		o.send(o.defs, pdu.TypeFlowDef, o.covered())
	}
	if o.events.Len() > 0 {
		o.send(o.events, pdu.TypeEvents, o.covered())
	}
	if o.counters.Len() > 0 {
		o.sendCounters(o.covered())
	}
	if o.rtt.Len() > 0 {
		o.sendAfterDefs(o.rtt, pdu.TypeRTT, o.covered())
	}
	if o.tcp.Len() > 0 {
		o.sendAfterDefs(o.tcp, pdu.TypeTCPConn, o.covered())
	}
	if o.ftp.Len() > 0 {
		o.sendAfterDefs(o.ftp, pdu.TypeFTP, o.covered())
	}
	o.publish()
	o.opened = time.Time{}
}
