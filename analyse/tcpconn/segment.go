package tcpconn

import (
	"github.com/tmon-project/tmon/sieve"
)

// What one segment does to its connection: the history letters, the
// sequence space of each side (bytes, holes, retransmissions), the FIN.

// History letters, in Zeek's order of bits.
const (
	hS = iota
	hH
	hA
	hD
	hF
	hR
	hT
	hW
	hQ
)

var letters = [...]byte{'S', 'H', 'A', 'D', 'F', 'R', 'T', 'W', 'Q'}

// letter appends a history letter the first time the side shows it:
// upper case for the originator, lower case for the responder.
func (c *conn) letter(s *side, orig bool, l int) {
	if s.letters&(1<<l) != 0 {
		return
	}
	s.letters |= 1 << l
	if int(c.nhist) >= len(c.hist) {
		return
	}
	b := letters[l]
	if !orig {
		b += 'a' - 'A'
	}
	c.hist[c.nhist] = b
	c.nhist++
}

// segment updates c with one segment sent by side a (dirA) or b.
func (a *Analysis) segment(c *conn, rec *sieve.Record, dirA bool) {
	orig := dirA == c.origA
	si := 0
	if !orig {
		si = 1
	}
	s, peer := &c.s[si], &c.s[1-si]
	if c.closedAt == 0 {
		// After the close only packets are counted (the last ACKs), as
		// Zeek does: the duration ends at the closing FIN or RST.
		c.last = rec.TS
	}
	c.active = rec.TS
	c.changed = true
	s.pkts++
	f := rec.TCPFlags
	seq := uint32(rec.Txn >> 32)
	pay := uint64(rec.TCPPayload)
	switch {
	case f&fSYN != 0 && f&(fFIN|fRST) != 0:
		c.letter(s, orig, hQ)
	case f&(fSYN|fACK) == fSYN:
		c.letter(s, orig, hS)
	case f&(fSYN|fACK) == fSYN|fACK:
		c.letter(s, orig, hH)
	case f&(fACK|fFIN|fRST) == fACK && pay == 0:
		c.letter(s, orig, hA)
	}
	if f&fSYN != 0 {
		if !s.seen || s.hi == 0 {
			s.base, s.seen = seq+1, true
		}
		if s.state == stInactive || s.state == stPartial {
			s.state = stSynSent
			if f&fACK != 0 {
				s.state = stSynAckSent
			}
		}
	} else if f&fACK != 0 {
		switch {
		case s.state == stSynSent && peer.state == stSynAckSent,
			s.state == stSynAckSent && peer.state == stEstablished:
			s.state = stEstablished
			if peer.state == stSynAckSent {
				peer.state = stEstablished
			}
		case s.state == stInactive:
			s.state = stPartial
		}
	} else if s.state == stInactive {
		s.state = stPartial
	}
	if pay > 0 {
		c.letter(s, orig, hD)
		a.data(c, s, orig, seq, pay)
	}
	if rec.TCPWindow == 0 && f&fRST == 0 {
		s.zw++
		c.letter(s, orig, hW)
	}
	if f&fFIN != 0 && s.seen {
		a.finSeq(s, seq+uint32(pay))
	}
	if f&fFIN != 0 {
		c.letter(s, orig, hF)
		s.fin = true
		if s.state != stReset {
			s.state = stClosed
		}
		if peer.fin && c.closedAt == 0 {
			c.closedAt = rec.TS
		}
	}
	if f&fRST != 0 {
		c.letter(s, orig, hR)
		s.rst = true
		s.state = stReset
		if c.closedAt == 0 {
			c.closedAt = rec.TS
		}
	}
}

// data accounts pay bytes at sequence number seq.
func (a *Analysis) data(c *conn, s *side, orig bool, seq uint32, pay uint64) {
	if !s.seen {
		s.base, s.seen = seq, true
	}
	// The segment's offset from base, unwrapped around the highest end
	// seen: sequence numbers wrap at 2³², a segment is within 2³¹ of it.
	lo := int64(s.hi) + int64(int32(seq-(s.base+uint32(s.hi))))
	if lo < 0 {
		// Before the first byte (data on a SYN of an earlier try, or a
		// base taken midstream): counted from the base.
		if lo+int64(pay) <= 0 {
			s.retrans++
			c.letter(s, orig, hT)
			return
		}
		pay -= uint64(-lo)
		lo = 0
	}
	start, end := uint64(lo), uint64(lo)+pay
	switch {
	case start >= s.hi:
		if start > s.hi {
			// A gap: remember it (the older of two is forgotten).
			s.holes[1] = s.holes[0]
			s.holes[0] = hole{s.hi, start}
		}
		s.hi = end
	default:
		filled := false
		for h := range s.holes {
			hl := &s.holes[h]
			if hl.hi <= hl.lo || end <= hl.lo || start >= hl.hi {
				continue
			}
			filled = true
			switch {
			case start <= hl.lo && end >= hl.hi:
				*hl = hole{}
			case start <= hl.lo:
				hl.lo = end
			case end >= hl.hi:
				hl.hi = start
			default:
				// Filled in the middle: keep the lower part (the
				// upper one is forgotten).
				hl.hi = start
			}
		}
		if end > s.hi {
			s.hi = end
			filled = true
		}
		if filled {
			s.ooo++
		} else {
			s.retrans++
			c.letter(s, orig, hT)
		}
	}
}

// finSeq accounts a FIN at sequence number pos: the bytes before it were
// sent, seen here or not (lost upstream, or a class keeping only SYN, FIN
// and RST of FTP data connections); those not seen make a gap.
func (a *Analysis) finSeq(s *side, pos uint32) {
	end := int64(s.hi) + int64(int32(pos-(s.base+uint32(s.hi))))
	if end > int64(s.hi) {
		s.holes[1] = s.holes[0]
		s.holes[0] = hole{s.hi, uint64(end)}
		s.hi = uint64(end)
	}
}
