package pdu

import (
	"net/netip"
	"reflect"
	"testing"
)

const goldenT0 int64 = 1_700_000_000_000_000_000

var goldenTCPConn = TCPConn{Flow: 9, Report: goldenT0 - goldenT0%60e9, Conn: 3,
	First: goldenT0 + 1234, Last: goldenT0 + 1234 + 112_432_000, Status: TCPFin, State: 3,
	Orig: netip.MustParseAddrPort("141.142.220.235:37604"), Resp: netip.MustParseAddrPort("199.233.217.249:56666"),
	O: TCPSide{Packets: 4}, R: TCPSide{Packets: 4, Bytes: 342, Retrans: 1, OutOfOrder: 2, ZeroWindow: 3},
	History: []byte("ShAdfFa")}

func TestTCPConnRoundTrip(t *testing.T) {
	b := NewBuilder(1200)
	v6 := goldenTCPConn
	v6.Orig, v6.Resp = netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("[2001:db8::2]:65535")
	v6.Status, v6.State, v6.History = TCPOpen, 13, nil
	v6.O = TCPSide{Packets: 1 << 40, Bytes: 1<<64 - 1}
	in := []TCPConn{goldenTCPConn, v6}
	for i := range in {
		if !b.AddTCPConn(&in[i]) {
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
	var r TCPConnReader
	var x TCPConn
	r.Reset(f.Body)
	for i := range in {
		if !r.Next(&x) {
			t.Fatalf("record %d: %v", i, r.Err())
		}
		y := x
		y.History = append([]byte{}, x.History...)
		w := in[i]
		if w.History == nil {
			w.History = []byte{}
		}
		if !reflect.DeepEqual(y, w) {
			t.Errorf("record %d: %+v became %+v", i, w, y)
		}
	}
	if r.Next(&x) || r.Err() != nil {
		t.Errorf("after the last record: %v", r.Err())
	}
	// Refused: history too long, mixed families, no address.
	for name, c := range map[string]TCPConn{
		"history": {Orig: goldenTCPConn.Orig, Resp: goldenTCPConn.Resp, History: make([]byte, MaxTCPHistory+1), Status: 1, State: 1},
		"mixed":   {Orig: goldenTCPConn.Orig, Resp: v6.Resp, Status: 1, State: 1},
		"none":    {Status: 1, State: 1},
	} {
		if b.AddTCPConn(&c) {
			t.Errorf("%s: record taken", name)
		}
	}
}

// Records that cannot be true are malformed: unknown status or state, no
// packet, a bad family, a truncated record.
func TestTCPConnMalformed(t *testing.T) {
	enc := func(c TCPConn) []byte {
		b := NewBuilder(MinPDUSize)
		// encode without the builder's checks
		var w recBuf
		w.uvarint(uint64(c.Flow))
		w.fixed64(c.Report)
		w.uvarint(c.Conn)
		w.fixed64(c.First)
		w.uvarint(uint64(c.Last - c.First))
		w.byte1(c.Status)
		w.byte1(c.State)
		w.addrPort(c.Orig)
		w.addrPort(c.Resp)
		for _, s := range [2]*TCPSide{&c.O, &c.R} {
			w.uvarint(s.Packets)
			w.uvarint(s.Bytes)
			w.uvarint(s.Retrans)
			w.uvarint(s.OutOfOrder)
			w.uvarint(s.ZeroWindow)
		}
		w.str(c.History)
		b.addRecord(TypeTCPConn, &w)
		return b.Finish(goldenHeader)
	}
	with := func(f func(*TCPConn)) []byte { c := goldenTCPConn; f(&c); return enc(c) }
	cases := map[string][]byte{
		"status":  with(func(c *TCPConn) { c.Status = 7 }),
		"state":   with(func(c *TCPConn) { c.State = 14 }),
		"packets": with(func(c *TCPConn) { c.O.Packets, c.R.Packets = 0, 0 }),
		"family":  with(func(c *TCPConn) { c.Resp = netip.MustParseAddrPort("[::1]:2") }),
	}
	g := enc(goldenTCPConn)
	cut := append([]byte{}, g...)
	cases["truncated"] = cut
	for name, d := range cases {
		if name == "truncated" {
			// shorten the body by one byte, fixing the lengths and CRC
			b := NewBuilder(MinPDUSize)
			var w recBuf
			f, _ := Parse(g)
			w.n = copy(w.b[:], f.Body[:len(f.Body)-1])
			b.addRecord(TypeTCPConn, &w)
			d = b.Finish(goldenHeader)
		}
		f, err := Parse(d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := Validate(&f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
