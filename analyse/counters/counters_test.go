package counters

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/sieve"
)

type sink struct{ got []pdu.Counters }

func (s *sink) Counters(c pdu.Counters) { s.got = append(s.got, c) }

type total struct{ packets, bytes, frags, icmp, sq uint64 }

func (t *total) add(c pdu.Counters) {
	t.packets += c.Packets
	t.bytes += c.Bytes
	t.frags += c.Fragments
	t.icmp += c.ICMPErrors
	t.sq += c.SizeSumSq
}

func ids(v ...uint32) *analyse.FlowIDs {
	var f analyse.FlowIDs
	// FlowIDs is filled by the analyser; tests set it through a record of
	// their own making.
	setIDs(&f, v)
	return &f
}

// Records of random flows, sizes, fragments and ICMP errors over several
// intervals: what the analysis sends per (flow, interval) equals the sums
// computed here record by record, each interval leaves only once Advance
// passes its end, and Close sends the rest.
func TestCountsPerFlowAndInterval(t *testing.T) {
	const iv = int64(10 * time.Second)
	out := &sink{}
	c := New(10*time.Second, 0, out)
	rng := rand.New(rand.NewPCG(1, 2))
	type k struct {
		start int64
		flow  uint32
	}
	want := map[k]*pdu.Counters{}
	t0 := int64(1_800_000_000) * 1e9
	ts := t0
	for i := range 20000 {
		ts += rng.Int64N(3e6)
		r := sieve.Record{TS: ts, Length: uint32(28 + rng.IntN(1472)), Classes: 0b101}
		if rng.IntN(10) == 0 {
			r.Flags |= sieve.FlagFragment
		}
		if rng.IntN(50) == 0 {
			r.Flags |= sieve.FlagICMPError
		}
		f := ids(uint32(rng.IntN(5)), 0, uint32(100+rng.IntN(3)))
		c.Packet(&r, f)
		for _, cl := range []int{0, 2} {
			key := k{ts - ts%iv, f.Of(cl)}
			w := want[key]
			if w == nil {
				w = &pdu.Counters{Flow: key.flow, Start: key.start}
				want[key] = w
			}
			if r.Flags&sieve.FlagICMPError != 0 {
				w.ICMPErrors++
				continue
			}
			if w.Packets == 0 || r.Length < w.SizeMin {
				w.SizeMin = r.Length
			}
			w.SizeMax = max(w.SizeMax, r.Length)
			w.Packets++
			w.Bytes += uint64(r.Length)
			w.SizeSumSq += uint64(r.Length) * uint64(r.Length)
			if r.Flags&sieve.FlagFragment != 0 {
				w.Fragments++
			}
		}
		if i%1000 == 999 {
			c.Advance(ts)
			for _, g := range out.got {
				if g.Start+iv > ts {
					t.Fatalf("interval %d sent at %d, before its end", g.Start, ts)
				}
			}
		}
	}
	c.Close()
	if c.Len() != 0 {
		t.Errorf("%d entries left after Close", c.Len())
	}
	got := map[k]pdu.Counters{}
	for _, g := range out.got {
		key := k{g.Start, g.Flow}
		if _, dup := got[key]; dup {
			t.Errorf("two records of %+v without a full table", key)
		}
		got[key] = g
	}
	if len(got) != len(want) {
		t.Errorf("%d records, want %d", len(got), len(want))
	}
	for key, w := range want {
		if got[key] != *w {
			t.Errorf("%+v: got %+v, want %+v", key, got[key], *w)
		}
	}
}

// A flood of new flows keeps the table at its bound: entries are sent
// early, and nothing is lost — the records add up to every packet.
func TestFloodBounded(t *testing.T) {
	out := &sink{}
	const bound = 1000
	c := New(time.Minute, bound, out)
	var f analyse.FlowIDs
	n := 200_000
	for i := range n {
		setIDs(&f, []uint32{uint32(i)})
		r := sieve.Record{TS: int64(i), Length: 100, Classes: 1}
		c.Packet(&r, &f)
		if c.Len() > bound {
			t.Fatalf("%d entries held, bound %d", c.Len(), bound)
		}
	}
	c.Close()
	var tot total
	for _, g := range out.got {
		tot.add(g)
	}
	if tot.packets != uint64(n) || tot.bytes != uint64(n)*100 || c.Early == 0 {
		t.Errorf("packets %d bytes %d early %d, want %d, %d, > 0", tot.packets, tot.bytes, c.Early, n, n*100)
	}
	if w := fmt.Sprintf("counter entries sent before their interval ended (table full, 1000)=%d", c.Early); c.Summary() != w {
		t.Errorf("summary %q, want %q", c.Summary(), w)
	}
}

func TestPacketAllocs(t *testing.T) {
	out := &sink{}
	c := New(time.Minute, 0, out)
	var f analyse.FlowIDs
	r := sieve.Record{TS: 1, Length: 100, Classes: 0b11}
	c.Packet(&r, &f)
	if n := testing.AllocsPerRun(1000, func() {
		r.TS++
		c.Packet(&r, &f)
	}); n != 0 {
		t.Errorf("Packet: %.1f allocs", n)
	}
}

func setIDs(f *analyse.FlowIDs, v []uint32) {
	for i, id := range v {
		f.Set(i, id)
	}
}
