package probe

import (
	"fmt"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/capture"
	"github.com/tmon-project/tmon/reassembly"
	"github.com/tmon-project/tmon/sieve"
	"github.com/tmon-project/tmon/transport"
)

// Result summarises a finished run.
type Result struct {
	Sieve sieve.Stats
	// Reassembly: what became of the IP fragments (package reassembly).
	Reassembly reassembly.Stats
	Analyser   analyse.Stats
	Transport  transport.Stats
	Files      []capture.FileStats
	Capture    []capture.LiveStats // live: kernel ring counters per socket
	PDUs       uint64              // PDUs built (all types)
	Sightings  uint64              // sightings put into PDUs
	PDUBytes   uint64              // bytes of sightings PDUs
	Shed       uint64              // sightings left out by load shedding (see shedder); not in Sightings
}

// add sums the figures of an epoch into r; the cumulative ones (live
// socket counters) are the last epoch's.
func (r *Result) add(e Result) {
	addSieveStats(&r.Sieve, e.Sieve)
	addReassembly(&r.Reassembly, e.Reassembly)
	r.Analyser.Records += e.Analyser.Records
	r.Analyser.Sightings += e.Analyser.Sightings
	r.Analyser.Flows += e.Analyser.Flows
	r.Analyser.ICMPErrors += e.Analyser.ICMPErrors
	r.Analyser.Fragments += e.Analyser.Fragments
	r.Analyser.Unselected += e.Analyser.Unselected
	r.Analyser.Aged += e.Analyser.Aged
	r.Analyser.Evicted += e.Analyser.Evicted
	if len(r.Transport.Collectors) == len(e.Transport.Collectors) {
		r.Transport.Submitted += e.Transport.Submitted
		for i, c := range e.Transport.Collectors {
			d := &r.Transport.Collectors[i]
			d.Sent += c.Sent
			d.Retried += c.Retried
			d.Acked += c.Acked
			d.GivenUp += c.GivenUp
			d.LongRetry += c.LongRetry
			d.Bytes += c.Bytes
			d.Heartbeats += c.Heartbeats
			d.SendErrors += c.SendErrors
			d.BadAcks += c.BadAcks
			d.Saturated += c.Saturated
			d.Pending, d.Queued = c.Pending, c.Queued
		}
	} else {
		r.Transport = e.Transport
	}
	r.Capture = e.Capture
	r.PDUs += e.PDUs
	r.Sightings += e.Sightings
	r.PDUBytes += e.PDUBytes
	r.Shed += e.Shed
}

func addReassembly(d *reassembly.Stats, s reassembly.Stats) {
	d.Fragments += s.Fragments
	d.Datagrams += s.Datagrams
	d.Incomplete += s.Incomplete
	d.Evicted += s.Evicted
	d.Overlap += s.Overlap
	d.Duplicate += s.Duplicate
	d.TooMany += s.TooMany
	d.Discarded += s.Discarded
	d.Invalid += s.Invalid
}

func addSieveStats(d *sieve.Stats, s sieve.Stats) {
	d.Packets += s.Packets
	d.Wanted += s.Wanted
	d.Unwanted += s.Unwanted
	d.NotIP += s.NotIP
	d.UnsupportedLink += s.UnsupportedLink
	d.Truncated += s.Truncated
	d.Malformed += s.Malformed
	d.Fragments += s.Fragments
	d.ICMPErrors += s.ICMPErrors
	d.Short += s.Short
	d.Signed += s.Signed
	d.RingFull += s.RingFull
	d.RingDrops += s.RingDrops
	d.Held += s.Held
}

func captureSummary(st []capture.LiveStats) string {
	if len(st) == 0 {
		return ""
	}
	var t capture.LiveStats
	for _, s := range st {
		t.Packets += s.Packets
		t.Drops += s.Drops
		t.Freezes += s.Freezes
	}
	return fmt.Sprintf(" kernel_packets=%d kernel_drops=%d ring_freezes=%d", t.Packets, t.Drops, t.Freezes)
}
