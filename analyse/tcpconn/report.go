package tcpconn

import (
	"net/netip"
	"time"

	"github.com/tmon-project/tmon/pdu"
)

// When and how a connection is reported: at interval ends while open, once
// when it ends (closed, reset, idle, evicted), and its Zeek-like state.

// report sends, at the end of the interval that ended by now, the open
// connections that had packets in it. One that had none is not sent
// again: its figures did not change (and a capture whose clock jumps by
// years must not make a record per connection and interval in between).
func (a *Analysis) report(now int64) {
	end := a.nextReport
	a.nextReport = a.startOf(now) + a.iv
	a.sweep(end)
	for _, i := range a.idx {
		if c := &a.conns[i]; c.changed {
			c.changed = false
			a.send(c, pdu.TCPOpen, end-a.iv)
		}
	}
}

// sweep reports the connections closed for CloseDelay or idle for Idle
// by now.
func (a *Analysis) sweep(now int64) {
	for _, i := range a.idx {
		c := &a.conns[i]
		switch {
		case c.closedAt != 0 && c.closedAt+int64(a.cfg.CloseDelay) <= now:
			a.finish(i, a.closedStatus(c))
		case c.active+int64(a.cfg.Idle) <= now:
			a.finish(i, pdu.TCPIdle)
		}
	}
}

func (a *Analysis) closedStatus(c *conn) uint8 {
	if c.s[0].rst || c.s[1].rst {
		return pdu.TCPRst
	}
	return pdu.TCPFin
}

// Advance reports the connections that ended, and those open at the end
// of the intervals that ended, by now.
func (a *Analysis) Advance(now int64) {
	if a.nextReport != 0 && now >= a.nextReport {
		a.report(now)
	}
	if now >= a.nextSweep {
		a.sweep(now)
		a.nextSweep = now + int64(time.Second)
	}
}

// Close reports every connection still followed (status end) and the
// closed ones.
func (a *Analysis) Close() {
	for _, i := range a.idx {
		c := &a.conns[i]
		st := pdu.TCPEnd
		if c.closedAt != 0 {
			st = a.closedStatus(c)
		}
		a.finish(i, st)
	}
}

// finish sends the final record of connection i and forgets it.
func (a *Analysis) finish(i int32, status uint8) {
	c := &a.conns[i]
	a.send(c, status, a.startOf(c.last))
	delete(a.idx, c.key)
	a.free = append(a.free, i)
}

func (a *Analysis) send(c *conn, status uint8, report int64) {
	r := &a.scratch
	oa, ob := c.key.a, c.key.b
	op, rp := c.key.ap, c.key.bp
	if !c.origA {
		oa, ob, op, rp = ob, oa, rp, op
	}
	*r = pdu.TCPConn{Flow: c.flow, Report: report, Conn: c.id, First: c.first, Last: c.last,
		Status: status, State: state(c), Orig: endpoint(&oa, op, c), Resp: endpoint(&ob, rp, c),
		O: c.s[0].pdu(), R: c.s[1].pdu(), History: c.hist[:c.nhist]}
	a.out.TCPConn(r)
}

func (s *side) pdu() pdu.TCPSide {
	return pdu.TCPSide{Packets: s.pkts, Bytes: s.hi, Retrans: uint64(s.retrans), OutOfOrder: uint64(s.ooo), ZeroWindow: uint64(s.zw)}
}

// endpoint makes an address of the connection's family: IPv4 addresses
// are in the first 4 bytes, the rest zero (sieve.Record).
func endpoint(b *[16]byte, port uint16, c *conn) netip.AddrPort {
	if c.v4() {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(*b), port)
}

// v4 tells an IPv4 connection: both addresses hold 4 bytes only. An IPv6
// connection between two addresses whose last 12 bytes are zero is not
// one real traffic has.
func (c *conn) v4() bool {
	var zero [12]byte
	return [12]byte(c.key.a[4:]) == zero && [12]byte(c.key.b[4:]) == zero
}

// state is Zeek's conn_state of c (base/protocols/conn/main.zeek).
func state(c *conn) uint8 {
	o, r := &c.s[0], &c.s[1]
	oInactive := o.state == stInactive || o.state == stPartial
	rInactive := r.state == stInactive || r.state == stPartial
	code := func(n string) uint8 { return pdu.TCPStateCode(n) }
	switch {
	case r.state == stReset:
		switch {
		case o.state == stSynSent || o.state == stSynAckSent || (o.state == stReset && o.hi == 0 && r.hi == 0):
			return code("REJ")
		case oInactive:
			return code("RSTRH")
		}
		return code("RSTR")
	case o.state == stReset:
		if rInactive {
			if rstOS0(c.hist[:c.nhist]) {
				return code("RSTOS0")
			}
			return code("OTH")
		}
		return code("RSTO")
	case r.state == stClosed && o.state == stClosed:
		return code("SF")
	case o.state == stClosed:
		if rInactive {
			return code("SH")
		}
		return code("S2")
	case r.state == stClosed:
		if oInactive {
			return code("SHR")
		}
		return code("S3")
	case o.state == stSynSent && r.state == stInactive:
		return code("S0")
	case o.state == stEstablished && r.state == stEstablished:
		return code("S1")
	}
	return code("OTH")
}

// rstOS0 matches Zeek's /\^?S[^HAFGIQ]*R.*/ on the history.
func rstOS0(h []byte) bool {
	if len(h) > 0 && h[0] == '^' {
		h = h[1:]
	}
	if len(h) == 0 || h[0] != 'S' {
		return false
	}
	for _, b := range h[1:] {
		switch b {
		case 'R':
			return true
		case 'H', 'A', 'F', 'G', 'I', 'Q':
			return false
		}
	}
	return false
}
