// Package ftp is the protocol analysis of FTP sessions seen at one probe
// interface (reference §3.9): the control connection's commands and
// replies are followed (USER, PORT/EPRT, PASV/EPSV, the transfer
// commands and their replies), each data connection is tied to its
// session by the port announced on the control connection, and every
// listing (LIST, NLST, MLSD) and file transfer (RETR, STOR, STOU, APPE)
// becomes one pdu.FTPTransfer record: user, command, file name, bytes on
// the data connection, times of the command, of the data and of the
// final reply, the reply code, the data connection's endpoints and
// whether it was passive. It plugs into the analyser stage
// (analyse.Analysis); the collector writes the ftp_transfers spool type
// (docs/spool.md).
//
// The sieve (sieve/ftp.go) hands on the control connection's payload
// with each segment, and keeps the packets of the data connections it
// announces in the control connection's classes (sieve.FlagFTPData), also
// when their ports fall outside every class's filter. Here the segments of
// each direction are put back in sequence order (a retransmission is read
// once; after a gap the text resumes at the next line) and cut into lines.
//
// The bytes of a transfer are the data connection's payload by sequence
// numbers (highest end − initial sequence number, both directions: one of
// them carries nothing), so a retransmission is counted once; a FIN's
// sequence number counts too, so a class keeping only the SYN, FIN and RST
// of data connections (ftpData="flags") still has the bytes (not the data
// times: those of the command then). The record
// leaves with the final reply (2xx, 4xx, 5xx) to the transfer command, or
// when the session ends first (reply 0).
//
// Memory is bounded by MaxSessions (the least recently active of a few
// sampled sessions is dropped, its pending transfer sent) and by the data
// connections, at most two per session.
package ftp

import (
	"bytes"
	"fmt"
	"math/bits"
	"net/netip"
	"time"

	"github.com/tmon-project/tmon/conf"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/sieve"
)

// Output receives the transfer records.
type Output interface {
	FTPTransfer(x *pdu.FTPTransfer)
}

const lineMax = 512 // longest control line kept (longer ones are cut)

// Config tunes an Analysis; zero fields take the defaults, those of
// <analyses ftpIdle ftpMaxSessions> (conf.DefaultAnalyses).
type Config struct {
	Interval    time.Duration
	Idle        time.Duration
	MaxSessions int
}

// connKey is a TCP connection in canonical order (smaller endpoint first).
type connKey struct {
	a, b   [16]byte
	ap, bp uint16
	iface  uint8
	class  uint8
}

func keyOf(rec *sieve.Record, class int) (connKey, bool) {
	k := connKey{iface: rec.Iface, class: uint8(class)}
	if less(&rec.Src, rec.SrcPort, &rec.Dst, rec.DstPort) {
		k.a, k.ap, k.b, k.bp = rec.Src, rec.SrcPort, rec.Dst, rec.DstPort
		return k, true
	}
	k.a, k.ap, k.b, k.bp = rec.Dst, rec.DstPort, rec.Src, rec.SrcPort
	return k, false
}

func less(x *[16]byte, xp uint16, y *[16]byte, yp uint16) bool {
	if c := bytes.Compare(x[:], y[:]); c != 0 {
		return c < 0
	}
	return xp <= yp
}

// expKey is a data connection announced: listen:port, from peer.
type expKey struct {
	listen, peer [16]byte
	port         uint16
	iface        uint8
	class        uint8
}

type expect struct {
	sess    int32
	gen     uint64
	passive bool
}

// stream is one direction of the control connection, cut into lines.
type stream struct {
	line   [lineMax]byte
	n      int
	next   uint32 // sequence number of the next byte expected
	synced bool
	skip   bool // after a gap: drop the text up to the next line end
}

// seqCount counts one direction's payload bytes by sequence numbers.
type seqCount struct {
	base uint32
	hi   uint64
	seen bool
}

func (s *seqCount) add(seq uint32, syn bool, pay uint64) {
	if syn {
		if !s.seen {
			s.base, s.seen = seq+1, true
		}
		return
	}
	if pay == 0 {
		return
	}
	if !s.seen {
		s.base, s.seen = seq, true
	}
	lo := int64(s.hi) + int64(int32(seq-(s.base+uint32(s.hi))))
	if end := lo + int64(pay); end > int64(s.hi) {
		s.hi = uint64(end)
	}
}

// fin counts up to a FIN's sequence number (seq + payload: where the
// FIN sits): the bytes before it were sent, also those the probe did not
// see (a class keeping only SYN, FIN and RST, ftpData="flags").
func (s *seqCount) fin(pos uint32) {
	if !s.seen {
		return
	}
	if end := int64(s.hi) + int64(int32(pos-(s.base+uint32(s.hi)))); end > int64(s.hi) {
		s.hi = uint64(end)
	}
}

type dataConn struct {
	key         connKey
	sess        int32
	gen         uint64
	passive     bool
	origA       bool // the originator (first packet's sender, or the SYN's) is key.a
	c           [2]seqCount
	first, last int64
	active      int64
}

type session struct {
	key     connKey
	gen     uint64
	flow    uint32
	clientA bool // the client (the side not on port 21) is key.a
	s       [2]stream
	user    [pdu.MaxFTPUser]byte
	userN   int
	cmd     [pdu.MaxFTPCommand]byte
	cmdN    int
	arg     [pdu.MaxFTPArg]byte
	argN    int
	cmdTS   int64
	xfer    bool  // cmd is a transfer waiting for its final reply
	data    int32 // the data connection of the transfer, -1
	active  int64
	fin     [2]bool
	exp     expKey // the announcement waiting for its data connection
	hasExp  bool
}

// Analysis follows the FTP sessions of one probe.
type Analysis struct {
	cfg       Config
	iv        int64
	out       Output
	sess      map[connKey]int32
	ss        []session
	freeS     []int32
	data      map[connKey]int32
	dd        []dataConn
	freeD     []int32
	exp       map[expKey]expect
	gen       uint64
	nextSweep int64
	scratch   pdu.FTPTransfer
	// Stats
	Sessions, Transfers, Evicted, Unmatched uint64
}

var _ analyse.Analysis = (*Analysis)(nil)

// New returns the analysis sending to out.
func New(cfg Config, out Output) *Analysis {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	d := conf.DefaultAnalyses()
	if cfg.Idle <= 0 {
		cfg.Idle = d.FTPIdle
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = d.FTPMaxSessions
	}
	return &Analysis{cfg: cfg, iv: int64(cfg.Interval), out: out, sess: make(map[connKey]int32),
		data: make(map[connKey]int32), exp: make(map[expKey]expect)}
}

// Packet follows the control and data connections of each of rec's
// classes.
func (a *Analysis) Packet(rec *sieve.Record, ids *analyse.FlowIDs) {
	if rec.TxnKind != sieve.TxnTCP || rec.Flags&(sieve.FlagICMPError|sieve.FlagNoL4) != 0 {
		return
	}
	control := rec.SrcPort == sieve.PortFTP || rec.DstPort == sieve.PortFTP
	if !control && rec.Flags&sieve.FlagFTPData == 0 {
		return
	}
	for m := rec.Classes; m != 0; m &= m - 1 {
		ci := bits.TrailingZeros64(m)
		if control {
			a.control(rec, ci, ids)
		} else {
			a.dataPacket(rec, ci)
		}
	}
}

const (
	fFIN = 0x01
	fSYN = 0x02
	fRST = 0x04
)

// finish sends the transfer of session i with its final reply code.
func (a *Analysis) finish(i int32, code uint16, ts int64) {
	ss := &a.ss[i]
	ss.xfer = false
	a.Transfers++
	cl, sv := endpoint(&ss.key.a, ss.key.ap, &ss.key), endpoint(&ss.key.b, ss.key.bp, &ss.key)
	if !ss.clientA {
		cl, sv = sv, cl
	}
	x := &a.scratch
	*x = pdu.FTPTransfer{Flow: ss.flow, Report: a.startOf(ts), Start: ss.cmdTS, End: ts, Reply: code,
		Client: cl, Server: sv, Command: ss.cmd[:ss.cmdN], User: ss.user[:ss.userN], Arg: ss.arg[:ss.argN]}
	if j := ss.data; j >= 0 && a.dd[j].gen == ss.gen {
		dc := &a.dd[j]
		x.Flags |= pdu.FTPData
		if dc.passive {
			x.Flags |= pdu.FTPPassive
		}
		x.Bytes = dc.c[0].hi + dc.c[1].hi
		x.DataFirst, x.DataLast = dc.first, dc.last
		if dc.first == 0 {
			x.DataFirst, x.DataLast = ss.cmdTS, ss.cmdTS
		}
		o, r := endpoint(&dc.key.a, dc.key.ap, &dc.key), endpoint(&dc.key.b, dc.key.bp, &dc.key)
		if !dc.origA {
			o, r = r, o
		}
		x.DataOrig, x.DataResp = o, r
		a.dropData(j)
		ss.data = -1
	}
	a.out.FTPTransfer(x)
}

// end closes session i (FIN both ways, RST, idle, eviction, close).
func (a *Analysis) end(i int32) {
	ss := &a.ss[i]
	if ss.xfer {
		a.finish(i, 0, ss.active)
		ss = &a.ss[i]
	}
	if j := ss.data; j >= 0 && a.dd[j].gen == ss.gen {
		a.dropData(j)
	}
	if ss.hasExp {
		delete(a.exp, ss.exp)
	}
	delete(a.sess, ss.key)
	ss.gen = 0
	a.freeS = append(a.freeS, i)
}

func (a *Analysis) evict() {
	best, n := int32(-1), 0
	for _, i := range a.sess {
		if best < 0 || a.ss[i].active < a.ss[best].active {
			best = i
		}
		if n++; n == 8 {
			break
		}
	}
	a.Evicted++
	a.end(best)
}

func (a *Analysis) startOf(ts int64) int64 {
	r := ts % a.iv
	if r < 0 {
		r += a.iv
	}
	return ts - r
}

// Advance ends the sessions, forgets the data connections and the
// announcements idle since before now − Idle.
func (a *Analysis) Advance(now int64) {
	if now < a.nextSweep {
		return
	}
	a.nextSweep = now + int64(time.Second)
	idle := now - int64(a.cfg.Idle)
	for _, i := range a.sess {
		if a.ss[i].active < idle {
			a.end(i)
		}
	}
}

// Close sends the transfers still waiting for their reply.
func (a *Analysis) Close() {
	for _, i := range a.sess {
		a.end(i)
	}
}

// endpoint makes an address of the connection's family (IPv4 addresses
// hold their first 4 bytes only, sieve.Record).
func endpoint(b *[16]byte, port uint16, k *connKey) netip.AddrPort {
	var zero [12]byte
	if [12]byte(k.a[4:]) == zero && [12]byte(k.b[4:]) == zero {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(*b), port)
}

// Summary says what the memory bound cost (the probe's analysis.bound
// event), "" when nothing.
func (a *Analysis) Summary() string {
	if a.Evicted == 0 {
		return ""
	}
	return fmt.Sprintf("ftp sessions=%d evicted (table full, %d)=%d transfers=%d", a.Sessions, a.cfg.MaxSessions, a.Evicted, a.Transfers)
}

// Len returns the sessions followed (for memory tests).
func (a *Analysis) Len() int { return len(a.sess) }

// Config returns the analysis's settings, defaults filled in.
func (a *Analysis) Config() Config { return a.cfg }
