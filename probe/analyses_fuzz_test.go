package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket/pcapgo"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/analyse/counters"
	"github.com/tmon-project/tmon/analyse/ftp"
	"github.com/tmon-project/tmon/analyse/rtt"
	"github.com/tmon-project/tmon/analyse/tcpconn"
	"github.com/tmon-project/tmon/sieve"
)

// fuzzStream encodes IP packets for FuzzAnalyses: each a 2-byte length, a
// 2-byte time step in ms, the packet (raw IP, no link header).
func fuzzStream(pkts [][]byte, stepMs []uint16) []byte {
	var b []byte
	for i, p := range pkts {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		b = binary.BigEndian.AppendUint16(b, stepMs[i])
		b = append(b, p...)
	}
	return b
}

// fuzzSeed turns a capture of the Zeek corpus (Ethernet) into a stream.
func fuzzSeed(f *testing.F, sub string) []byte {
	dir, _ := filepath.Abs("..")
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "shared", "corpus", "zeek", sub))
	if err != nil {
		f.Fatal(err)
	}
	r, err := pcapgo.NewReader(bytes.NewReader(raw))
	if err != nil {
		f.Fatal(err)
	}
	var pkts [][]byte
	var steps []uint16
	var last int64
	for {
		d, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Fatal(err)
		}
		ts := ci.Timestamp.UnixMilli()
		if last == 0 {
			last = ts
		}
		pkts = append(pkts, append([]byte(nil), d[14:]...))
		steps = append(steps, uint16(min(ts-last, 65535)))
		last = ts
	}
	return fuzzStream(pkts, steps)
}

// FuzzAnalyses: any stream of IP packets through the sieve (with
// reassembly and the FTP expectations) and every protocol analysis —
// counters, round trips (TCP timestamps included), TCP connections, FTP —
// never panics, and leaves no state after Close: every table empty, every
// request accounted. Seeds: the Zeek corpus's FTP sessions over IPv4 and
// IPv6 (PORT/EPRT, PASV/EPSV, TCP timestamps on every segment), a
// fragmented capture and the DNS and NTP ones.
func FuzzAnalyses(f *testing.F) {
	for _, sub := range []string{"ftp/ipv4.pcap", "ftp/ipv6.pcap", "ipv4/fragmented-1.pcap", "dns/long-connection.pcap", "ntp/ntp.pcap"} {
		f.Add(fuzzSeed(f, sub))
	}
	cfg := everythingConf(f, 9)
	f.Fuzz(func(t *testing.T, stream []byte) {
		sv, err := sieve.Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out := newOutput(1400)
		out.sender = nopSender{}
		plug := analyses(cfg, out)
		an, err := analyse.New(cfg, 0, out, analyse.Config{Analyses: plug})
		if err != nil {
			t.Fatal(err)
		}
		ts := int64(1_700_000_000) * 1e9
		for len(stream) >= 4 {
			n := int(binary.BigEndian.Uint16(stream))
			ts += int64(binary.BigEndian.Uint16(stream[2:])) * 1e6
			stream = stream[4:]
			n = min(n, len(stream))
			var rec sieve.Record
			if ok, _ := sv.Packet(stream[:n], ts, 0, sieve.LinkRaw, &rec); ok {
				if rec.Flags&sieve.FlagPayload != 0 {
					an.PacketPayload(&rec, sv.Payload())
				} else {
					an.Packet(&rec)
				}
			}
			an.Advance(ts)
			stream = stream[n:]
		}
		sv.CloseReassembly()
		an.Close()
		if st := sv.Reassembly(); st.Held != 0 || st.HeldBytes != 0 {
			t.Errorf("reassembly holds %+v after Close", st)
		}
		for _, p := range plug {
			switch a := p.(type) {
			case *counters.Counter:
				if a.Len() != 0 {
					t.Errorf("%d counters held", a.Len())
				}
			case *rtt.Analysis:
				if a.Pending() != 0 {
					t.Errorf("%d round trips pending", a.Pending())
				}
			case *tcpconn.Analysis:
				if a.Len() != 0 {
					t.Errorf("%d TCP connections held", a.Len())
				}
			case *ftp.Analysis:
				if a.Len() != 0 {
					t.Errorf("%d FTP sessions held", a.Len())
				}
			}
		}
	})
}
