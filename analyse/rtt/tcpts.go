package rtt

import (
	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/sieve"
)

// TCP timestamp echoes (RFC 7323 §3, §4.1): a segment's TSval is a
// request, answered by the first later segment of the opposite direction
// whose TSecr echoes it; the round trip is between the first segment seen
// carrying that TSval and that echo. Only a TSval after (modulo 2³²) the
// last one recorded for its direction is a request: the segments of one
// clock tick share a TSval, and a retransmission or a reordered segment
// carrying an old one is not a new request. TSval 0 and TSecr 0 are taken
// as absent (the sieve cannot tell them from a segment without the
// option, and a TSecr is 0 where it is not valid).
//
// A receiver does not echo every TSval: with delayed acknowledgments it
// echoes the earliest of the segments it acknowledges at once, after a
// gap the last in sequence. A TSval never echoed while a later one of its
// direction was is passed over: neither matched nor unanswered. A TSval
// neither echoed nor followed by the echo of a later one within Timeout
// counts unanswered.
//
// Per direction (interface, class, addresses, ports) the analysis keeps
// the last TSval recorded and the highest TSecr seen echoing it, in a
// table bounded by MaxPending and aged out after Timeout without a
// segment; a direction that finds the table full is not followed
// (Analysis.Untracked).

// tsDirKey is one direction of a TCP connection: the sender's side first.
type tsDirKey struct {
	src, dst     [16]byte
	sport, dport uint16
	iface, class uint8
}

// tsDir is what a direction needs between its segments.
type tsDir struct {
	seen     int64  // capture time of its last request or echo (ageing)
	lastVal  uint32 // last TSval recorded as a request
	lastEcho uint32 // highest TSecr that echoed one of its TSvals
	hasVal   bool
	hasEcho  bool
}

// after reports whether TCP timestamp a is later than b (RFC 7323 §5.2:
// modulo 2³², within half of it).
func after(a, b uint32) bool { return int32(a-b) > 0 }

// tsPacket matches the TCP timestamps of rec in class ci.
func (a *Analysis) tsPacket(rec *sieve.Record, ci int, ids *analyse.FlowIDs) {
	const ackf = 0x10
	if rec.TSEcr != 0 && rec.TCPFlags&ackf != 0 {
		// An echo: of a TSval sent by the opposite direction.
		od := tsDirKey{src: rec.Dst, dst: rec.Src, sport: rec.DstPort, dport: rec.SrcPort, iface: rec.Iface, class: uint8(ci)}
		if d, ok := a.tsDirs[od]; ok && (!d.hasEcho || rec.TSEcr != d.lastEcho) {
			if !d.hasEcho || after(rec.TSEcr, d.lastEcho) {
				d.lastEcho, d.hasEcho = rec.TSEcr, true
			}
			d.seen = rec.TS
			a.tsDirs[od] = d
			k := txnKey{src: od.src, dst: od.dst, sport: od.sport, dpt: od.dport, txn: uint64(rec.TSEcr),
				iface: rec.Iface, class: uint8(ci), kind: KindTS}
			if p, ok := a.pend[k]; ok {
				a.forget(k)
				a.Matched++
				a.add(statKey{a.startOf(p.ts), p.flow, KindTS}, rec.TS-p.ts, false)
			}
		}
	}
	if rec.TSVal == 0 {
		return
	}
	dk := tsDirKey{src: rec.Src, dst: rec.Dst, sport: rec.SrcPort, dport: rec.DstPort, iface: rec.Iface, class: uint8(ci)}
	d, ok := a.tsDirs[dk]
	if ok && d.hasVal && !after(rec.TSVal, d.lastVal) {
		return // the same tick, or an old value
	}
	if !ok && len(a.tsDirs) >= a.cfg.MaxPending {
		a.Untracked++
		return
	}
	d.lastVal, d.hasVal, d.seen = rec.TSVal, true, rec.TS
	a.tsDirs[dk] = d
	k := txnKey{src: dk.src, dst: dk.dst, sport: dk.sport, dpt: dk.dport, txn: uint64(rec.TSVal),
		iface: rec.Iface, class: uint8(ci), kind: KindTS}
	if _, ok := a.pend[k]; ok {
		return // the same value 2³² ticks later, still waiting: keep the first
	}
	for len(a.pend) >= a.cfg.MaxPending {
		a.evictOldest()
	}
	a.order = append(a.order, k)
	a.pend[k] = pending{ts: rec.TS, flow: ids.Of(ci)}
}

// tsPassedOver reports whether the TSval request k, leaving unechoed, was
// passed over by the echo of a later TSval of its direction.
func (a *Analysis) tsPassedOver(k txnKey) bool {
	d, ok := a.tsDirs[tsDirKey{src: k.src, dst: k.dst, sport: k.sport, dport: k.dpt, iface: k.iface, class: k.class}]
	return ok && d.hasEcho && !after(uint32(k.txn), d.lastEcho)
}

// tsAge forgets the directions without a segment since before old. Every
// request of such a direction was recorded before old and has timed out
// already (Advance times requests out first).
func (a *Analysis) tsAge(old int64) {
	for k, d := range a.tsDirs {
		if d.seen < old {
			delete(a.tsDirs, k)
		}
	}
}
