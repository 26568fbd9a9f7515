package collector

import (
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/spool"
)

// ftpTransfers writes the records of an FTP transfers PDU (analyse/ftp)
// to the spool's ftp_transfers rows (writeRecords).
func (c *Collector) ftpTransfers(s *session, body []byte) error {
	var x pdu.FTPTransfer
	return writeRecords(c, s, body, &pdu.FTPReader{}, &x, spool.TypeFTP,
		func(x *pdu.FTPTransfer) uint32 { return x.Flow }, func(x *pdu.FTPTransfer) int64 { return x.Report },
		func(x *pdu.FTPTransfer, fl flowRef, class, iface string) error {
			return c.sp.WriteFTP(spool.FTPRow{
				Start: x.Report, Class: class, Flow: fl.id, Probe: s.name, Iface: iface,
				Cmd: x.Start, End: x.End, Command: string(x.Command), Arg: string(x.Arg), User: string(x.User),
				Reply: x.Reply, Bytes: x.Bytes, Data: x.Flags&pdu.FTPData != 0, DataFirst: x.DataFirst, DataLast: x.DataLast,
				Passive: x.Flags&pdu.FTPPassive != 0, Client: x.Client, Server: x.Server, DataOrig: x.DataOrig, DataResp: x.DataResp,
			})
		})
}
