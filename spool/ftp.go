package spool

import (
	"net/netip"
	"strconv"
)

// TypeFTP is the spool type of the FTP analysis (docs/spool.md,
// ftp_transfers): a listing or file transfer per row.
const TypeFTP = "ftp_transfers"

// ColsFTP are its columns.
var ColsFTP = []string{"interval_start", "interval_s", "class", "flow", "probe", "iface",
	"start_ns", "duration_ns", "command", "arg", "user", "reply_code", "bytes", "throughput_bps",
	"data_start_ns", "data_duration_ns", "passive", "client_addr", "client_port", "server_addr", "server_port",
	"data_orig_addr", "data_orig_port", "data_resp_addr", "data_resp_port"}

// FTPRow is one ftp_transfers row.
type FTPRow struct {
	Start               int64 // interval of the final reply
	Class               string
	Flow                uint32
	Probe, Iface        string
	Cmd, End            int64 // capture times of the command and of its final reply
	Command, Arg, User  string
	Reply               uint16 // 0: none came (written empty)
	Bytes               uint64
	Data                bool // a data connection was seen: the fields below are set
	DataFirst, DataLast int64
	Passive             bool
	Client, Server      netip.AddrPort
	DataOrig, DataResp  netip.AddrPort
}

// WriteFTP buffers one ftp_transfers row; CutData writes it.
func (w *Writer) WriteFTP(r FTPRow) error {
	b := appendPrefix(nil, strconv.FormatInt(r.Start, 10), strconv.FormatInt(w.interval/1e9, 10), r.Class, r.Flow, r.Probe, r.Iface)
	b = strconv.AppendInt(b, r.Cmd, 10)
	b = strconv.AppendInt(append(b, '\t'), r.End-r.Cmd, 10)
	b = appendText(append(b, '\t'), r.Command)
	b = appendText(append(b, '\t'), r.Arg)
	b = appendText(append(b, '\t'), r.User)
	b = append(b, '\t')
	if r.Reply != 0 {
		b = strconv.AppendUint(b, uint64(r.Reply), 10)
	}
	b = strconv.AppendUint(append(b, '\t'), r.Bytes, 10)
	b = append(b, '\t')
	if d := r.End - r.Cmd; r.Data && d > 0 {
		// bits/s from the command to its final reply: the rate the user saw
		b = strconv.AppendUint(b, uint64(float64(r.Bytes)*8e9/float64(d)), 10)
	}
	if r.Data {
		b = strconv.AppendInt(append(b, '\t'), r.DataFirst, 10)
		b = strconv.AppendInt(append(b, '\t'), r.DataLast-r.DataFirst, 10)
		b = append(b, '\t', '0')
		if r.Passive {
			b[len(b)-1] = '1'
		}
	} else {
		b = append(b, "\t\t\t"...)
	}
	for _, e := range []netip.AddrPort{r.Client, r.Server, r.DataOrig, r.DataResp} {
		b = append(b, '\t')
		if e.Addr().IsValid() {
			b = e.Addr().AppendTo(b)
			b = strconv.AppendUint(append(b, '\t'), uint64(e.Port()), 10)
		} else {
			b = append(b, '\t')
		}
	}
	return w.bufferData(&w.ftp, w.startOf(r.Start), b)
}
