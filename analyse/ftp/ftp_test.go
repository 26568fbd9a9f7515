package ftp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/sieve"
)

type sink struct{ got []pdu.FTPTransfer }

func (s *sink) FTPTransfer(x *pdu.FTPTransfer) {
	y := *x
	y.Command = append([]byte(nil), x.Command...)
	y.User = append([]byte(nil), x.User...)
	y.Arg = append([]byte(nil), x.Arg...)
	s.got = append(s.got, y)
}
func (s *sink) FlowDef(pdu.FlowDef)                {}
func (s *sink) Sighting(pdu.Sighting, uint8, bool) {}

func corpus(t testing.TB, sub string) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, "shared", "corpus", sub)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("corpus %s not found above the test directory", sub)
		}
		dir = filepath.Dir(dir)
	}
}

// controlOnly is a class whose filter selects the control connection
// only: the data connections (random ports) are kept by the sieve.
const controlOnly = `<tmon interval="60s">
  <transport insecure="true"/>
  <collector name="c1" address="127.0.0.1:9"/>
  <probe name="p" id="1"><interface name="i0"/></probe>
  <flowClass name="ftp">
    <filter><or><match field="l4.dport" value="21"/><match field="l4.sport" value="21"/></or></filter>
  </flowClass>
</tmon>`

// replay runs a capture through a sieve and an analyser with this
// analysis, the payloads handed on as the probe does.
func replay(t testing.TB, file string) (*sink, *Analysis, sieve.Stats) {
	return replayConf(t, file, controlOnly)
}

func replayConf(t testing.TB, file, xml string) (*sink, *Analysis, sieve.Stats) {
	t.Helper()
	cfg, err := conf.Parse(strings.NewReader(xml), "ftp.xml")
	if err != nil {
		t.Fatal(err)
	}
	sv, err := sieve.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := &sink{}
	f := New(Config{Interval: time.Minute}, out)
	an, err := analyse.New(cfg, 0, out, analyse.Config{Analyses: []analyse.Analysis{f}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := pcapgo.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := pr.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var rec sieve.Record
		if ok, _ := sv.Packet(data, ci.Timestamp.UnixNano(), 0, uint16(pr.LinkType()), &rec); ok {
			if rec.Flags&sieve.FlagPayload != 0 {
				an.PacketPayload(&rec, sv.Payload())
			} else {
				an.Packet(&rec)
			}
			an.Advance(rec.TS)
		}
	}
	an.Close()
	return out, f, sv.Stats()
}

type zeekFTP struct {
	user, command, arg string
	size, reply        string
	passive            string
	dataOrig, dataResp string
	dataPort           string
}

func readFTPLog(t *testing.T, file string) []zeekFTP {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cols []string
	var out []zeekFTP
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "#fields\t"); ok {
			cols = strings.Split(rest, "\t")
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		v := map[string]string{}
		for i, x := range strings.Split(line, "\t") {
			v[cols[i]] = x
		}
		out = append(out, zeekFTP{user: v["user"], command: v["command"], arg: v["arg"], size: v["file_size"], reply: v["reply_code"],
			passive: v["data_channel.passive"], dataOrig: v["data_channel.orig_h"], dataResp: v["data_channel.resp_h"], dataPort: v["data_channel.resp_p"]})
	}
	return out
}

// TestZeekFTPLog: the Zeek FTP captures (IPv4: PASV and PORT; IPv6: EPSV
// and EPRT) against Zeek's ftp.log, field by field. Zeek logs the data
// channel on the PASV/EPSV/PORT/EPRT row and the file on the RETR row; a
// record here holds both, and also the listings (LIST), which Zeek does
// not log: every data channel Zeek announces is the data connection of
// one transfer, in order (passive or not, originator, responder and its
// port); every RETR has its user, file name (Zeek's arg is a URL ending
// in it), size and reply code. The class's filter selects port 21 only:
// the data connections come through the sieve's expectations.
func TestZeekFTPLog(t *testing.T) {
	for _, name := range []string{"ipv4", "ipv6"} {
		t.Run(name, func(t *testing.T) {
			z := readFTPLog(t, filepath.Join(corpus(t, "zeek"), "baseline", "ftp-"+name, "ftp.log"))
			out, _, _ := replay(t, filepath.Join(corpus(t, "zeek"), "ftp", name+".pcap"))
			var channels, files []string
			for _, r := range z {
				switch r.command {
				case "PASV", "EPSV", "PORT", "EPRT":
					channels = append(channels, fmt.Sprint(r.passive, " ", r.dataOrig, " ", r.dataResp, " ", r.dataPort))
				case "RETR":
					files = append(files, fmt.Sprint(r.user, " RETR ", path.Base(r.arg), " ", r.size, " ", r.reply))
				}
			}
			var gotCh, gotFiles []string
			for _, x := range out.got {
				if x.Flags&pdu.FTPData == 0 {
					t.Errorf("%s %s: no data connection", x.Command, x.Arg)
					continue
				}
				p := "F"
				if x.Flags&pdu.FTPPassive != 0 {
					p = "T"
				}
				gotCh = append(gotCh, fmt.Sprint(p, " ", x.DataOrig.Addr(), " ", x.DataResp.Addr(), " ", x.DataResp.Port()))
				if string(x.Command) == "RETR" {
					gotFiles = append(gotFiles, fmt.Sprint(string(x.User), " RETR ", string(x.Arg), " ", x.Bytes, " ", x.Reply))
				}
			}
			if fmt.Sprint(gotCh) != fmt.Sprint(channels) {
				t.Errorf("data channels\n%q\nZeek\n%q", gotCh, channels)
			}
			if fmt.Sprint(gotFiles) != fmt.Sprint(files) {
				t.Errorf("files\n%q\nZeek\n%q", gotFiles, files)
			}
		})
	}
}

// TestTransfersByHand: every record of the IPv4 capture, each figure
// read from tshark's dissection of the file (`tshark -r ipv4.pcap -Y ftp`
// for the commands and replies, `-z conv,tcp` for the data connections):
// the listings are 342 bytes (Zeek's conn.log resp_bytes of the data
// connections too), robots.txt 77 bytes (the 150 reply says so); the
// times are the command's and the final reply's capture times, e.g. the
// first LIST at 13.823036 s and its 226 at 13.933840 s after the first
// packet.
func TestTransfersByHand(t *testing.T) {
	out, a, st := replay(t, filepath.Join(corpus(t, "zeek"), "ftp", "ipv4.pcap"))
	if len(out.got) != 4 {
		t.Fatalf("%d transfers: %+v", len(out.got), out.got)
	}
	t0 := int64(1329843161_968492_000) // first packet of the capture
	want := []string{
		"LIST  342 226 13.823036 13.933840 T 141.142.220.235:37604>199.233.217.249:56666",
		"RETR robots.txt 77 226 17.958071 18.069383 T 141.142.220.235:59378>199.233.217.249:56667",
		"LIST  342 226 32.127290 32.331387 F 199.233.217.249:61920>141.142.220.235:33582",
		"RETR robots.txt 77 226 35.759277 35.963437 F 199.233.217.249:61918>141.142.220.235:37835",
	}
	for i, x := range out.got {
		p := "F"
		if x.Flags&pdu.FTPPassive != 0 {
			p = "T"
		}
		got := fmt.Sprintf("%s %s %d %d %.6f %.6f %s %s>%s", x.Command, x.Arg, x.Bytes, x.Reply,
			float64(x.Start-t0)/1e9, float64(x.End-t0)/1e9, p, x.DataOrig, x.DataResp)
		if got != want[i] {
			t.Errorf("transfer %d\n got %s\nwant %s", i, got, want[i])
		}
		if string(x.User) != "anonymous" || x.Client != netip.MustParseAddrPort("141.142.220.235:50003") ||
			x.Server != netip.MustParseAddrPort("199.233.217.249:21") {
			t.Errorf("transfer %d: user %s, control %v → %v", i, x.User, x.Client, x.Server)
		}
		if x.DataFirst < x.Start || x.DataLast < x.DataFirst || x.DataLast > x.End {
			t.Errorf("transfer %d: data %d–%d outside %d–%d", i, x.DataFirst, x.DataLast, x.Start, x.End)
		}
	}
	// Every packet of the capture is of the control connection or of one
	// of the four data connections (63 + 32, tcpdump): all kept, though
	// the class's filter names port 21 only.
	if st.Wanted != st.Packets || st.Packets != 95 {
		t.Errorf("sieve kept %d of %d packets, want 95 of 95", st.Wanted, st.Packets)
	}
	t.Logf("data packets after their transfer's reply: %d", a.Unmatched)
}

// TestStreamReassembly: commands cut over segments, a retransmitted
// segment, a segment out of order (a gap: the line it cuts is lost, the
// next one read), built by hand.
func TestStreamReassembly(t *testing.T) {
	out := &sink{}
	a := New(Config{}, out)
	var ids analyse.FlowIDs
	cl, sv := [16]byte{10, 0, 0, 1}, [16]byte{10, 0, 0, 2}
	ts := int64(1e18)
	cseq, sseq := uint32(0xfffffff0), uint32(1000) // the client's wraps
	send := func(fromClient bool, flags uint8, payload string) {
		r := sieve.Record{TS: ts, Classes: 1, IPVersion: 4, Proto: 6, TCPFlags: flags, TxnKind: sieve.TxnTCP, TCPPayload: uint16(len(payload))}
		seq := &sseq
		if fromClient {
			r.Src, r.Dst, r.SrcPort, r.DstPort = cl, sv, 40000, 21
			seq = &cseq
		} else {
			r.Src, r.Dst, r.SrcPort, r.DstPort = sv, cl, 21, 40000
		}
		r.Txn = uint64(*seq) << 32
		ids.SetPayload([]byte(payload))
		a.Packet(&r, &ids)
		*seq += uint32(len(payload))
		if flags&fSYN != 0 {
			*seq++
		}
		ts += 1e6
	}
	send(true, fSYN, "")
	send(false, fSYN|0x10, "")
	send(true, 0x10, "US")
	send(true, 0x10, "ER bob\r\n")
	cseq -= 8
	send(true, 0x10, "ER bob\r\n") // retransmission: read once
	send(false, 0x10, "331 ok\r\n230 in\r\n")
	send(true, 0x10, "RETR a b.txt\r\n")
	send(false, 0x10, "550 no\r\n")
	// A gap in the client's stream: "RETR lost\r\n" never seen; the
	// next segment starts mid-line, read from the next line.
	cseq += 11
	send(true, 0x10, "xx\r\nSTOR up\r\n")
	send(false, 0x10, "150 go\r\n226 done\r\n")
	send(true, fFIN|0x10, "")
	send(false, fFIN|0x10, "")
	var got []string
	for _, x := range out.got {
		got = append(got, fmt.Sprintf("%s %s %s %d", x.User, x.Command, x.Arg, x.Reply))
	}
	if w := "[bob RETR a b.txt 550 bob STOR up 226]"; fmt.Sprint(got) != w {
		t.Errorf("transfers %v, want %s", got, w)
	}
	if a.Len() != 0 {
		t.Errorf("%d sessions after FIN both ways", a.Len())
	}
}

// TestFloods: sessions, and PORT commands within one session, held within
// their bounds.
func TestFloods(t *testing.T) {
	a := New(Config{MaxSessions: 100}, &sink{})
	var ids analyse.FlowIDs
	for i := range 10_000 {
		r := sieve.Record{TS: int64(i), Classes: 1, IPVersion: 4, Proto: 6, TCPFlags: fSYN, TxnKind: sieve.TxnTCP,
			SrcPort: uint16(i), DstPort: 21}
		r.Src[0], r.Src[1], r.Src[2] = 10, byte(i>>8), byte(i)
		a.Packet(&r, &ids)
		if a.Len() > 100 {
			t.Fatalf("%d sessions", a.Len())
		}
	}
	b := New(Config{}, &sink{})
	r := sieve.Record{TS: 1, Classes: 1, IPVersion: 4, Proto: 6, TCPFlags: 0x10, TxnKind: sieve.TxnTCP, SrcPort: 4000, DstPort: 21}
	r.Src[0], r.Dst[0] = 1, 2
	seq := uint32(0)
	for i := range 10_000 {
		p := fmt.Sprintf("PORT 1,0,0,0,%d,%d\r\n", (i>>8)&255, i&255)
		r.Txn, r.TCPPayload = uint64(seq)<<32, uint16(len(p))
		ids.SetPayload([]byte(p))
		b.Packet(&r, &ids)
		seq += uint32(len(p))
	}
	if len(b.exp) != 1 {
		t.Errorf("%d announcements held for one session", len(b.exp))
	}
}

// TestNoAlloc: control segments and data packets of a known session
// allocate nothing.
func TestNoAlloc(t *testing.T) {
	a := New(Config{}, &sink{})
	var ids analyse.FlowIDs
	r := sieve.Record{TS: 1, Classes: 1, IPVersion: 4, Proto: 6, TCPFlags: 0x10, TxnKind: sieve.TxnTCP, SrcPort: 4000, DstPort: 21}
	r.Src[0], r.Dst[0] = 1, 2
	line := []byte("NOOP\r\n")
	seq := uint32(0)
	step := func() {
		r.Txn, r.TCPPayload = uint64(seq)<<32, uint16(len(line))
		ids.SetPayload(line)
		a.Packet(&r, &ids)
		seq += uint32(len(line))
		r.TS++
		a.Advance(r.TS)
	}
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%v allocations per control segment", n)
	}
}

// FuzzControl: any bytes on a control connection, cut anywhere, either
// way: no panic, every record within its bounds.
func FuzzControl(f *testing.F) {
	f.Add([]byte("USER a\r\nPASV\r\n"), []byte("227 (1,0,0,2,1,2)\r\n"), []byte("RETR x\r\n"), []byte("226 ok\r\n"))
	f.Add([]byte("PORT 1,0,0,1,1,1\r\nLIST"), []byte("150-\r\n150 x\r\n"), []byte("\r\nSTOR "), []byte("5"))
	f.Fuzz(func(t *testing.T, c1, s1, c2, s2 []byte) {
		out := &sink{}
		a := New(Config{}, out)
		var ids analyse.FlowIDs
		seq := [2]uint32{}
		for i, p := range [][]byte{c1, s1, c2, s2} {
			d := i % 2
			r := sieve.Record{TS: int64(i), Classes: 1, IPVersion: 4, Proto: 6, TCPFlags: 0x18, TxnKind: sieve.TxnTCP,
				TCPPayload: uint16(min(len(p), 65535)), Txn: uint64(seq[d]) << 32}
			r.Src[0], r.Dst[0], r.SrcPort, r.DstPort = 1, 2, 4000, 21
			if d == 1 {
				r.Src[0], r.Dst[0], r.SrcPort, r.DstPort = 2, 1, 21, 4000
			}
			ids.SetPayload(p[:min(len(p), sieve.PayloadMax)])
			a.Packet(&r, &ids)
			seq[d] += uint32(len(p))
		}
		a.Close()
		for _, x := range out.got {
			if len(x.Command) > pdu.MaxFTPCommand || len(x.Arg) > pdu.MaxFTPArg || len(x.User) > pdu.MaxFTPUser || x.Reply > 999 {
				t.Errorf("record out of bounds: %+v", x)
			}
		}
	})
}

// TestFlagsOnly: a class with ftpData="flags" keeps only the SYN, FIN and
// RST packets of the data connections — 63 control packets and 16 data
// packets of the IPv4 capture (tcpdump: 'port 21', and 'not port 21 and
// tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0') — and the transfers
// still have their sizes (77 and 342 bytes, Zeek's), from the FIN's
// sequence numbers.
func TestFlagsOnly(t *testing.T) {
	xml := strings.Replace(controlOnly, `<flowClass name="ftp">`, `<flowClass name="ftp" ftpData="flags">`, 1)
	out, _, st := replayConf(t, filepath.Join(corpus(t, "zeek"), "ftp", "ipv4.pcap"), xml)
	if st.Wanted != 63+16 {
		t.Errorf("sieve kept %d packets, want 79", st.Wanted)
	}
	var got []string
	for _, x := range out.got {
		got = append(got, fmt.Sprint(string(x.Command), " ", x.Bytes))
	}
	if w := "[LIST 342 RETR 77 LIST 342 RETR 77]"; fmt.Sprint(got) != w {
		t.Errorf("transfers %v, want %s", got, w)
	}
}
