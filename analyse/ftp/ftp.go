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
	"github.com/tmon-project/tmon/conf"
	"math/bits"
	"net/netip"
	"time"

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

func (a *Analysis) control(rec *sieve.Record, ci int, ids *analyse.FlowIDs) {
	k, srcA := keyOf(rec, ci)
	i, ok := a.sess[k]
	if !ok {
		if rec.TCPFlags&fRST != 0 {
			return
		}
		i = a.open(k, rec, srcA, ids.Of(ci))
	}
	ss := &a.ss[i]
	ss.active = rec.TS
	fromClient := srcA == ss.clientA
	d := 1
	if fromClient {
		d = 0
	}
	st := &ss.s[d]
	seq := uint32(rec.Txn >> 32)
	if rec.TCPFlags&fSYN != 0 {
		st.next, st.synced, st.n, st.skip = seq+1, true, 0, false
	} else if rec.TCPPayload > 0 {
		a.feed(i, d, seq, ids.Payload(), int(rec.TCPPayload), rec.TS)
	}
	if rec.TCPFlags&(fFIN|fRST) != 0 {
		ss = &a.ss[i]
		ss.fin[d] = true
		if rec.TCPFlags&fRST != 0 || ss.fin[1-d] {
			a.end(i)
		}
	}
}

func (a *Analysis) open(k connKey, rec *sieve.Record, srcA bool, flow uint32) int32 {
	for len(a.sess) >= a.cfg.MaxSessions {
		a.evict()
	}
	var i int32
	if n := len(a.freeS); n > 0 {
		i = a.freeS[n-1]
		a.freeS = a.freeS[:n-1]
	} else {
		a.ss = append(a.ss, session{})
		i = int32(len(a.ss) - 1)
	}
	a.gen++
	ss := &a.ss[i]
	// The client is the side not on the control port.
	clientA := srcA == (rec.DstPort == sieve.PortFTP)
	if rec.SrcPort == sieve.PortFTP && rec.DstPort == sieve.PortFTP {
		clientA = srcA
	}
	ss.key, ss.gen, ss.flow, ss.clientA = k, a.gen, flow, clientA
	ss.s[0], ss.s[1] = stream{}, stream{}
	ss.userN, ss.cmdN, ss.argN, ss.xfer, ss.data, ss.fin, ss.hasExp = 0, 0, 0, false, -1, [2]bool{}, false
	a.sess[k] = i
	a.Sessions++
	return i
}

// feed puts a segment of direction d in sequence and handles every line
// it completes. p is the payload handed on (it may be cut short of
// length, or missing).
func (a *Analysis) feed(i int32, d int, seq uint32, p []byte, length int, ts int64) {
	st := &a.ss[i].s[d]
	if !st.synced {
		// Joined mid-stream: from the next line on.
		st.next, st.synced, st.skip = seq, true, true
	}
	off := int32(seq - st.next)
	switch {
	case off > 0:
		// A gap (lost before the probe, or not yet here): the line in
		// progress is lost.
		st.n, st.skip, st.next = 0, true, seq
	case off < 0:
		if int(-off) >= length {
			return // a retransmission: all seen
		}
		if int(-off) >= len(p) {
			p = nil
		} else {
			p = p[-off:]
		}
		length += int(off)
	}
	for _, c := range p {
		switch {
		case c == '\n':
			if !st.skip {
				a.line(i, d, bytes.TrimRight(st.line[:st.n], "\r"), ts)
				st = &a.ss[i].s[d]
			}
			st.n, st.skip = 0, false
		case st.n < len(st.line):
			st.line[st.n] = c
			st.n++
		}
	}
	if len(p) < length {
		// The payload was cut (longer than the sieve hands on) or not
		// handed on: what follows is a gap.
		st.n, st.skip = 0, true
	}
	st.next += uint32(length)
}

// line handles one command (d = 0) or reply line.
func (a *Analysis) line(i int32, d int, l []byte, ts int64) {
	ss := &a.ss[i]
	if d == 0 {
		verb, arg, _ := bytes.Cut(l, []byte(" "))
		if len(verb) == 0 || len(verb) > pdu.MaxFTPCommand {
			return
		}
		var up [pdu.MaxFTPCommand]byte
		n := copy(up[:], verb)
		for j := range n {
			if c := up[j]; c >= 'a' && c <= 'z' {
				up[j] = c - 'a' + 'A'
			}
		}
		v := up[:n]
		switch {
		case is(v, "USER"):
			ss.userN = copy(ss.user[:], arg)
		case is(v, "PORT"), is(v, "EPRT"):
			if port, ok := sieve.FTPDataPort(l, false); ok {
				a.expect(i, true, port)
			}
		case is(v, "RETR"), is(v, "STOR"), is(v, "STOU"), is(v, "APPE"), is(v, "LIST"), is(v, "NLST"), is(v, "MLSD"):
			if ss.xfer {
				a.finish(i, 0, ts) // no final reply to the one before
				ss = &a.ss[i]
			}
			ss.cmdN = copy(ss.cmd[:], v)
			ss.argN = copy(ss.arg[:], arg)
			ss.cmdTS, ss.xfer = ts, true
		}
		return
	}
	if len(l) < 4 || l[3] != ' ' || !digits(l[:3]) {
		return // a line of a multi-line reply, or not a reply
	}
	code := uint16(l[0]-'0')*100 + uint16(l[1]-'0')*10 + uint16(l[2]-'0')
	switch {
	case code == 227 || code == 229:
		if port, ok := sieve.FTPDataPort(l, true); ok {
			a.expect(i, false, port)
		}
	case code >= 200 && ss.xfer:
		a.finish(i, code, ts)
	}
}

// is compares without allocating.
func is(b []byte, s string) bool { return string(b) == s }

func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// expect notes a data connection announced by the client (active) or the
// server (passive) of session i: the announcing side listens.
func (a *Analysis) expect(i int32, active bool, port uint16) {
	ss := &a.ss[i]
	cl, sv := &ss.key.a, &ss.key.b
	if !ss.clientA {
		cl, sv = sv, cl
	}
	k := expKey{listen: *sv, peer: *cl, port: port, iface: ss.key.iface, class: ss.key.class}
	if active {
		k.listen, k.peer = *cl, *sv
	}
	// One announcement waits per session: a newer one replaces it.
	if ss.hasExp {
		delete(a.exp, ss.exp)
	}
	ss.exp, ss.hasExp = k, true
	a.exp[k] = expect{sess: i, gen: ss.gen, passive: !active}
}

// dataPacket follows a packet of an FTP data connection.
func (a *Analysis) dataPacket(rec *sieve.Record, ci int) {
	k, srcA := keyOf(rec, ci)
	j, ok := a.data[k]
	if !ok {
		e, found := a.exp[expKey{listen: rec.Dst, peer: rec.Src, port: rec.DstPort, iface: rec.Iface, class: uint8(ci)}]
		if !found {
			e, found = a.exp[expKey{listen: rec.Src, peer: rec.Dst, port: rec.SrcPort, iface: rec.Iface, class: uint8(ci)}]
		}
		if !found || a.ss[e.sess].gen != e.gen || rec.TCPFlags&fRST != 0 {
			a.Unmatched++
			return
		}
		j = a.openData(k, srcA, e)
	}
	dc := &a.dd[j]
	dc.active = rec.TS
	side := 0
	if srcA != dc.origA {
		side = 1
	}
	syn := rec.TCPFlags&fSYN != 0
	if syn && rec.TCPFlags&0x10 == 0 {
		dc.origA = srcA
		side = 0
	}
	pay := uint64(rec.TCPPayload)
	dc.c[side].add(uint32(rec.Txn>>32), syn, pay)
	if rec.TCPFlags&fFIN != 0 {
		dc.c[side].fin(uint32(rec.Txn>>32) + uint32(pay))
	}
	if pay > 0 {
		if dc.first == 0 {
			dc.first = rec.TS
		}
		dc.last = rec.TS
	}
}

func (a *Analysis) openData(k connKey, srcA bool, e expect) int32 {
	ss := &a.ss[e.sess]
	if old := ss.data; old >= 0 && a.dd[old].gen == ss.gen {
		a.dropData(old) // a newer data connection of the session: the old one is done
	}
	var j int32
	if n := len(a.freeD); n > 0 {
		j = a.freeD[n-1]
		a.freeD = a.freeD[:n-1]
	} else {
		a.dd = append(a.dd, dataConn{})
		j = int32(len(a.dd) - 1)
	}
	a.dd[j] = dataConn{key: k, sess: e.sess, gen: e.gen, passive: e.passive, origA: srcA}
	a.data[k] = j
	ss = &a.ss[e.sess]
	ss.data = j
	if ss.hasExp {
		delete(a.exp, ss.exp) // used
		ss.hasExp = false
	}
	return j
}

func (a *Analysis) dropData(j int32) {
	dc := &a.dd[j]
	if i, ok := a.data[dc.key]; ok && i == j {
		delete(a.data, dc.key)
	}
	dc.gen = 0
	a.freeD = append(a.freeD, j)
}

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
