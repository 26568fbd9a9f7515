package collector

import (
	"fmt"

	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/spool"
)

// ftpTransfers writes the records of an FTP transfers PDU (analyse/ftp)
// to the spool's ftp_transfers rows, as tcpConns does.
func (c *Collector) ftpTransfers(s *session, body []byte) error {
	var r pdu.FTPReader
	var x pdu.FTPTransfer
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
		if c.inSpool(spool.TypeFTP, x.Report) {
			continue
		}
		class, iface, err := c.flowNames(s, x.Flow)
		if err != nil {
			return err
		}
		if err := c.sp.WriteFTP(spool.FTPRow{
			Start: x.Report, Class: class, Flow: s.flows[x.Flow].id, Probe: s.name, Iface: iface,
			Cmd: x.Start, End: x.End, Command: string(x.Command), Arg: string(x.Arg), User: string(x.User),
			Reply: x.Reply, Bytes: x.Bytes, Data: x.Flags&pdu.FTPData != 0, DataFirst: x.DataFirst, DataLast: x.DataLast,
			Passive: x.Flags&pdu.FTPPassive != 0, Client: x.Client, Server: x.Server, DataOrig: x.DataOrig, DataResp: x.DataResp,
		}); err != nil {
			return err
		}
	}
	return nil
}
