package pdu

import (
	"net/netip"
	"reflect"
	"testing"
)

var goldenFTP = FTPTransfer{Flow: 9, Report: goldenT0 - goldenT0%60e9, Start: goldenT0 + 1000, End: goldenT0 + 111_313_000,
	DataFirst: goldenT0 + 56_000_000, DataLast: goldenT0 + 56_000_000, Bytes: 77, Reply: 226, Flags: FTPPassive | FTPData,
	Client: netip.MustParseAddrPort("141.142.220.235:50003"), Server: netip.MustParseAddrPort("199.233.217.249:21"),
	DataOrig: netip.MustParseAddrPort("141.142.220.235:59378"), DataResp: netip.MustParseAddrPort("199.233.217.249:56667"),
	Command: []byte("RETR"), User: []byte("anonymous"), Arg: []byte("robots.txt")}

func TestFTPRoundTrip(t *testing.T) {
	b := NewBuilder(1200)
	noData := FTPTransfer{Flow: 1, Start: 5, End: 5, Client: netip.MustParseAddrPort("[2001:db8::1]:1"),
		Server: netip.MustParseAddrPort("[2001:db8::2]:21"), Command: []byte("STOR"), Arg: make([]byte, MaxFTPArg), User: []byte{}}
	in := []FTPTransfer{goldenFTP, noData}
	for i := range in {
		if !b.AddFTPTransfer(&in[i]) {
			t.Fatalf("record %d refused", i)
		}
	}
	f, err := Parse(b.Finish(goldenHeader))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(&f); err != nil {
		t.Fatal(err)
	}
	var r FTPReader
	var x FTPTransfer
	r.Reset(f.Body)
	for i := range in {
		if !r.Next(&x) {
			t.Fatalf("record %d: %v", i, r.Err())
		}
		if !reflect.DeepEqual(x, in[i]) {
			t.Errorf("record %d: %+v became %+v", i, in[i], x)
		}
	}
	for name, c := range map[string]FTPTransfer{
		"arg":     {Client: goldenFTP.Client, Server: goldenFTP.Server, Command: []byte("RETR"), Arg: make([]byte, MaxFTPArg+1)},
		"command": {Client: goldenFTP.Client, Server: goldenFTP.Server, Command: []byte("RETRIEVES")},
		"mixed":   {Client: goldenFTP.Client, Server: noData.Server, Command: []byte("RETR")},
		"data":    {Client: goldenFTP.Client, Server: goldenFTP.Server, Command: []byte("RETR"), Flags: FTPData},
		"flags":   {Client: goldenFTP.Client, Server: goldenFTP.Server, Command: []byte("RETR"), Flags: 4},
	} {
		if b.AddFTPTransfer(&c) {
			t.Errorf("%s: record taken", name)
		}
	}
}

// Records that cannot be true are malformed: a reply code beyond 999,
// bytes without a data connection, no command, a truncated record.
func TestFTPMalformed(t *testing.T) {
	enc := func(x FTPTransfer, reply uint64, cut int) []byte {
		var w recBuf
		w.uvarint(uint64(x.Flow))
		w.fixed64(x.Report)
		w.fixed64(x.Start)
		w.uvarint(uint64(x.End - x.Start))
		w.byte1(x.Flags)
		w.uvarint(reply)
		w.uvarint(x.Bytes)
		w.addrPort(x.Client)
		w.addrPort(x.Server)
		w.str(x.Command)
		w.str(x.User)
		w.str(x.Arg)
		w.n -= cut
		b := NewBuilder(MinPDUSize)
		b.addRecord(TypeFTP, &w)
		return b.Finish(goldenHeader)
	}
	base := FTPTransfer{Client: goldenFTP.Client, Server: goldenFTP.Server, Command: []byte("LIST")}
	noCmd := base
	noCmd.Command = nil
	bytesNoData := base
	bytesNoData.Bytes = 5
	for name, d := range map[string][]byte{
		"reply":     enc(base, 1000, 0),
		"bytes":     enc(bytesNoData, 226, 0),
		"command":   enc(noCmd, 226, 0),
		"truncated": enc(base, 226, 1),
	} {
		f, err := Parse(d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if Validate(&f) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if f, _ := Parse(enc(base, 226, 0)); Validate(&f) != nil {
		t.Errorf("the valid record was refused")
	}
}
