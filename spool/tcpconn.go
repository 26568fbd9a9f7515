package spool

import (
	"net/netip"
	"strconv"
)

// TypeTCPConn is the spool type of the TCP connection analysis
// (docs/spool.md, tcp_conns): a connection per row, open ones at the end
// of every interval.
const TypeTCPConn = "tcp_conns"

// ColsTCPConn are its columns.
var ColsTCPConn = []string{"interval_start", "interval_s", "class", "flow", "probe", "iface",
	"conn", "status", "conn_state", "start_ns", "duration_ns", "orig_addr", "orig_port", "resp_addr", "resp_port",
	"orig_pkts", "orig_bytes", "orig_retrans", "orig_ooo", "orig_zero_win",
	"resp_pkts", "resp_bytes", "resp_retrans", "resp_ooo", "resp_zero_win", "history"}

// TCPSide is what one endpoint sent.
type TCPSide struct {
	Packets, Bytes, Retrans, OutOfOrder, ZeroWindow uint64
}

// TCPConnRow is one tcp_conns row.
type TCPConnRow struct {
	Start           int64 // interval reported
	Class           string
	Flow            uint32
	Probe, Iface    string
	Conn            uint64
	Status, State   string
	First, Duration int64
	Orig, Resp      netip.AddrPort
	O, R            TCPSide
	History         string
}

// WriteTCPConn buffers one tcp_conns row; CutData writes it.
func (w *Writer) WriteTCPConn(r TCPConnRow) error {
	b := appendPrefix(nil, strconv.FormatInt(r.Start, 10), strconv.FormatInt(w.interval/1e9, 10), r.Class, r.Flow, r.Probe, r.Iface)
	b = strconv.AppendUint(b, r.Conn, 10)
	b = appendText(append(b, '\t'), r.Status)
	b = appendText(append(b, '\t'), r.State)
	b = strconv.AppendInt(append(b, '\t'), r.First, 10)
	b = strconv.AppendInt(append(b, '\t'), r.Duration, 10)
	for _, e := range []netip.AddrPort{r.Orig, r.Resp} {
		b = e.Addr().AppendTo(append(b, '\t'))
		b = strconv.AppendUint(append(b, '\t'), uint64(e.Port()), 10)
	}
	for _, s := range []TCPSide{r.O, r.R} {
		for _, v := range []uint64{s.Packets, s.Bytes, s.Retrans, s.OutOfOrder, s.ZeroWindow} {
			b = strconv.AppendUint(append(b, '\t'), v, 10)
		}
	}
	b = appendText(append(b, '\t'), r.History)
	return w.bufferData(&w.tcp, w.startOf(r.Start), b)
}
