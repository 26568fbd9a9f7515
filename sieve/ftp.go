package sieve

// FTP (reference §3.9): the control connection's payload is read here,
// where the bytes are, for two things.
//
//   - Its segments are handed on whole (FlagPayload, Payload) to the FTP
//     analysis (analyse/ftp), which follows commands and replies: the ring
//     carries fixed-size records, so the bytes travel beside them, in a
//     ring of payloads of their own (Run).
//   - The data connections it announces — PORT and EPRT (active), 227 and
//     229 replies to PASV and EPSV (passive, random ports) — are expected:
//     their packets are kept in the classes of the control connection
//     (FlagFTPData) even when no class's filter wants them, since a filter
//     cannot name ports chosen at run time. The expectation is learned on
//     the sieve's goroutine before the next packet is read, so the data
//     connection's first SYN is never missed. A class with
//     ftpData="flags" keeps only their SYN, FIN and RST packets.
//
// An expected data connection runs between the two hosts of its control
// connection as this probe sees them (a NAT on either side changes the
// addresses in the commands, not those on the wire), with the announced
// port on the listening side: the client for PORT/EPRT, the server for
// 227/229. Transfers between two servers (FXP) are not followed.
//
// The table of expectations is a fixed array (maxFTPExpect): a flood of
// PORT commands replaces the oldest; an expectation lasts as long as
// the TCP analysis keeps an idle connection (<analyses tcpIdle>) after its
// last packet. A command or reply cut over two segments is not
// seen here (it is by the analysis, which joins the segments).

import (
	"bytes"

	"github.com/tmon-project/tmon/ring"
)

// PayloadMax is the most payload bytes of one segment handed on.
const PayloadMax = 1024

// Payload is the payload of a record with FlagPayload, handed on beside the
// record (Run).
type Payload struct {
	N uint16
	B [PayloadMax]byte
}

// Bytes returns the payload.
func (p *Payload) Bytes() []byte { return p.B[:p.N] }

// PortFTP is the FTP control port.
const PortFTP = 21

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04

	maxFTPExpect = 256
)

type ftpExpect struct {
	listen, peer [16]byte
	port         uint16
	iface        uint8
	classes      uint64
	until        int64
}

type ftpTable struct {
	e    [maxFTPExpect]ftpExpect
	n    int
	idle int64 // ns an expectation lasts after its last packet (conf.Analyses.TCPIdle)
	next int64 // when to look for expired entries
	// Stats
	learned, replaced uint64
}

// expect adds (or renews) the expectation of a data connection from peer
// to listen:port.
func (t *ftpTable) expect(listen, peer *[16]byte, port uint16, iface uint8, classes uint64, ts int64) {
	t.learned++
	for i := range t.e[:t.n] {
		e := &t.e[i]
		if e.port == port && e.iface == iface && e.listen == *listen && e.peer == *peer {
			e.classes |= classes
			e.until = ts + t.idle
			return
		}
	}
	i := t.n
	if t.n == len(t.e) {
		// Full: the one that expires first goes.
		i = 0
		for j := range t.e {
			if t.e[j].until < t.e[i].until {
				i = j
			}
		}
		t.replaced++
	} else {
		t.n++
	}
	t.e[i] = ftpExpect{listen: *listen, peer: *peer, port: port, iface: iface, classes: classes, until: ts + t.idle}
}

// match returns the classes of the control connection that announced
// rec's connection (0 when none did) and renews its expectation.
func (t *ftpTable) match(rec *Record) uint64 {
	if rec.TS >= t.next {
		t.expire(rec.TS)
	}
	for i := range t.e[:t.n] {
		e := &t.e[i]
		if e.iface != rec.Iface {
			continue
		}
		if (e.port == rec.DstPort && e.listen == rec.Dst && e.peer == rec.Src) ||
			(e.port == rec.SrcPort && e.listen == rec.Src && e.peer == rec.Dst) {
			e.until = rec.TS + t.idle
			return e.classes
		}
	}
	return 0
}

// ftpData adds to rec the classes of the control connection that
// announced its connection, if one did.
func (s *Sieve) ftpData(rec *Record) {
	c := s.ftpx.match(rec)
	if rec.TCPFlags&(tcpSYN|tcpFIN|tcpRST) == 0 {
		c &^= s.ftpFlags
	}
	if c != 0 {
		rec.Classes |= c
		rec.Flags |= FlagFTPData
	}
}

// Payload returns the payload of the last record Packet returned with
// FlagPayload (valid until the next call of Packet).
func (s *Sieve) Payload() []byte { return s.pay[:s.payN] }

// SetPayloads makes Run hand the payload of every record with FlagPayload
// on to r, just before the record; without it Run clears the flag. Call it
// before Run.
func (s *Sieve) SetPayloads(r *ring.Ring[Payload]) { s.payloads = r }

// FTPStats are the counters of FTP data connections expected.
type FTPStats struct {
	Learned  uint64 // data connections announced (PORT, EPRT, 227, 229)
	Replaced uint64 // expectations dropped early: the table was full
	Dropped  uint64 // payloads not handed on: the payload ring was full (Drop policy)
}

// FTP returns the counters (call it like Stats).
func (s *Sieve) FTP() FTPStats {
	return FTPStats{Learned: s.ftpx.learned, Replaced: s.ftpx.replaced, Dropped: s.payDrops}
}

func (t *ftpTable) expire(now int64) {
	t.next = now + 1e9
	for i := 0; i < t.n; {
		if t.e[i].until <= now {
			t.n--
			t.e[i] = t.e[t.n]
			continue
		}
		i++
	}
}

// ftp handles a TCP segment of a wanted record on the control port: its
// payload is kept for Run, the data connections it announces expected.
func (s *Sieve) ftp(data []byte, l *layout, rec *Record) {
	off := l.l4 + int(data[l.l4+12]>>4)*4
	if off >= l.end {
		return
	}
	p := data[off:l.end]
	s.payN = copy(s.pay[:], p)
	rec.Flags |= FlagPayload
	fromServer := rec.SrcPort == PortFTP
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		port, ok := FTPDataPort(line, fromServer)
		if !ok {
			continue
		}
		// The side that announces the port listens on it: the client
		// (PORT, EPRT) or the server (227, 229).
		s.ftpx.expect(&rec.Src, &rec.Dst, port, rec.Iface, rec.Classes, rec.TS)
	}
}

// FTPDataPort reads the data port a control line announces: from the
// client PORT h1,h2,h3,h4,p1,p2 or EPRT |af|addr|port| (RFC 959, 2428);
// from the server the 227 reply's (h1,h2,h3,h4,p1,p2) or the 229 reply's
// (|||port|). The line may end in CR; case is ignored in commands.
func FTPDataPort(line []byte, fromServer bool) (uint16, bool) {
	line = bytes.TrimRight(line, "\r")
	if fromServer {
		switch {
		case bytes.HasPrefix(line, []byte("227")):
			return hostPort(line[3:])
		case bytes.HasPrefix(line, []byte("229")):
			i := bytes.IndexByte(line, '(')
			if i < 0 {
				return 0, false
			}
			return eprtPort(line[i+1:])
		}
		return 0, false
	}
	if len(line) < 5 || line[4] != ' ' {
		return 0, false
	}
	switch {
	case bytes.EqualFold(line[:4], []byte("PORT")):
		return hostPort(line[5:])
	case bytes.EqualFold(line[:4], []byte("EPRT")):
		return eprtPort(bytes.TrimLeft(line[5:], " "))
	}
	return 0, false
}

// hostPort reads the first run of six comma-separated numbers
// h1,h2,h3,h4,p1,p2 and returns p1·256+p2.
func hostPort(b []byte) (uint16, bool) {
	for i := 0; i < len(b); i++ {
		if b[i] < '0' || b[i] > '9' {
			continue
		}
		var v [6]int
		k, j := 0, i
		for ; j < len(b) && k < 6; k++ {
			n, d := 0, 0
			for ; j < len(b) && b[j] >= '0' && b[j] <= '9' && d < 4; j++ {
				n = n*10 + int(b[j]-'0')
				d++
			}
			if d == 0 || n > 255 {
				return 0, false
			}
			v[k] = n
			if k < 5 {
				if j >= len(b) || b[j] != ',' {
					return 0, false
				}
				j++
			}
		}
		if k != 6 {
			return 0, false
		}
		port := v[4]<<8 | v[5]
		return uint16(port), port != 0
	}
	return 0, false
}

// eprtPort reads |af|addr|port| (the delimiter is the first byte, any of
// 33–126) and returns port.
func eprtPort(b []byte) (uint16, bool) {
	if len(b) < 4 || b[0] < 33 || b[0] > 126 {
		return 0, false
	}
	d := b[0]
	parts := 0
	start := 1
	for i := 1; i < len(b); i++ {
		if b[i] != d {
			continue
		}
		parts++
		if parts == 3 {
			n := 0
			f := b[start:i]
			if len(f) == 0 || len(f) > 5 {
				return 0, false
			}
			for _, c := range f {
				if c < '0' || c > '9' {
					return 0, false
				}
				n = n*10 + int(c-'0')
			}
			if n == 0 || n > 65535 {
				return 0, false
			}
			return uint16(n), true
		}
		start = i + 1
	}
	return 0, false
}
