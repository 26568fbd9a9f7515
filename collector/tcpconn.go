package collector

import (
	"fmt"

	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/spool"
)

// tcpConns writes the records of a TCP connections PDU (analyse/tcpconn)
// to the spool's tcp_conns rows, as counters does (a PDU naming a flow not
// yet defined is refused whole; on a journal replay, rows of sets
// committed after the PDU are not written again).
func (c *Collector) tcpConns(s *session, body []byte) error {
	var r pdu.TCPConnReader
	var x pdu.TCPConn
	r.Reset(body)
	for r.Next(&x) {
		if int(x.Flow) >= len(s.flows) || !s.flows[x.Flow].defined {
			return errUnknownFlow
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("collector: probe %s: %w", s.name, err)
	}
	if c.replaying && !c.replayCounters {
		return nil
	}
	r.Reset(body)
	for r.Next(&x) {
		if c.inSpool(spool.TypeTCPConn, x.Report) {
			continue
		}
		class, iface, err := c.flowNames(s, x.Flow)
		if err != nil {
			return err
		}
		if err := c.sp.WriteTCPConn(spool.TCPConnRow{
			Start: x.Report, Class: class, Flow: s.flows[x.Flow].id, Probe: s.name, Iface: iface,
			Conn: x.Conn, Status: pdu.TCPStatusName(x.Status), State: pdu.TCPStateName(x.State),
			First: x.First, Duration: x.Last - x.First, Orig: x.Orig, Resp: x.Resp,
			O: spool.TCPSide(x.O), R: spool.TCPSide(x.R), History: string(x.History),
		}); err != nil {
			return err
		}
	}
	return nil
}
