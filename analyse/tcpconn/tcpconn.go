// Package tcpconn is the protocol analysis that follows TCP connections
// seen at one probe interface (reference §3.8): start, end (FIN both ways,
// RST, idle timeout), duration, packets and payload bytes each way (bytes
// from the sequence numbers, wrap handled), retransmissions, out-of-order
// segments and zero windows, Zeek's conn_state and history letters. It
// plugs into the analyser stage (analyse.Analysis) and sends pdu.TCPConn
// records: one per connection when it ends, and one for every connection
// still open at the end of each interval in which it had packets
// (cumulative, with the same connection number); the collector writes the tcp_conns spool type
// (docs/spool.md).
//
// An open connection is reported at the end of every interval in which
// it had packets; an interval without any changes nothing.
//
// A connection is followed per class that wants its packets, on one
// interface; both directions must be selected by the class for the
// figures of both sides. Its flow instance is that of its first packet.
//
// Definitions (per side, from the sequence numbers of the segments that
// carry payload; "seen" means at this probe):
//
//   - duration: from the first packet to the one that closed the
//     connection (the second side's FIN, or the first RST), or to the last
//     packet while it is not closed; packets after the close (the last
//     ACKs) are counted but do not extend it, as in Zeek's conn.log;
//   - bytes: the highest sequence number + payload length seen (or the
//     sequence number of a FIN), minus the initial sequence number + 1 (of
//     the SYN; without a SYN, the first segment's sequence number): what
//     the side sent, once, whatever was retransmitted; SYN and FIN are not
//     counted;
//   - retransmission: a segment whose payload was all seen before;
//   - out of order: a segment whose payload was not seen before, below
//     the highest sequence number seen (it fills a gap: reordered, or sent
//     again after a loss before the probe). Two gaps per side are
//     remembered; data filling an older one counts as retransmitted;
//   - zero window: a segment that is not a RST advertising window 0.
//
// Memory is bounded by MaxConns: when the table is full, the least
// recently active of a few sampled connections is reported (status
// evicted) and forgotten. Connections idle for Idle are reported idle;
// connections closed (FIN both ways, or RST) are reported after
// CloseDelay, so that the last ACKs count.
package tcpconn

import (
	"fmt"
	"github.com/tmon-project/tmon/conf"
	"math/bits"
	"net/netip"
	"time"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/sieve"
)

// Output receives the connection records.
type Output interface {
	TCPConn(c *pdu.TCPConn)
}

// Config tunes an Analysis; zero fields take the defaults, those of
// <analyses tcpIdle tcpCloseDelay tcpMaxConns> (conf.DefaultAnalyses:
// Zeek's tcp_inactivity_timeout and tcp_close_delay).
type Config struct {
	Interval   time.Duration // the configuration's interval
	Idle       time.Duration
	CloseDelay time.Duration
	MaxConns   int
}

// TCP flags.
const (
	fFIN = 0x01
	fSYN = 0x02
	fRST = 0x04
	fACK = 0x10
)

// Endpoint states (Zeek's TCP_* endpoint states, for conn_state).
const (
	stInactive uint8 = iota
	stSynSent
	stSynAckSent
	stPartial
	stEstablished
	stClosed
	stReset
)

// connKey is a connection in canonical order: the smaller (address, port)
// first, so both directions find it.
type connKey struct {
	a, b   [16]byte
	ap, bp uint16
	iface  uint8
	class  uint8
}

type hole struct{ lo, hi uint64 }

// side is one endpoint's state; offsets are relative to base.
type side struct {
	pkts     uint64
	hi       uint64 // end of the highest payload seen
	holes    [2]hole
	retrans  uint32
	ooo      uint32
	zw       uint32
	base     uint32 // sequence number of the first payload byte
	seen     bool   // base is known
	state    uint8
	letters  uint16 // history letters already written (bit per letter)
	fin, rst bool
}

type conn struct {
	key      connKey
	flow     uint32
	id       uint64
	first    int64
	last     int64 // the last packet before the close, or the last packet
	active   int64 // the last packet (for the idle timeout and eviction)
	closedAt int64 // 0 while open
	origA    bool  // the originator is key.a
	changed  bool  // packets since the last report
	s        [2]side
	hist     [pdu.MaxTCPHistory]byte
	nhist    uint8
}

// Analysis follows the TCP connections of one probe.
type Analysis struct {
	cfg        Config
	iv         int64
	out        Output
	idx        map[connKey]int32
	conns      []conn
	free       []int32
	nextID     uint64
	nextReport int64 // end of the interval whose open connections are reported next; 0 before the first packet
	nextSweep  int64
	scratch    pdu.TCPConn
	// Stats
	Conns, Evicted uint64
}

var _ analyse.Analysis = (*Analysis)(nil)

// New returns the analysis sending to out.
func New(cfg Config, out Output) *Analysis {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	d := conf.DefaultAnalyses()
	if cfg.Idle <= 0 {
		cfg.Idle = d.TCPIdle
	}
	if cfg.CloseDelay <= 0 {
		cfg.CloseDelay = d.TCPCloseDelay
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = d.TCPMaxConns
	}
	return &Analysis{cfg: cfg, iv: int64(cfg.Interval), out: out, idx: make(map[connKey]int32)}
}

func (a *Analysis) startOf(ts int64) int64 {
	r := ts % a.iv
	if r < 0 {
		r += a.iv
	}
	return ts - r
}

// Packet follows a TCP segment in the connection of each of its classes.
func (a *Analysis) Packet(rec *sieve.Record, ids *analyse.FlowIDs) {
	if rec.TxnKind != sieve.TxnTCP || rec.Flags&(sieve.FlagICMPError|sieve.FlagNoL4) != 0 {
		return
	}
	if a.nextReport == 0 {
		a.nextReport = a.startOf(rec.TS) + a.iv
	}
	if rec.TS >= a.nextReport {
		a.report(rec.TS)
	}
	k := connKey{iface: rec.Iface}
	dirA := true // the packet is sent by key.a
	if c := cmpEnd(&rec.Src, rec.SrcPort, &rec.Dst, rec.DstPort); c <= 0 {
		k.a, k.ap, k.b, k.bp = rec.Src, rec.SrcPort, rec.Dst, rec.DstPort
	} else {
		k.a, k.ap, k.b, k.bp = rec.Dst, rec.DstPort, rec.Src, rec.SrcPort
		dirA = false
	}
	for m := rec.Classes; m != 0; m &= m - 1 {
		ci := bits.TrailingZeros64(m)
		k.class = uint8(ci)
		i, ok := a.idx[k]
		if ok && a.conns[i].closedAt != 0 && rec.TCPFlags&(fSYN|fACK|fRST) == fSYN {
			// A new connection on the ports of a closed one.
			a.finish(i, a.closedStatus(&a.conns[i]))
			ok = false
		}
		if !ok {
			i = a.open(k, rec, dirA, ids.Of(ci))
		}
		a.segment(&a.conns[i], rec, dirA)
	}
}

// cmpEnd orders two endpoints (address, then port).
func cmpEnd(x *[16]byte, xp uint16, y *[16]byte, yp uint16) int {
	for i := range x {
		if x[i] != y[i] {
			if x[i] < y[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case xp < yp:
		return -1
	case xp > yp:
		return 1
	}
	return 0
}

// open starts following a connection at rec.
func (a *Analysis) open(k connKey, rec *sieve.Record, dirA bool, flow uint32) int32 {
	for len(a.idx) >= a.cfg.MaxConns {
		a.evict()
	}
	var i int32
	if n := len(a.free); n > 0 {
		i = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		a.conns = append(a.conns, conn{})
		i = int32(len(a.conns) - 1)
	}
	c := &a.conns[i]
	*c = conn{key: k, flow: flow, id: a.nextID, first: rec.TS, last: rec.TS, active: rec.TS, origA: dirA}
	a.nextID++
	a.Conns++
	if rec.TCPFlags&(fSYN|fACK|fRST) == fSYN|fACK {
		// First seen the SYN/ACK: the originator is the other side
		// (Zeek's '^').
		c.origA = !dirA
		c.hist[0] = '^'
		c.nhist = 1
	}
	a.idx[k] = i
	return i
}

// evict reports and forgets the least recently active of a few
// connections (the map's iteration starts at a random place).
func (a *Analysis) evict() {
	best, n := int32(-1), 0
	for _, i := range a.idx {
		if best < 0 || a.conns[i].active < a.conns[best].active {
			best = i
		}
		if n++; n == 8 {
			break
		}
	}
	a.Evicted++
	a.finish(best, pdu.TCPEvicted)
}

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

// Summary says what the memory bound cost (the probe's analysis.bound
// event), "" when nothing.
func (a *Analysis) Summary() string {
	if a.Evicted == 0 {
		return ""
	}
	return fmt.Sprintf("tcp connections=%d evicted (table full, %d)=%d", a.Conns, a.cfg.MaxConns, a.Evicted)
}

// Len returns the connections followed (for memory tests).
func (a *Analysis) Len() int { return len(a.idx) }

// Config returns the analysis's settings, defaults filled in.
func (a *Analysis) Config() Config { return a.cfg }
