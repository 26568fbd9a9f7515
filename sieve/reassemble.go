package sieve

import (
	"github.com/tmon-project/tmon/reassembly"
)

// Fragments are reassembled here, before the ring, because only here are
// the packet bytes at hand (the ring carries fixed-size records). A
// fragment that no class can want by its IP header is dropped before any
// buffering (Unwanted); the others are held by the reassembler (Held); the
// fragment that completes a datagram yields the datagram's record,
// dissected, classified and signed as if it had crossed the wire whole.
//
// Why per datagram and not per fragment: a non-first fragment has no
// ports, so measured on its own it could only belong to a flow instance
// without them, and a datagram lost at one hop but not another differs only
// in its fragments. Reassembled, the datagram is classified on its full
// transport header at every hop alike, and it is delivered at a hop exactly
// when all its fragments are: a lost first fragment makes the datagram
// lost, never a later fragment "delivered" into the wrong flow. The
// signature covers the reassembled bytes with the length and fragment
// fields of a whole datagram, so a router that fragments differently
// between two probes does not change it.

// reassemble hands a dissected fragment to the reassembler. It returns
// Wanted when the fragment completed a datagram, whose record and layout
// then replace rec and l, with the datagram's bytes; Held while the set is
// incomplete; Malformed when the datagram does not dissect.
func (s *Sieve) reassemble(data []byte, ts int64, rec *Record, l *layout) ([]byte, Reason) {
	k := reassembly.Key{Src: rec.Src, Dst: rec.Dst, ID: l.fragID, Iface: rec.Iface, Version: rec.IPVersion, Proto: l.fragProto}
	f := reassembly.Fragment{Key: k, TS: ts, Off: int(rec.FragOff) * 8, More: rec.Flags&FlagMoreFrags != 0,
		NHAt: -1, Payload: data[l.fragPay:l.end]}
	if rec.FragOff == 0 {
		f.Hdr = data[l.ip:l.fragPay]
		if rec.IPVersion == 6 {
			f.Hdr = data[l.ip : l.fragPay-8] // without the fragment header
			f.NHAt = l.fragNH - l.ip
		}
	}
	d, ok := s.reasm.Add(&f)
	if !ok {
		return nil, Held
	}
	vlan, iface := rec.VLAN, rec.Iface
	reset(rec, l)
	if r := rawIP(d.IP, 0, rec, l); r != Wanted {
		// Bytes that were fine fragment by fragment and are not once
		// together (a transport header cut short): malformed.
		return nil, Malformed
	}
	rec.VLAN, rec.Iface, rec.TS = vlan, iface, d.Last
	rec.Flags |= FlagReassembled
	rec.Frags = uint8(min(d.Fragments, 255))
	rec.Span = uint32(min(d.Last-d.First, 1<<32-1))
	return d.IP, Wanted
}

// Reassembly returns the reassembler's counters (call it like Stats).
func (s *Sieve) Reassembly() reassembly.Stats { return s.reasm.Stats() }

// CloseReassembly drops the fragment sets still open at the end of the
// capture (counted incomplete).
func (s *Sieve) CloseReassembly() { s.reasm.Close() }

// ReassemblyConfig returns the bounds of the sieve's fragment reassembly
// (conf.Analyses).
func (s *Sieve) ReassemblyConfig() reassembly.Config { return s.reasm.Config() }
