package probe

import (
	"sync/atomic"
	"time"

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
type output struct {
	sender   sender
	defs     *pdu.Builder
	sights   *pdu.Builder
	events   *pdu.Builder
	counters *pdu.Builder
	opened   time.Time // when the oldest open builder got its first record
	first    int64     // time of the first sighting in the open sightings PDU
	clock    atomic.Int64
	err      error
	// Counters, written by the analyser goroutine, read by the metrics
	// endpoint at any time.
	pdus, sightings, sightBytes atomic.Uint64
}

func newOutput(maxSize int) *output {
	return &output{defs: pdu.NewBuilder(maxSize), sights: pdu.NewBuilder(maxSize), events: pdu.NewBuilder(maxSize),
		counters: pdu.NewBuilder(maxSize)}
}

func (o *output) touch() {
	if o.opened.IsZero() {
		o.opened = time.Now()
	}
}

func (o *output) FlowDef(d pdu.FlowDef) {
	o.touch()
	if o.defs.AddFlowDef(d) {
		return
	}
	o.send(o.defs, pdu.TypeFlowDef, o.clock.Load())
	o.defs.AddFlowDef(d)
}

func (o *output) Sighting(s pdu.Sighting, exp uint8, size bool) {
	o.touch()
	if o.sights.Len() == 0 {
		o.first = s.TS
	}
	if o.sights.AddSighting(s.Flow, exp, size, s) {
		return
	}
	// Full: everything before this sighting has been submitted once the
	// PDU leaves.
	o.closeSightings(s.TS)
	o.first = s.TS
	o.sights.AddSighting(s.Flow, exp, size, s)
}

// Counters takes a record of the counters analysis (analyse/counters).
func (o *output) Counters(c pdu.Counters) {
	o.touch()
	if o.counters.AddCounters(c) {
		return
	}
	o.sendCounters(o.clock.Load())
	o.counters.AddCounters(c)
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
	o.send(o.events, pdu.TypeEvents, o.clock.Load())
	o.events.AddEvent(e)
}

// closeSightings sends the open sightings PDU stamped with clock, after any
// pending flow definitions.
func (o *output) closeSightings(clock int64) {
	if o.defs.Len() > 0 {
		o.send(o.defs, pdu.TypeFlowDef, clock)
	}
	n := uint64(o.sights.Len())
	size := o.send(o.sights, pdu.TypeSightings, clock)
	o.sightings.Add(n)
	o.sightBytes.Add(uint64(size))
	o.advance(clock)
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

// advance publishes the data clock for heartbeats: it never goes back.
func (o *output) advance(clock int64) {
	if clock > o.clock.Load() {
		o.clock.Store(clock)
	}
}

// maybeFlush closes the open PDUs when the oldest has waited maxBuild.
func (o *output) maybeFlush(w int64, maxBuild time.Duration) {
	if !o.opened.IsZero() && time.Since(o.opened) >= maxBuild {
		o.flush(w)
	}
}

// idle is called when the analyser has caught up with the sieve up to w.
func (o *output) idle(w int64, maxBuild time.Duration) {
	if o.opened.IsZero() {
		o.advance(w)
		return
	}
	o.maybeFlush(w, maxBuild)
}

// flush sends every open PDU; w is the time before which everything has
// been analysed.
func (o *output) flush(w int64) {
	if o.defs.Len() > 0 {
		o.send(o.defs, pdu.TypeFlowDef, w)
	}
	if o.sights.Len() > 0 {
		o.closeSightings(w)
	}
	if o.events.Len() > 0 {
		o.send(o.events, pdu.TypeEvents, w)
	}
	if o.counters.Len() > 0 {
		o.sendCounters(w)
	}
	o.advance(w)
	o.opened = time.Time{}
}
