package collector

import (
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/spool"
)

// tcpConns writes the records of a TCP connections PDU (analyse/tcpconn)
// to the spool's tcp_conns rows (writeRecords).
func (c *Collector) tcpConns(s *session, body []byte) error {
	var x pdu.TCPConn
	return writeRecords(c, s, body, &pdu.TCPConnReader{}, &x, spool.TypeTCPConn,
		func(x *pdu.TCPConn) uint32 { return x.Flow }, func(x *pdu.TCPConn) int64 { return x.Report },
		func(x *pdu.TCPConn, fl flowRef, class, iface string) error {
			return c.sp.WriteTCPConn(spool.TCPConnRow{
				Start: x.Report, Class: class, Flow: fl.id, Probe: s.name, Iface: iface,
				Conn: x.Conn, Status: pdu.TCPStatusName(x.Status), State: pdu.TCPStateName(x.State),
				First: x.First, Duration: x.Last - x.First, Orig: x.Orig, Resp: x.Resp,
				O: spool.TCPSide(x.O), R: spool.TCPSide(x.R), History: string(x.History),
			})
		})
}
