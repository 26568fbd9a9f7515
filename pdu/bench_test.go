package pdu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// traffic generates sightings at rate packets/s of a mix of flows: Poisson
// arrivals; with probability train the next packet belongs to the same flow
// (packet trains), else to a flow drawn uniformly from nflows.
type traffic struct {
	rng    *rand.Rand
	mean   float64 // ns between packets
	train  float64
	nflows int
	t      float64
	flow   uint32
}

func newTraffic(rate float64, nflows int, train float64) *traffic {
	return &traffic{rng: rand.New(rand.NewPCG(1, 2)), mean: 1e9 / rate, train: train, nflows: nflows, t: 1.7e18}
}

func (g *traffic) next() Sighting {
	g.t += g.rng.ExpFloat64() * g.mean
	if g.rng.Float64() >= g.train {
		g.flow = uint32(g.rng.IntN(g.nflows))
	}
	return Sighting{Flow: g.flow, Sig: g.rng.Uint32(), TS: int64(g.t), Size: 40 + g.rng.Uint32N(1460)}
}

type benchCase struct {
	name    string
	rate    float64
	exp     uint8
	hasSize bool
	nflows  int
	train   float64
}

func benchCases() []benchCase {
	var out []benchCase
	for _, mix := range []struct {
		name   string
		nflows int
		train  float64
	}{{"trains", 64, 0.7}, {"uniform", 64, 0}} {
		for _, res := range []struct {
			name string
			exp  uint8
		}{{"1ns", 0}, {"1us", 3}} {
			for _, rate := range []float64{2e3, 20e3, 200e3, 2e6} {
				out = append(out, benchCase{
					name: fmt.Sprintf("mix=%s/res=%s/rate=%s", mix.name, res.name, rateName(rate)),
					rate: rate, exp: res.exp, nflows: mix.nflows, train: mix.train,
				})
			}
		}
	}
	out = append(out,
		benchCase{name: "mix=trains/res=1us/rate=200k/size", rate: 200e3, exp: 3, hasSize: true, nflows: 64, train: 0.7},
		benchCase{name: "mix=single/res=1us/rate=2M", rate: 2e6, exp: 3, nflows: 1, train: 1},
	)
	return out
}

func rateName(r float64) string {
	if r >= 1e6 {
		return fmt.Sprintf("%gM", r/1e6)
	}
	return fmt.Sprintf("%gk", r/1e3)
}

// BenchmarkBuilderAddSighting measures encoding per sighting (ns/op) and
// the wire cost per sighting, header and CRC included (bytes/sighting), in
// PDUs of 1400 bytes.
func BenchmarkBuilderAddSighting(b *testing.B) {
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			g := newTraffic(c.rate, c.nflows, c.train)
			in := make([]Sighting, 1<<16)
			for i := range in {
				in[i] = g.next()
			}
			bu := NewBuilder(1400)
			var bytes, n int
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s := in[i&(len(in)-1)]
				if i&(len(in)-1) == 0 && bu.Len() > 0 { // keep the time chain monotonic across the wrap
					bytes += len(bu.Finish(Header{}))
					n += bu.Len()
					bu.Reset()
				}
				if !bu.AddSighting(s.Flow, c.exp, c.hasSize, s) {
					bytes += len(bu.Finish(Header{}))
					n += bu.Len()
					bu.Reset()
					bu.AddSighting(s.Flow, c.exp, c.hasSize, s)
				}
			}
			if n > 0 {
				b.ReportMetric(float64(bytes)/float64(n), "bytes/sighting")
			}
		})
	}
}

// BenchmarkDecodeSightings measures Parse+decode per sighting (ns/op).
func BenchmarkDecodeSightings(b *testing.B) {
	for _, c := range []benchCase{benchCases()[2], benchCases()[11]} {
		b.Run(c.name, func(b *testing.B) {
			g := newTraffic(c.rate, c.nflows, c.train)
			bu := NewBuilder(1400)
			for {
				s := g.next()
				if !bu.AddSighting(s.Flow, c.exp, c.hasSize, s) {
					break
				}
			}
			p := bu.Finish(Header{})
			per := bu.Len()
			b.ReportAllocs()
			b.ResetTimer()
			var s Sighting
			var r SightingReader
			for i := 0; i < b.N; i += per {
				f, err := Parse(p)
				if err != nil {
					b.Fatal(err)
				}
				r.Reset(f.Body)
				for r.Next(&s) {
				}
			}
			b.ReportMetric(float64(per), "sightings/PDU")
		})
	}
}
