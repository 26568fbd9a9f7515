package ftp

import (
	"bytes"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/sieve"
)

// The control connection: its payload reassembled in order into lines,
// each command and reply moving the session on.

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
