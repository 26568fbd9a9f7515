package rtt

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/sieve"
)

type sink struct{ got []pdu.RTT }

func (s *sink) RTT(r *pdu.RTT) {
	c := *r
	c.Hist = append([]pdu.Bucket(nil), r.Hist...)
	s.got = append(s.got, c)
}
func (s *sink) FlowDef(pdu.FlowDef)                {}
func (s *sink) Sighting(pdu.Sighting, uint8, bool) {}

func corpus(t *testing.T, sub string) string {
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

// run replays a capture through a sieve and an analyser with the round-trip
// analysis (one class, every packet, granular on nothing: one flow).
func run(t *testing.T, path string, g flow.Set) (*sink, *Analysis) {
	t.Helper()
	cfg := &conf.Config{Interval: time.Hour,
		Probes:  []conf.Probe{{Name: "p", ID: 1, Interfaces: []conf.Interface{{Name: "i0"}}}},
		Classes: []conf.Class{{Name: "all", Granular: g}}}
	sv, err := sieve.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := &sink{}
	r := New(Config{Interval: time.Hour}, out)
	an, err := analyse.New(cfg, 0, out, analyse.Config{Analyses: []analyse.Analysis{r}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
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
			an.Packet(&rec)
		}
	}
	an.Close()
	return out, r
}

// Round trips of the Zeek corpus captures against RTTs worked out from
// tcpdump's own reading of the files (`tcpdump -tt -nr F`): for each
// response, its time minus the time of the request it answers, matched by
// what tcpdump prints — echo id and sequence; DNS id; NTP server address
// (one query in flight per server); SNMP client port (one request per
// port) — in µs (the captures' resolution), e.g. the first of 5-pings:
// 1607454604.012895 − 1607454603.986596 = 0.026299 s.
func TestCorpusRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		file       string
		kind       uint8
		rtts       []int64 // µs
		unanswered uint64
	}{
		{"icmp/5-pings.pcap", KindEcho, []int64{26299, 23251, 32342, 30552, 29198}, 0},
		{"icmp/icmp-ping.pcap", KindEcho, []int64{3951, 3915}, 0},
		{"dns/long-connection.pcap", KindDNS, []int64{832133, 139024, 506, 48911, 237668, 387, 16538, 16665, 233143, 212992, 72604}, 0},
		{"ntp/ntp.pcap", KindNTP, []int64{47021, 36018, 47100, 32227, 37865, 37855, 68187, 65065, 65072, 72691, 72681, 35342,
			42686, 38466, 47618, 45983}, 0},
		// 30 requests, 28 answered (tcpdump shows two GetRequests without
		// a GetResponse).
		// TCP handshakes, by `tcpdump -S` (absolute numbers): a SYN/ACK
		// answers the SYN whose sequence number + 1 it acknowledges; the
		// ACK answers the SYN/ACK likewise. The FTP data connections of
		// the active transfers are opened by the server, so their halves
		// swap (server side ≈ 45 µs, client side ≈ 55.7 ms).
		{"ftp/ipv4.pcap", KindSYN, []int64{55533, 55284, 54829, 45, 36}, 0},
		{"ftp/ipv4.pcap", KindSYNACK, []int64{33, 44, 30, 55759, 55660}, 0},
		{"ftp/ipv6.pcap", KindSYN, []int64{106877, 108178, 108659, 107723, 302, 135}, 0},
		{"ftp/ipv6.pcap", KindSYNACK, []int64{137, 197, 69, 76, 108049, 107998}, 0},
		// TCP timestamps: the RTTs and counts printed by a script over
		// tshark's fields of the file (frame.time_epoch, ip/ipv6 src/dst,
		// tcp ports, tcp.flags.ack, tcp.options.timestamp.tsval/tsecr;
		// tshark 4.0): per direction a TSval is a request when it is later
		// than the last one recorded, the first segment of the opposite
		// direction with ACK set echoing it as TSecr answers it (its time
		// minus the request's); at the end a TSval without an echo of
		// itself or of a later one of its direction is unanswered, else
		// passed over (ipv4: 12, ipv6: 15). The first ones are the
		// handshakes' (55533 µs SYN → SYN/ACK, 33 µs SYN/ACK → ACK, as
		// above); 111742 µs and 111358 µs are a TSval echoed only by the
		// second segment after it (the peer's delayed ACK).
		{"ftp/ipv4.pcap", KindTS, []int64{55533, 33, 59295, 56238, 57, 56136, 43, 55835, 55927, 55582, 143, 55284, 44, 55405, 35,
			56936, 55364, 55410, 55517, 68, 55672, 54829, 30, 55962, 56049, 55279, 55271, 55798, 48, 55530, 45, 55759, 111742,
			55957, 55761, 25, 55753, 71, 55526, 36, 111358, 55660, 36996, 55845, 55806, 55235, 69, 55813}, 1},
		{"ftp/ipv6.pcap", KindTS, []int64{106877, 137, 117809, 106992, 149, 107911, 178, 109277, 107825, 108560, 108032, 140,
			108600, 108539, 185, 108178, 197, 108540, 155, 111020, 108006, 109392, 108300, 159, 108659, 69, 107498, 107876,
			107607, 108887, 106764, 148, 107909, 108149, 107723, 76, 108235, 183, 108527, 106583, 107740, 107502, 107778, 126,
			108542, 170, 302, 108049, 216983, 107264, 111709, 108272, 170, 107738, 162, 109566, 174, 135, 107998, 217314,
			107521, 108529, 108568, 134, 109771}, 0},
		{"tcp/handshake-reorder.pcap", KindTS, []int64{294, 69131, 1346, 68982, 144}, 1},
		{"snmp/snmpv1_get.pcap", KindSNMP, []int64{673, 5872, 754, 6580, 838, 2730, 661, 5911, 1054, 6505, 868, 2729, 696, 5886,
			775, 6505, 1101, 2771, 657, 700, 1003, 805, 1304, 853014, 1015, 4612, 631, 637}, 2},
	} {
		t.Run(tc.file+"/"+pdu.RTTKindName(tc.kind), func(t *testing.T) {
			out, an := run(t, filepath.Join(corpus(t, "zeek"), tc.file), 0)
			if w, ok := map[string]uint64{"ftp/ipv4.pcap": 12, "ftp/ipv6.pcap": 15, "tcp/handshake-reorder.pcap": 2}[tc.file]; ok && tc.kind == KindTS && an.PassedOver != w {
				t.Errorf("%d TSvals passed over, want %d", an.PassedOver, w)
			}
			var count, unans uint64
			var sum, mn, mx int64
			var hsum uint64
			for _, r := range out.got {
				if r.Kind != tc.kind {
					if r.Kind != KindSYN && r.Kind != KindSYNACK && r.Kind != KindTS {
						t.Errorf("record of kind %d: %+v", r.Kind, r)
					}
					continue
				}
				if r.Count > 0 {
					if count == 0 || r.Min < mn {
						mn = r.Min
					}
					mx = max(mx, r.Max)
				}
				count += r.Count
				unans += r.Unanswered
				sum += r.Sum
				for _, b := range r.Hist {
					hsum += b.Count
				}
			}
			var wsum, wmin, wmax int64
			for i, v := range tc.rtts {
				v *= 1000
				wsum += v
				if i == 0 || v < wmin {
					wmin = v
				}
				wmax = max(wmax, v)
			}
			if count != uint64(len(tc.rtts)) || sum != wsum || mn != wmin || mx != wmax || unans != tc.unanswered || hsum != count {
				t.Errorf("count %d sum %d min %d max %d unanswered %d (hist %d); want %d %d %d %d %d",
					count, sum, mn, mx, unans, hsum, len(tc.rtts), wsum, wmin, wmax, tc.unanswered)
			}
		})
	}
}

func echo(ts int64, req bool, id uint64, ci int) *sieve.Record {
	r := &sieve.Record{TS: ts, Classes: 1 << ci, IPVersion: 4, Proto: 1, TxnKind: sieve.TxnEchoReply, Txn: id}
	r.Src[0], r.Dst[0] = 10, 20
	if req {
		r.TxnKind = sieve.TxnEchoReq
	} else {
		r.Src, r.Dst = r.Dst, r.Src
	}
	return r
}

// A flood of requests that are never answered keeps the table at its
// bound; every request is accounted unanswered exactly once.
func TestFloodBounded(t *testing.T) {
	out := &sink{}
	const bound = 1000
	a := New(Config{Interval: time.Minute, MaxPending: bound, Timeout: time.Hour}, out)
	var ids analyse.FlowIDs
	n := 100_000
	for i := range n {
		a.Packet(echo(int64(i)*1000, true, uint64(i), 0), &ids)
		if a.Pending() > bound {
			t.Fatalf("%d pending, bound %d", a.Pending(), bound)
		}
		if len(a.order)-a.oh > bound {
			t.Fatalf("%d in the timeout queue", len(a.order)-a.oh)
		}
	}
	a.Close()
	var un uint64
	for _, r := range out.got {
		un += r.Unanswered
	}
	if un != uint64(n) || a.Evicted != uint64(n-bound) {
		t.Errorf("unanswered %d, evicted %d; want %d, %d", un, a.Evicted, n, n-bound)
	}
}

// A request unanswered after the timeout counts in its interval; a
// response after that matches nothing; an interval's record leaves once
// no request of it can still be answered.
func TestTimeoutAndIntervals(t *testing.T) {
	out := &sink{}
	a := New(Config{Interval: 10 * time.Second, Timeout: 2 * time.Second}, out)
	var ids analyse.FlowIDs
	ids.Set(0, 7)
	s := int64(100 * time.Second)
	a.Packet(echo(s+1e9, true, 1, 0), &ids)
	a.Packet(echo(s+1e9+5e6, false, 1, 0), &ids) // 5 ms
	a.Packet(echo(s+9e9, true, 2, 0), &ids)      // never answered in time
	a.Advance(s + 10e9)
	if len(out.got) != 0 {
		t.Fatalf("sent before its requests could time out: %+v", out.got)
	}
	a.Advance(s + 11e9 + 1)
	a.Packet(echo(s+11e9+2, false, 2, 0), &ids) // too late
	a.Advance(s + 12e9)
	if len(out.got) != 1 {
		t.Fatalf("%d records, want 1: %+v", len(out.got), out.got)
	}
	r := out.got[0]
	if r.Flow != 7 || r.Start != s || r.Count != 1 || r.Sum != 5e6 || r.Min != 5e6 || r.Max != 5e6 || r.Unanswered != 1 || r.SumSqLo != 25e12 {
		t.Errorf("record %+v", r)
	}
}

func TestPacketAllocs(t *testing.T) {
	out := &sink{}
	a := New(Config{Interval: time.Minute}, out)
	var ids analyse.FlowIDs
	i := uint64(0)
	step := func() {
		i++
		ts := int64(i) * 1e6
		a.Packet(echo(ts, true, i, 0), &ids)
		a.Packet(echo(ts+500, false, i, 0), &ids)
	}
	for range 100 {
		step()
	}
	if n := testing.AllocsPerRun(1000, step); n > 0.01 {
		t.Errorf("%.2f allocs per transaction", n)
	}
}

// Round trips of tcpdump's test captures against tshark 4.0's reading of
// them: DNS from its own query/response matching (`tshark -r F -Y
// dns.flags.response==1 -T fields -e dns.time`, µs); NTP by pairing each
// server packet (mode 4) with the client packet (mode 3) whose transmit
// timestamp is its origin timestamp (fields frame.time_epoch,
// ntp.flags.mode, ntp.org, ntp.xmt), the server's frame time minus the
// client's. Every query and client packet of these files is answered.
// The corpus has no SNMP response tshark matches, and its answered ICMP
// echoes (tshark icmp.resptime over all 830 files) are on link layers the
// sieve does not read — Cisco HDLC, ARCNET, Solaris IPNET — or inside
// tunnels (GRE, ERSPAN, Geneve, VXLAN, MPLS over UDP): the Zeek captures
// above check those kinds.
func TestTcpdumpCorpusRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		file string
		kind uint8
		rtts []int64 // µs
	}{
		{"edns-opts.pcap", KindDNS, []int64{22121, 21877, 22025, 22014, 21974, 21866, 21987, 21811, 21819, 21898, 21765, 21871,
			21813, 21946, 21789, 21833, 21835, 21718, 22284, 21935, 21777}},
		{"dnssec.pcap", KindDNS, []int64{342, 338, 310}},
		{"dns-badcookie.pcap", KindDNS, []int64{248, 227}},
		{"dns-badvers.pcap", KindDNS, []int64{24335, 13985}},
		{"dns-uri.pcap", KindDNS, []int64{157, 151}},
		{"dns_udp.pcap", KindDNS, []int64{130282}},
		{"ntp.pcap", KindNTP, []int64{133, 199, 261, 126}},
		{"ntp-time.pcap", KindNTP, []int64{301}},
		{"ntp-time-ef.pcap", KindNTP, []int64{4532}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out, _ := run(t, filepath.Join(corpus(t, "tcpdump"), tc.file), 0)
			var count, unans uint64
			var sum, mn, mx int64
			for _, r := range out.got {
				if r.Kind != tc.kind {
					t.Errorf("record of kind %d: %+v", r.Kind, r)
					continue
				}
				if r.Count > 0 {
					if count == 0 || r.Min < mn {
						mn = r.Min
					}
					mx = max(mx, r.Max)
				}
				count += r.Count
				unans += r.Unanswered
				sum += r.Sum
			}
			var wsum, wmin, wmax int64
			for i, v := range tc.rtts {
				v *= 1000
				wsum += v
				if i == 0 || v < wmin {
					wmin = v
				}
				wmax = max(wmax, v)
			}
			if count != uint64(len(tc.rtts)) || sum != wsum || mn != wmin || mx != wmax || unans != 0 {
				t.Errorf("count %d sum %d min %d max %d unanswered %d; want %d %d %d %d 0",
					count, sum, mn, mx, unans, len(tc.rtts), wsum, wmin, wmax)
			}
		})
	}
}
