package pdu

import "net/netip"

// FTP transfer record (docs/pdu.md, "FTP transfers"): one listing or file
// transfer of an FTP session seen at one interface (analyse/ftp).

// FTP transfer flags.
const (
	FTPPassive  uint8 = 1 << iota // the data connection was announced by PASV/EPSV (else PORT/EPRT)
	FTPData                       // a data connection was seen (its endpoints and times are set)
	ftpFlagsAll = FTPPassive | FTPData
)

// Bounds of the strings of a record.
const (
	MaxFTPCommand = 8
	MaxFTPUser    = 64
	MaxFTPArg     = 255
)

// FTPTransfer is one command that moves data over a data connection
// (RETR, STOR, STOU, APPE, LIST, NLST, MLSD) and its outcome.
type FTPTransfer struct {
	Flow                uint32 // FlowDef.ID of the control connection (its first packet)
	Report              int64  // start of the interval of End
	Start, End          int64  // capture times of the command and of its final reply (End = Start when none came)
	DataFirst, DataLast int64  // first and last payload on the data connection (0 without)
	Bytes               uint64 // payload bytes on the data connection, by sequence numbers
	Reply               uint16 // the final reply's code; 0 when none came (the session ended first)
	Flags               uint8
	Client, Server      netip.AddrPort // the control connection
	DataOrig, DataResp  netip.AddrPort // the data connection (with FTPData)
	Command             []byte         // upper case, at most MaxFTPCommand bytes
	User                []byte         // the USER argument, at most MaxFTPUser bytes
	Arg                 []byte         // the command's argument (file name), at most MaxFTPArg bytes
}

// AddFTPTransfer appends an FTP transfer record. It returns false, leaving
// the PDU unchanged, when the record does not fit or is invalid (strings
// too long, bad addresses). It does not allocate.
func (b *Builder) AddFTPTransfer(x *FTPTransfer) bool {
	if len(x.Command) > MaxFTPCommand || len(x.User) > MaxFTPUser || len(x.Arg) > MaxFTPArg ||
		!x.Client.Addr().IsValid() || x.Client.Addr().Is4() != x.Server.Addr().Is4() || x.Flags&^ftpFlagsAll != 0 {
		return false
	}
	if x.Flags&FTPData != 0 && (!x.DataOrig.Addr().IsValid() || x.DataOrig.Addr().Is4() != x.DataResp.Addr().Is4()) {
		return false
	}
	var w recBuf
	w.uvarint(uint64(x.Flow))
	w.fixed64(x.Report)
	w.fixed64(x.Start)
	w.uvarint(uint64(x.End - x.Start))
	w.byte1(x.Flags)
	w.uvarint(uint64(x.Reply))
	w.uvarint(x.Bytes)
	w.addrPort(x.Client)
	w.addrPort(x.Server)
	if x.Flags&FTPData != 0 {
		w.i64(x.DataFirst - x.Start)
		w.uvarint(uint64(x.DataLast - x.DataFirst))
		w.addrPort(x.DataOrig)
		w.addrPort(x.DataResp)
	}
	w.str(x.Command)
	w.str(x.User)
	w.str(x.Arg)
	return b.addRecord(TypeFTP, &w)
}

// FTPReader decodes the body of an FTP transfers PDU.
type FTPReader struct{ r fieldReader }

// Reset starts decoding body.
func (r *FTPReader) Reset(body []byte) { r.r.reset(body, "ftp") }

// Err returns the error that stopped Next, nil at a clean end.
func (r *FTPReader) Err() error { return r.r.err }

// Next decodes the next record into x and reports whether there was one.
// The strings point into the body.
func (r *FTPReader) Next(x *FTPTransfer) bool {
	if !r.r.more() {
		return false
	}
	var y FTPTransfer
	y.Flow = r.r.u32("flow id")
	y.Report = r.r.fixed64("report interval")
	y.Start = r.r.fixed64("start")
	d := r.r.uvarint("duration")
	y.Flags = r.r.byte1("flags")
	reply := r.r.uvarint("reply")
	y.Reply = uint16(reply)
	y.Bytes = r.r.uvarint("bytes")
	y.Client = r.r.addrPort("client")
	y.Server = r.r.addrPort("server")
	var df int64
	var dd uint64
	if y.Flags&FTPData != 0 {
		df = r.r.i64("data start")
		dd = r.r.uvarint("data duration")
		y.DataOrig = r.r.addrPort("data originator")
		y.DataResp = r.r.addrPort("data responder")
	}
	y.Command = r.r.str("command", MaxFTPCommand)
	y.User = r.r.str("user", MaxFTPUser)
	y.Arg = r.r.str("argument", MaxFTPArg)
	switch {
	case r.r.err != nil:
	case d > 1<<62 || dd > 1<<62 || df > 1<<62 || df < -1<<62:
		r.r.fail("time out of range")
	case reply > 999:
		r.r.fail("reply code out of range")
	case y.Flags&^ftpFlagsAll != 0:
		r.r.fail("unknown flags")
	case y.Client.Addr().Is4() != y.Server.Addr().Is4():
		r.r.fail("addresses of two families")
	case y.Flags&FTPData == 0 && y.Bytes != 0:
		r.r.fail("bytes without a data connection")
	case len(y.Command) == 0:
		r.r.fail("no command")
	}
	if r.r.err != nil {
		return false
	}
	y.End = y.Start + int64(d)
	if y.Flags&FTPData != 0 {
		y.DataFirst = y.Start + df
		y.DataLast = y.DataFirst + int64(dd)
	}
	*x = y
	return true
}
