package reconcile

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestGroupAndSort checks the delay logs and the two near-order sorts
// against plain slices and the standard library's sorts by the whole key:
// delays appended to the logs of random stats come back, stat by stat, as
// a stable grouping of the input by stat would give them (the chunks
// reused from round to round through the pool), on inputs from nearly
// sorted (the insertion sort finishes) to shuffled (it gives up and
// sorts), and with extreme times (differences that wrap around).
func TestGroupAndSort(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	pool := newChunkPool()
	type entry struct {
		stat int
		delayEntry
	}
	for round := range 200 {
		n := r.IntN(3000)
		nstats := 1 + r.IntN(40)
		jitter := []int64{0, 3, 50, 1 << 20}[round%4] // how far out of arrival order
		start := int64(round) * 1e9
		order := make([]entry, n)
		for i := range order {
			to := start + int64(i)*10 + r.Int64N(jitter+1)
			order[i] = entry{r.IntN(nstats), delayEntry{from: to - r.Int64N(40+jitter), t: to}}
			if round%10 == 9 && i%7 == 0 {
				order[i].t = []int64{math.MinInt64, math.MaxInt64, -1}[i%3]
			}
		}
		logs := make([]delayLog, nstats)
		for i := range logs {
			logs[i] = newDelayLog(start)
		}
		for _, e := range order {
			logs[e.stat].add(&pool, e.from, e.t)
		}
		for si := range nstats {
			var want []delayEntry
			for _, e := range order {
				if e.stat == si {
					want = append(want, e.delayEntry)
				}
			}
			grp := logs[si].decode(&pool, start, nil)
			if !slices.Equal(grp, want) {
				t.Fatalf("round %d: stat %d: log gives back %d delays, not the %d added in order", round, si, len(grp), len(want))
			}
			ref := slices.Clone(grp)
			slices.SortFunc(ref, func(a, b delayEntry) int {
				return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.from, b.from))
			})
			sortArrival(grp)
			if !slices.Equal(grp, ref) {
				t.Fatalf("round %d: arrival order differs", round)
			}
			for i := range grp {
				grp[i].t -= grp[i].from
			}
			sref := slices.Clone(grp)
			slices.SortFunc(sref, func(a, b delayEntry) int {
				return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.t, b.t))
			})
			sortDeparture(grp)
			if !slices.Equal(grp, sref) {
				t.Fatalf("round %d: departure order differs", round)
			}
		}
		for i := range logs {
			logs[i].release(&pool, 0)
		}
	}
	// Every chunk made is back in the pool, once.
	seen := map[int32]bool{}
	for c := pool.free; c >= 0; c = chunkNext(pool.chunk(c)) {
		if seen[c] {
			t.Fatalf("chunk %d twice in the free list", c)
		}
		seen[c] = true
	}
	if len(seen) != int(pool.made) {
		t.Errorf("%d chunks free of %d made", len(seen), pool.made)
	}
}

// TestSortPackets checks sortPackets against the standard library's sort
// by the whole key: rows in the order records are decided (nearly by From,
// every flow and pair interleaved), already sorted, reversed, shuffled
// (the insertion sort gives up), one group only, and with rows that tie
// on the whole key (any order of those is the file's order: the result
// must be sorted and hold the same rows).
func TestSortPackets(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	decided := func(n, flows, pairs int, jitter int64) []Packet {
		p := make([]Packet, n)
		for i := range p {
			p[i] = Packet{Flow: uint32(r.IntN(flows)), Pair: r.IntN(pairs), Sig: r.Uint32(),
				From: int64(i)*1000 + r.Int64N(jitter+1)}
			p[i].To = p[i].From + r.Int64N(1e6)
			p[i].Class = int(p[i].Flow % 3)
		}
		return p
	}
	cases := map[string][]Packet{
		"empty":    nil,
		"one":      decided(1, 1, 1, 0),
		"decided":  decided(50000, 200, 3, 5000),
		"in order": decided(20000, 1, 1, 0),
		"groups":   decided(20000, 1000, 2, 0),
		"one flow": decided(20000, 1, 1, 50000),
	}
	rev := decided(10000, 20, 2, 0)
	slices.Reverse(rev)
	cases["reversed"] = rev
	shuf := decided(10000, 20, 2, 0)
	r.Shuffle(len(shuf), func(i, j int) { shuf[i], shuf[j] = shuf[j], shuf[i] })
	cases["shuffled"] = shuf
	for name, in := range cases {
		got, want := slices.Clone(in), slices.Clone(in)
		sortPackets(got)
		slices.SortFunc(want, comparePackets)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d rows not in the order of the whole key", name, len(in))
		}
	}

	// Ties: the same flow, pair, From and signature, told apart by To.
	tied := decided(5000, 5, 2, 0)
	for i := range tied {
		tied[i].From = int64(i/7) * 1000
		tied[i].Sig = uint32(i % 3)
	}
	r.Shuffle(len(tied), func(i, j int) { tied[i], tied[j] = tied[j], tied[i] })
	got := slices.Clone(tied)
	sortPackets(got)
	if !slices.IsSortedFunc(got, comparePackets) {
		t.Error("ties: not sorted")
	}
	byAll := func(a, b Packet) int { return cmp.Or(comparePackets(a, b), cmp.Compare(a.To, b.To)) }
	slices.SortFunc(got, byAll)
	slices.SortFunc(tied, byAll)
	if !slices.Equal(got, tied) {
		t.Error("ties: rows lost, doubled or changed")
	}
}
