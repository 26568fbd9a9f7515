package pdu

import "net/netip"

// TCP connection record (docs/pdu.md, "TCP connections"): one connection
// of one flow instance at one interface (analyse/tcpconn), reported while
// open at the end of every interval and once when it ends.

// Status of a TCP connection record.
const (
	TCPOpen    uint8 = 1 // still open at the end of the reported interval
	TCPFin     uint8 = 2 // ended by FIN both ways (then a close delay without a new connection)
	TCPRst     uint8 = 3 // ended by a RST
	TCPIdle    uint8 = 4 // no packet for the idle timeout
	TCPEnd     uint8 = 5 // the capture ended
	TCPEvicted uint8 = 6 // forgotten early to bound memory
	tcpStatusMax
)

// TCPStatusName names a status for the spool.
func TCPStatusName(s uint8) string {
	switch s {
	case TCPOpen:
		return "open"
	case TCPFin:
		return "fin"
	case TCPRst:
		return "rst"
	case TCPIdle:
		return "idle"
	case TCPEnd:
		return "end"
	case TCPEvicted:
		return "evicted"
	}
	return "unknown"
}

// tcpStates are Zeek's conn_state codes (its conn.log), by State − 1.
var tcpStates = [...]string{"S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH"}

// TCPStateName names a conn_state code (1 … 13) for the spool.
func TCPStateName(s uint8) string {
	if s >= 1 && int(s) <= len(tcpStates) {
		return tcpStates[s-1]
	}
	return "unknown"
}

// TCPStateCode is the code of a conn_state name, 0 when unknown.
func TCPStateCode(name string) uint8 {
	for i, n := range tcpStates {
		if n == name {
			return uint8(i + 1)
		}
	}
	return 0
}

// TCPSide is what one endpoint of a connection sent.
type TCPSide struct {
	Packets    uint64 // every packet of the connection from this side
	Bytes      uint64 // payload bytes from the sequence numbers: highest end − initial sequence (SYN and FIN not counted)
	Retrans    uint64 // segments carrying only payload already seen
	OutOfOrder uint64 // segments carrying payload not seen before but below the highest already seen
	ZeroWindow uint64 // segments advertising a zero window (not RST)
}

// MaxTCPHistory bounds the history letters of a record.
const MaxTCPHistory = 32

// TCPConn is one TCP connection at one probe interface, cumulative since
// its first packet. The originator is the sender of the first SYN (or,
// without one, of the first packet seen).
type TCPConn struct {
	Flow        uint32 // FlowDef.ID of the connection's first packet
	Report      int64  // start of the interval reported (open: the interval that ended; else the interval of the last packet)
	Conn        uint64 // connection number within the probe session: its open records and its final one share it
	First, Last int64  // capture times of its first and last packets (ns)
	Status      uint8
	State       uint8 // conn_state code (TCPStateName)
	Orig, Resp  netip.AddrPort
	O, R        TCPSide
	History     []byte // Zeek's history letters (docs/spool.md), at most MaxTCPHistory bytes
}

// AddTCPConn appends a TCP connection record. It returns false, leaving
// the PDU unchanged, when the record does not fit or is invalid (History
// too long, addresses of different families or invalid). It does not
// allocate.
func (b *Builder) AddTCPConn(c *TCPConn) bool {
	if len(c.History) > MaxTCPHistory || !c.Orig.Addr().IsValid() || c.Orig.Addr().Is4() != c.Resp.Addr().Is4() {
		return false
	}
	var w recBuf
	w.uvarint(uint64(c.Flow))
	w.fixed64(c.Report)
	w.uvarint(c.Conn)
	w.fixed64(c.First)
	w.uvarint(uint64(c.Last - c.First))
	w.byte1(c.Status)
	w.byte1(c.State)
	w.addrPort(c.Orig)
	w.addrPort(c.Resp)
	for _, s := range [2]*TCPSide{&c.O, &c.R} {
		w.uvarint(s.Packets)
		w.uvarint(s.Bytes)
		w.uvarint(s.Retrans)
		w.uvarint(s.OutOfOrder)
		w.uvarint(s.ZeroWindow)
	}
	w.str(c.History)
	return b.addRecord(TypeTCPConn, &w)
}

// TCPConnReader decodes the body of a TCP connections PDU.
type TCPConnReader struct{ r fieldReader }

// Reset starts decoding body.
func (r *TCPConnReader) Reset(body []byte) { r.r.reset(body, "tcp connections") }

// Err returns the error that stopped Next, nil at a clean end.
func (r *TCPConnReader) Err() error { return r.r.err }

// Next decodes the next record into x and reports whether there was one.
// It reuses x.History's array.
func (r *TCPConnReader) Next(x *TCPConn) bool {
	if !r.r.more() {
		return false
	}
	y := TCPConn{History: x.History[:0]}
	y.Flow = r.r.u32("flow id")
	y.Report = r.r.fixed64("report interval")
	y.Conn = r.r.uvarint("connection")
	y.First = r.r.fixed64("first")
	d := r.r.uvarint("duration")
	if d > 1<<62 {
		r.r.fail("duration out of range")
	}
	y.Last = y.First + int64(d)
	y.Status = r.r.byte1("status")
	y.State = r.r.byte1("state")
	y.Orig = r.r.addrPort("originator")
	y.Resp = r.r.addrPort("responder")
	for _, s := range [2]*TCPSide{&y.O, &y.R} {
		s.Packets = r.r.uvarint("packets")
		s.Bytes = r.r.uvarint("bytes")
		s.Retrans = r.r.uvarint("retransmissions")
		s.OutOfOrder = r.r.uvarint("out of order")
		s.ZeroWindow = r.r.uvarint("zero windows")
	}
	y.History = append(y.History, r.r.str("history", MaxTCPHistory)...)
	switch {
	case r.r.err != nil:
	case y.Status == 0 || y.Status >= tcpStatusMax:
		r.r.fail("unknown status")
	case y.State == 0 || int(y.State) > len(tcpStates):
		r.r.fail("unknown state")
	case y.Orig.Addr().Is4() != y.Resp.Addr().Is4():
		r.r.fail("addresses of two families")
	case y.O.Packets+y.R.Packets == 0:
		r.r.fail("no packet")
	}
	if r.r.err != nil {
		return false
	}
	*x = y
	return true
}
