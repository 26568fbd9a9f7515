package gen

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// PathConfig describes a sighting-level variant of the generator: packets
// of a few flows crossing an N-hop path, each segment with its own delay
// distribution and loss, and each hop's probe clock with its own offset.
// It writes no captures: it gives the times each hop's probe would report,
// for tests of the collector stages that take sightings (reconcile), with
// the truth beside them.
type PathConfig struct {
	Seed  uint64
	Start time.Time // time of the first packet at hop 0 (true time)
	Hops  int       // 2 to 8
	Flows int       // flows, drawn uniformly per packet
	Count int       // packets sent at hop 0
	Rate  float64   // packets per second at hop 0, spacing jittered ±50 %

	Delay    []Dist          // per segment (Hops−1): delay from hop s to hop s+1
	MaxDelay time.Duration   // bound of every segment's delay
	Loss     []float64       // per segment: probability that a packet reaching hop s does not reach hop s+1
	Dup      float64         // probability that the last hop sees a copy of a delivered packet 1–500 µs later
	Offset   []time.Duration // per hop: added to the true time in what the hop reports (a clock out of step)
}

// PathPacket is one packet of a PathConfig run and what became of it.
type PathPacket struct {
	Seq   int
	Flow  int
	Sig   uint32 // unique within the flow: no signature clashes
	Reach int    // number of hops that saw it: hops 0 … Reach−1
	True  [8]int64
	TS    [8]int64 // reported times: True + Offset of the hop; valid below Reach
	DupTS int64    // reported time of the copy at the last hop, 0 when none
}

// BuildPath generates the packets of cfg, in order of their time at hop 0.
func BuildPath(cfg PathConfig) ([]PathPacket, error) {
	if cfg.Hops < 2 || cfg.Hops > 8 || len(cfg.Delay) != cfg.Hops-1 || len(cfg.Loss) != cfg.Hops-1 {
		return nil, fmt.Errorf("gen: path: %d hops with %d delays and %d losses: want 2–8 hops and one delay and loss per segment", cfg.Hops, len(cfg.Delay), len(cfg.Loss))
	}
	if cfg.Flows <= 0 || cfg.Rate <= 0 || cfg.MaxDelay <= 0 {
		return nil, fmt.Errorf("gen: path: want positive flows, rate and max delay")
	}
	for _, d := range cfg.Delay {
		if err := d.check(cfg.MaxDelay); err != nil {
			return nil, fmt.Errorf("gen: path: %w", err)
		}
	}
	offset := make([]int64, cfg.Hops)
	for i, o := range cfg.Offset {
		if i < cfg.Hops {
			offset[i] = int64(o)
		}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x70617468)) // "path"
	used := make([]map[uint32]bool, cfg.Flows)
	for i := range used {
		used[i] = map[uint32]bool{}
	}
	spacing := float64(time.Second) / cfg.Rate
	t := cfg.Start.UnixNano()
	out := make([]PathPacket, cfg.Count)
	for k := range out {
		if k > 0 {
			t += int64(spacing * (0.5 + rng.Float64()))
		}
		p := PathPacket{Seq: k, Flow: rng.IntN(cfg.Flows)}
		for {
			p.Sig = rng.Uint32()
			if !used[p.Flow][p.Sig] {
				used[p.Flow][p.Sig] = true
				break
			}
		}
		p.True[0] = t
		p.Reach = 1
		// Draw every number whatever the outcome, so that one
		// impairment does not shift the others' draws.
		for s := 0; s < cfg.Hops-1; s++ {
			d := cfg.Delay[s].draw(rng, cfg.MaxDelay)
			lost := rng.Float64() < cfg.Loss[s]
			if p.Reach == s+1 && !lost {
				p.True[s+1] = p.True[s] + d
				p.Reach = s + 2
			}
		}
		dup := rng.Float64() < cfg.Dup
		gap := 1_000 + rng.Int64N(499_000)
		for h := 0; h < p.Reach; h++ {
			p.TS[h] = p.True[h] + offset[h]
		}
		if dup && p.Reach == cfg.Hops {
			p.DupTS = p.TS[cfg.Hops-1] + gap
		}
		out[k] = p
	}
	slices.SortStableFunc(out, func(a, b PathPacket) int { return cmp.Compare(a.True[0], b.True[0]) })
	return out, nil
}
