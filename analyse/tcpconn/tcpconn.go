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
	"math/bits"
	"time"

	"github.com/tmon-project/tmon/conf"

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
