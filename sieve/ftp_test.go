package sieve

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/ring"
)

func TestFTPDataPort(t *testing.T) {
	for _, tc := range []struct {
		line       string
		fromServer bool
		port       uint16
		ok         bool
	}{
		{"PORT 141,142,220,235,131,46\r", false, 131*256 + 46, true},
		{"port 10,0,0,1,0,21", false, 21, true},
		{"EPRT |2|2001:470:1f11:81f:c999:d94:aa7c:2e3e|49189|\r", false, 49189, true},
		{"EPRT |1|132.235.1.2|6275|", false, 6275, true},
		{"EPRT !1!132.235.1.2!6275!", false, 6275, true},
		{"227 Entering Passive Mode (199,233,217,249,221,90)\r", true, 221*256 + 90, true},
		{"227 Entering Passive Mode 199,233,217,249,221,91", true, 221*256 + 91, true},
		{"229 Entering Extended Passive Mode (|||57086|)\r", true, 57086, true},
		{"PORT 1,2,3,4,5", false, 0, false},
		{"PORT 1,2,3,4,5,256", false, 0, false},
		{"PORT 1,2,3,4,0,0", false, 0, false},
		{"EPRT |2|::1|70000|", false, 0, false},
		{"EPRT |2|::1|", false, 0, false},
		{"227 Entering Passive Mode (199,233,217,249,221,90)", false, 0, false}, // from the client: not a reply
		{"PORT 1,2,3,4,5,6", true, 0, false},                                    // from the server: not a command
		{"229 (|||x|)", true, 0, false},
		{"PASV", false, 0, false},
	} {
		port, ok := FTPDataPort([]byte(tc.line), tc.fromServer)
		if port != tc.port || ok != tc.ok {
			t.Errorf("%q: %d %v, want %d %v", tc.line, port, ok, tc.port, tc.ok)
		}
	}
}

func ftpConfig() *conf.Config {
	return &conf.Config{Classes: []conf.Class{
		{Name: "other", Filter: and(or(eq(flow.DstPort, 53)))},
		{Name: "ftp", Filter: and(or(eq(flow.DstPort, 21), eq(flow.SrcPort, 21)))},
	}}
}

// TestFTPExpect: a 227 reply makes the data connection it announces
// wanted in the control connection's class (FlagFTPData), in both
// directions, though the class's filter names port 21 only; another
// client's connection to that port is not; the reply's payload is handed
// on through Run, right before its record.
func TestFTPExpect(t *testing.T) {
	s, err := Compile(ftpConfig())
	if err != nil {
		t.Fatal(err)
	}
	reply := []byte("227 Entering Passive Mode (10,0,0,2,195,80)\r\n")
	frames := [][]byte{
		ip4(6, "10.0.0.2", "10.0.0.1", 0, nil, tcpHdr(21, 40000, 0x18, reply)),
		ip4(6, "10.0.0.1", "10.0.0.2", 0, nil, tcpHdr(40001, 50000, 0x02, nil)), // to 195·256+80 = 50000
		ip4(6, "10.0.0.2", "10.0.0.1", 0, nil, tcpHdr(50000, 40001, 0x12, nil)),
		ip4(6, "10.0.0.9", "10.0.0.2", 0, nil, tcpHdr(40001, 50000, 0x02, nil)), // another client
	}
	var recs []Record
	var pay []byte
	for i, f := range frames {
		var rec Record
		ok, why := s.Packet(f, int64(i+1)*1e9, 0, LinkRaw, &rec)
		if i == 3 {
			if ok || why != Unwanted {
				t.Errorf("another client's connection: %v %v", ok, why)
			}
			continue
		}
		if !ok {
			t.Fatalf("frame %d not wanted: %v", i, why)
		}
		if i == 0 {
			pay = append(pay, s.Payload()...)
		}
		recs = append(recs, rec)
	}
	if recs[0].Flags&FlagPayload == 0 || string(pay) != string(reply) {
		t.Errorf("reply: flags %b, payload %q", recs[0].Flags, pay)
	}
	for _, r := range recs[1:] {
		if r.Classes != 2 || r.Flags&FlagFTPData == 0 {
			t.Errorf("data packet %d→%d: classes %b flags %b", r.SrcPort, r.DstPort, r.Classes, r.Flags)
		}
	}
	// Through Run: the payload is in its ring when the record is popped.
	s2, _ := Compile(ftpConfig())
	pl := ring.New[Payload](4)
	s2.SetPayloads(pl)
	out := ring.New[Record](4)
	if err := s2.Run(context.Background(), &frameSource{frames: frames[:1]}, out, -1, Block); err != nil {
		t.Fatal(err)
	}
	var r Record
	var p Payload
	if !out.Pop(&r) || r.Flags&FlagPayload == 0 || !pl.Pop(&p) || string(p.Bytes()) != string(reply) {
		t.Errorf("Run: record %+v, payload %q", r, p.Bytes())
	}
}

// TestFTPExpectIdle: an expectation lasts <analyses tcpIdle> after its
// last packet (data time), then the data connection is no longer kept.
func TestFTPExpectIdle(t *testing.T) {
	cfg := ftpConfig()
	cfg.Analyses.TCPIdle = 30 * time.Second
	s, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reply := ip4(6, "10.0.0.2", "10.0.0.1", 0, nil, tcpHdr(21, 40000, 0x18, []byte("227 Entering Passive Mode (10,0,0,2,195,80)\r\n")))
	syn := ip4(6, "10.0.0.1", "10.0.0.2", 0, nil, tcpHdr(40001, 50000, 0x02, nil))
	var rec Record
	s.Packet(reply, 1e9, 0, LinkRaw, &rec)
	if ok, _ := s.Packet(syn, 30e9, 0, LinkRaw, &rec); !ok { // 29 s later: kept, and renewed
		t.Fatal("data connection within tcpIdle not kept")
	}
	if ok, _ := s.Packet(syn, 59e9, 0, LinkRaw, &rec); !ok {
		t.Fatal("data connection 29 s after its last packet not kept")
	}
	if ok, why := s.Packet(syn, 90e9, 0, LinkRaw, &rec); ok || why != Unwanted {
		t.Errorf("data connection 31 s after its last packet: %v %v", ok, why)
	}
}

type frameSource struct {
	frames [][]byte
	i      int
}

func (f *frameSource) ReadPacket() ([]byte, int64, uint8, uint16, error) {
	if f.i == len(f.frames) {
		return nil, 0, 0, 0, io.EOF
	}
	f.i++
	return f.frames[f.i-1], int64(f.i), 0, LinkRaw, nil
}

// TestFTPExpectFlood: a flood of PORT commands keeps at most
// maxFTPExpect expectations, the newest; Packet allocates nothing.
func TestFTPExpectFlood(t *testing.T) {
	s, _ := Compile(ftpConfig())
	var rec Record
	for i := range 5000 {
		cmd := fmt.Sprintf("PORT 10,0,0,1,%d,%d\r\n", 1+i/256, i%256)
		s.Packet(ip4(6, "10.0.0.1", "10.0.0.2", 0, nil, tcpHdr(40000, 21, 0x18, []byte(cmd))), int64(i), 0, LinkRaw, &rec)
		if s.ftpx.n > maxFTPExpect {
			t.Fatalf("%d expectations", s.ftpx.n)
		}
	}
	st := s.FTP()
	if st.Learned != 5000 || st.Replaced != 5000-maxFTPExpect {
		t.Errorf("%+v", st)
	}
	last := ip4(6, "10.0.0.2", "10.0.0.1", 0, nil, tcpHdr(20, 256*(1+4999/256)+4999%256, 0x02, nil))
	old := ip4(6, "10.0.0.2", "10.0.0.1", 0, nil, tcpHdr(20, 256+0, 0x02, nil))
	if ok, _ := s.Packet(last, 6000, 0, LinkRaw, &rec); !ok {
		t.Errorf("the newest announcement is not kept")
	}
	if ok, _ := s.Packet(old, 6001, 0, LinkRaw, &rec); ok {
		t.Errorf("the oldest announcement is still kept")
	}
	cmd := ip4(6, "10.0.0.1", "10.0.0.2", 0, nil, tcpHdr(40000, 21, 0x18, []byte("PORT 10,0,0,1,1,1\r\n")))
	if n := testing.AllocsPerRun(1000, func() {
		s.Packet(cmd, 7000, 0, LinkRaw, &rec)
		s.Packet(last, 7000, 0, LinkRaw, &rec)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// FuzzFTPDataPort: any line, either way: no panic, and a port read is not 0.
func FuzzFTPDataPort(f *testing.F) {
	for _, s := range []string{"PORT 141,142,220,235,131,46\r", "EPRT |2|2001:db8::1|49189|", "227 (1,2,3,4,5,6)", "229 (|||57086|)", "EPRT ||||", "PORT 9999,1"} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, line []byte, fromServer bool) {
		if port, ok := FTPDataPort(line, fromServer); ok && port == 0 {
			t.Errorf("%q: port 0", line)
		}
	})
}
