package rtt

import (
	"runtime"
	"testing"
	"time"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/sieve"
)

// seg is a TCP segment of the connection 10.0.0.1:port ↔ 10.0.0.2:port+1
// at ts ns: from the client when c2s, with ACK set and the given
// timestamps.
func seg(ts int64, port uint16, c2s bool, val, ecr uint32) *sieve.Record {
	r := &sieve.Record{TS: ts, Classes: 1, IPVersion: 4, Proto: 6, TxnKind: sieve.TxnTCP, TCPFlags: 0x10,
		SrcPort: port, DstPort: port + 1, TSVal: val, TSEcr: ecr}
	r.Src[0], r.Src[3], r.Dst[0], r.Dst[3] = 10, 1, 10, 2
	if !c2s {
		r.Src, r.Dst, r.SrcPort, r.DstPort = r.Dst, r.Src, r.DstPort, r.SrcPort
	}
	return r
}

// TestTSEchoes: generated segments whose round trips are worked out by
// hand in the comments (times in ms; C client, S server): the same TSval
// on several segments (one clock tick, and a retransmission carrying an
// old one) is one request timed from its first segment; an echo of a value
// already answered, or never recorded, matches nothing; a TSval passed
// over by the echo of a later one is neither matched nor unanswered;
// TSvals wrapping past 2³² stay in order; a TSval echoed by nothing later
// is unanswered.
func TestTSEchoes(t *testing.T) {
	const ms = int64(time.Millisecond)
	out := &sink{}
	a := New(Config{Interval: time.Minute, Timeout: 10 * time.Second}, out)
	var ids analyse.FlowIDs
	ids.Set(0, 3)
	b := int64(time.Hour) // an interval start
	const big = 104 + 1<<31 - 10
	for _, s := range []*sieve.Record{
		seg(b+0*ms, 40000, true, 100, 0),            // C100 at 0 (TSecr 0: no echo)
		seg(b+1*ms, 40000, true, 100, 0),            // the same tick: not a request
		seg(b+20*ms, 40000, false, 5000, 100),       // echoes C100: 20; S5000 at 20
		seg(b+21*ms, 40000, false, 5000, 100),       // C100 again: nothing; 5000 not new
		seg(b+30*ms, 40000, true, 101, 5000),        // echoes S5000: 10; C101 at 30
		seg(b+31*ms, 40000, true, 102, 5000),        // C102 at 31
		seg(b+32*ms, 40000, true, 101, 5000),        // a retransmission carrying C101: not a request
		seg(b+60*ms, 40000, false, 5001, 101),       // echoes C101: 30 (from its first segment); S5001 at 60
		seg(b+61*ms, 40000, false, 5002, 103),       // echoes 103, never sent: nothing; S5002 at 61
		seg(b+62*ms, 40000, true, 104, 5002),        // echoes S5002: 1; S5001 passed over; C104 at 62
		seg(b+70*ms, 40000, false, 5003, 104),       // echoes C104: 8; C102 passed over; S5003 at 70
		seg(b+71*ms, 40000, false, 5004, 101),       // an old value echoed: nothing; S5004 at 71
		seg(b+80*ms, 40000, true, 0xfffffffe, 5004), // echoes S5004: 9; S5003 passed over; 0xfffffffe is 106 before 104 modulo 2³²: not a request
		seg(b+100*ms, 40000, true, big, 5004),       // 2³¹ − 10 after 104: C(big) at 100
		seg(b+110*ms, 40000, false, 5005, big),      // echoes C(big): 10; S5005 at 110, never echoed: unanswered
		// Another connection, its client's TSvals crossing 2³².
		seg(b+200*ms, 40002, true, 0xfffffffe, 0),  // C' at 200
		seg(b+205*ms, 40002, true, 0xffffffff, 0),  // C' at 205
		seg(b+206*ms, 40002, true, 1, 0),           // C'1 at 206 (0 is skipped: taken as absent)
		seg(b+220*ms, 40002, false, 7, 0xffffffff), // echoes C'0xffffffff: 15; C'0xfffffffe passed over; S'7 at 220
		seg(b+230*ms, 40002, false, 8, 1),          // echoes C'1: 24; S'8 at 230
		seg(b+240*ms, 40002, true, 2, 8),           // echoes S'8: 10; S'7 passed over; C'2 at 240, never echoed: unanswered
	} {
		a.Packet(s, &ids)
	}
	// Every request of the interval has timed out by then.
	a.Advance(b + time.Minute.Nanoseconds() + 11*int64(time.Second))
	var count, unans uint64
	var sum, mn, mx int64
	for _, r := range out.got {
		if r.Kind != KindTS || r.Flow != 3 || r.Start != b {
			t.Errorf("record %+v", r)
		}
		count += r.Count
		unans += r.Unanswered
		sum += r.Sum
		if r.Count > 0 {
			if mn == 0 || r.Min < mn {
				mn = r.Min
			}
			mx = max(mx, r.Max)
		}
	}
	// 20 + 10 + 30 + 1 + 8 + 9 + 10 + 15 + 24 + 10 = 137 ms in 10.
	if count != 10 || sum != 137*ms || mn != 1*ms || mx != 30*ms {
		t.Errorf("count %d sum %d min %d max %d, want 10, 137 ms, 1 ms, 30 ms", count, sum, mn, mx)
	}
	// Unanswered: S5005, C'2. Passed over: S5001, C102, S5003, C'0xfffffffe, S'7.
	if unans != 2 || a.PassedOver != 5 {
		t.Errorf("unanswered %d, passed over %d; want 2, 5", unans, a.PassedOver)
	}
	if a.Pending() != 0 || len(a.tsDirs) != 0 {
		t.Errorf("%d pending, %d directions left after the timeout", a.Pending(), len(a.tsDirs))
	}
}

// A flood of connections each sending one TSval never echoed keeps the
// direction table and the pending table at their bound; every request
// recorded is accounted unanswered exactly once, the others untracked.
func TestTSFloodBounded(t *testing.T) {
	out := &sink{}
	const bound = 1000
	a := New(Config{Interval: time.Minute, MaxPending: bound, Timeout: time.Hour}, out)
	var ids analyse.FlowIDs
	n := 50_000
	for i := range n {
		r := seg(int64(i)*1000, uint16(i), true, uint32(i+1), 0)
		r.Src[1], r.Src[2] = byte(i>>16), byte(i>>8)
		a.Packet(r, &ids)
		if a.Pending() > bound || len(a.tsDirs) > bound {
			t.Fatalf("%d pending, %d directions, bound %d", a.Pending(), len(a.tsDirs), bound)
		}
	}
	// Timed out and aged out, the table takes new directions again.
	end := int64(n)*1000 + 2*int64(time.Hour)
	a.Advance(end)
	if len(a.tsDirs) != 0 {
		t.Errorf("%d directions left after the timeout", len(a.tsDirs))
	}
	a.Packet(seg(end, 1, true, 5, 0), &ids)
	a.Close()
	var un uint64
	for _, r := range out.got {
		un += r.Unanswered
	}
	if un != bound+1 || a.Untracked != uint64(n-bound) {
		t.Errorf("unanswered %d, untracked %d; want %d, %d", un, a.Untracked, bound+1, n-bound)
	}
}

func TestTSPacketAllocs(t *testing.T) {
	out := &sink{}
	a := New(Config{Interval: time.Minute}, out)
	var ids analyse.FlowIDs
	i := uint32(0)
	step := func() {
		i++
		ts := int64(i) * 1e6
		a.Packet(seg(ts, 40000, true, i, i+1000), &ids)
		a.Packet(seg(ts+500, 40000, false, i+1001, i), &ids)
	}
	for range 100 {
		step()
	}
	if n := testing.AllocsPerRun(1000, step); n > 0.01 {
		t.Errorf("%.2f allocs per exchange", n)
	}
}

// BenchmarkTSSegments: the cost per TCP segment with timestamps of a bulk
// transfer seen by the round-trip analysis — data segments one way, a
// clock tick every 4 segments, an ACK back for every second one echoing
// the earliest unacknowledged TSval (delayed ACKs), over 64 connections.
func BenchmarkTSSegments(b *testing.B) {
	out := &sink{}
	a := New(Config{Interval: time.Minute}, out)
	var ids analyse.FlowIDs
	recs := make([]*sieve.Record, 0, 64*64)
	for c := range 64 {
		port := uint16(10000 + 2*c)
		for i := range 32 {
			ts := int64(i) * 250_000
			val := uint32(1000 + i/4)
			recs = append(recs, seg(ts, port, true, val, 7000))
			if i%2 == 1 {
				recs = append(recs, seg(ts+40_000, port, false, 7000+uint32(i/8), uint32(1000+(i-1)/4)))
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := recs[i%len(recs)]
		if i%len(recs) == 0 && i > 0 {
			// the next second of the same connections
			for _, r := range recs {
				r.TS += int64(time.Second)
				r.TSVal += 100
				if r.TSEcr != 0 {
					r.TSEcr += 100
				}
			}
			a.Advance(recs[0].TS)
		}
		a.Packet(r, &ids)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "segments/s")
}

// TestTSMemoryPer100k quotes the memory of the timestamp matching for
// 100 000 open connections using TCP timestamps: both directions followed,
// one TSval of each connection waiting for its echo.
func TestTSMemoryPer100k(t *testing.T) {
	a := New(Config{Interval: time.Minute, Timeout: time.Hour}, &sink{})
	var ids analyse.FlowIDs
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range 100_000 {
		c := seg(int64(i)*1000, uint16(i), true, 100, 0)
		c.Src[1], c.Src[2] = byte(i>>16), byte(i>>8)
		s := seg(int64(i)*1000+500, uint16(i), false, 7000, 100)
		s.Dst = c.Src
		a.Packet(c, &ids)
		a.Packet(s, &ids)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if a.Pending() != 100_000 || len(a.tsDirs) != 200_000 || a.Matched != 100_000 {
		t.Fatalf("%d pending, %d directions, %d matched", a.Pending(), len(a.tsDirs), a.Matched)
	}
	per := float64(m1.HeapAlloc-m0.HeapAlloc) / 100_000
	t.Logf("TCP timestamps: %.0f bytes per connection (two directions, one TSval waiting), %.1f MB per 100 k", per, per*100_000/1e6)
	if per > 600 {
		t.Errorf("%.0f bytes per connection", per)
	}
}

// The probe's analysis.bound event says what the bound cost.
func TestSummary(t *testing.T) {
	a := New(Config{Interval: time.Minute, MaxPending: 64}, &sink{})
	if s := a.Summary(); s != "" {
		t.Errorf("summary with nothing left out: %q", s)
	}
	var ids analyse.FlowIDs
	for i := range 100 {
		r := seg(int64(i), uint16(i), true, 5, 0)
		a.Packet(r, &ids)
	}
	if w := "round trips matched=0 unanswered=0 evicted (table full, 64)=0 tcp timestamp directions not followed (table full)=36"; a.Summary() != w {
		t.Errorf("summary %q, want %q", a.Summary(), w)
	}
}
