package gen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Config says what traffic to generate and what the path does to it. Start
// from DefaultConfig: zero values of Rate, Delay, MaxDelay, ClashGap, MTU and
// Start are filled with the defaults, but a zero Loss, Dup, Frag, Clashes,
// IPv6 or Background means "none".
type Config struct {
	// Seed makes the output deterministic: the same Config gives
	// byte-identical files.
	Seed uint64

	// Start is the capture time of the first packet at hop A. Default
	// DefaultStart, a fixed time, so that output does not depend on when
	// it is generated.
	Start time.Time

	// Rate is the mean number of datagrams per second sent at A on the
	// measured flows (default 2000). Spacing is jittered ±50 %.
	Rate float64

	// Count is the number of datagrams to send; when 0, as many as Rate
	// gives in Duration. A fragmented datagram makes 2–3 packets, and each
	// clash pair adds one packet.
	Count int

	// Duration is used when Count is 0 (default 10 s).
	Duration time.Duration

	// Delay is the distribution of the one-way delay A → B of each packet
	// (default uniform 18–22 ms). Draws outside [0, MaxDelay] are redrawn.
	Delay Dist

	// MaxDelay bounds every delay (default 140 ms, less than half the
	// default ClashGap so that clash pairs stay distinguishable).
	MaxDelay time.Duration

	// Loss is the probability that a packet does not reach B.
	Loss float64

	// Dup is the probability that a delivered packet is seen twice at B,
	// the copy less than 500 µs after the original.
	Dup float64

	// Frag is the share of IPv4 UDP datagrams made larger than the MTU and
	// sent as 2–3 fragments; each fragment crosses on its own.
	Frag float64

	// Clashes is the number of pairs of byte-identical IPv4 UDP packets
	// (same flow, IP id and payload) sent ClashGap apart.
	Clashes int

	// ClashGap separates the two packets of a clash pair (default 300 ms:
	// more than twice MaxDelay, less than a one-way class's 1 s maxTransit).
	ClashGap time.Duration

	// IPv6 is the share of datagrams sent on the IPv6 UDP flows.
	IPv6 float64

	// Background is the number of unwanted frames (ARP, UDP from
	// 10.3.0.0/16) seen at each hop per measured datagram. They are drawn
	// independently at A and B and are not in the truth.
	Background float64

	// VLANB, when not 0, is the 802.1Q VLAN ID of every frame at hop B
	// (hop A stays untagged), as when a mirror port adds a tag.
	VLANB uint16

	// MTU of the path at A, in bytes of IP packet (default 1500).
	MTU int
}

// DefaultStart is the default capture time of the first packet.
var DefaultStart = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// DefaultConfig returns the defaults of every field, with the rates of
// impairment `make demo` uses.
func DefaultConfig() Config {
	return Config{
		Seed:       1,
		Start:      DefaultStart,
		Rate:       2000,
		Duration:   10 * time.Second,
		Delay:      Dist{Kind: Uniform, A: 18 * time.Millisecond, B: 22 * time.Millisecond},
		MaxDelay:   140 * time.Millisecond,
		Loss:       0.01,
		Dup:        0.002,
		Frag:       0.01,
		Clashes:    5,
		ClashGap:   300 * time.Millisecond,
		IPv6:       0.1,
		Background: 0.02,
		MTU:        1500,
	}
}

// withDefaults fills the zero fields that have a default and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Start.IsZero() {
		c.Start = d.Start
	}
	if c.Rate == 0 {
		c.Rate = d.Rate
	}
	if c.Count == 0 && c.Duration == 0 {
		c.Duration = d.Duration
	}
	if c.Delay == (Dist{}) {
		c.Delay = d.Delay
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = d.MaxDelay
	}
	if c.ClashGap == 0 {
		c.ClashGap = d.ClashGap
	}
	if c.MTU == 0 {
		c.MTU = d.MTU
	}
	var errs []error
	prob := func(name string, p float64) {
		if !(p >= 0 && p <= 1) {
			errs = append(errs, fmt.Errorf("%s %v: not a probability in [0, 1]", name, p))
		}
	}
	prob("loss", c.Loss)
	prob("dup", c.Dup)
	prob("frag", c.Frag)
	prob("ipv6 share", c.IPv6)
	if !(c.Rate > 0 && c.Rate <= 1e6) {
		errs = append(errs, fmt.Errorf("rate %v: want 0 < rate ≤ 1e6 per second", c.Rate))
	}
	if c.Count < 0 || c.Duration < 0 {
		errs = append(errs, errors.New("count and duration must not be negative"))
	}
	if !(c.Background >= 0 && c.Background <= 10) {
		errs = append(errs, fmt.Errorf("background %v: want 0 to 10 frames per datagram", c.Background))
	}
	if c.Clashes < 0 {
		errs = append(errs, fmt.Errorf("clashes %d: negative", c.Clashes))
	}
	if c.MTU < 576 || c.MTU > 9000 {
		errs = append(errs, fmt.Errorf("mtu %d: want 576 to 9000", c.MTU))
	}
	if c.VLANB > 4094 {
		errs = append(errs, fmt.Errorf("vlan %d: want 1 to 4094", c.VLANB))
	}
	if c.MaxDelay < 0 {
		errs = append(errs, fmt.Errorf("max delay %v: negative", c.MaxDelay))
	}
	if err := c.Delay.check(c.MaxDelay); err != nil {
		errs = append(errs, err)
	}
	if c.ClashGap <= c.MaxDelay {
		errs = append(errs, fmt.Errorf("clash gap %v must exceed max delay %v", c.ClashGap, c.MaxDelay))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("gen: config: %w", errors.Join(errs...))
	}
	return c, nil
}

// Distribution kinds.
const (
	Uniform = "uniform" // A..B
	Normal  = "normal"  // mean A, standard deviation B, truncated to [0, MaxDelay]
	Pareto  = "pareto"  // minimum A, shape Shape: a heavy tail above A
	Const   = "const"   // always A
)

// Dist is a delay distribution. Its zero value means "the default".
type Dist struct {
	Kind  string
	A, B  time.Duration
	Shape float64 // Pareto shape α (> 0; smaller is heavier)
}

// ParseDist reads a distribution written as the cmd flag takes it:
// "uniform:18ms:22ms", "normal:20ms:2ms", "pareto:18ms:2.5", "const:20ms".
func ParseDist(s string) (Dist, error) {
	parts := strings.Split(s, ":")
	bad := func(why string) (Dist, error) {
		return Dist{}, fmt.Errorf("delay %q: %s (want uniform:MIN:MAX, normal:MEAN:SD, pareto:MIN:SHAPE or const:D)", s, why)
	}
	dur := func(i int) (time.Duration, error) {
		d, err := time.ParseDuration(parts[i])
		if err != nil {
			return 0, err
		}
		return d, nil
	}
	d := Dist{Kind: parts[0]}
	var err error
	switch d.Kind {
	case Uniform, Normal:
		if len(parts) != 3 {
			return bad("wrong number of fields")
		}
		if d.A, err = dur(1); err == nil {
			d.B, err = dur(2)
		}
	case Pareto:
		if len(parts) != 3 {
			return bad("wrong number of fields")
		}
		if d.A, err = dur(1); err == nil {
			d.Shape, err = strconv.ParseFloat(parts[2], 64)
		}
	case Const:
		if len(parts) != 2 {
			return bad("wrong number of fields")
		}
		d.A, err = dur(1)
	default:
		return bad("unknown kind")
	}
	if err != nil {
		return bad(err.Error())
	}
	return d, nil
}

// String writes d the way ParseDist reads it.
func (d Dist) String() string {
	switch d.Kind {
	case Pareto:
		return fmt.Sprintf("%s:%v:%v", d.Kind, d.A, d.Shape)
	case Const:
		return fmt.Sprintf("%s:%v", d.Kind, d.A)
	}
	return fmt.Sprintf("%s:%v:%v", d.Kind, d.A, d.B)
}

func (d Dist) check(maxDelay time.Duration) error {
	var why string
	switch d.Kind {
	case Uniform:
		if d.A < 0 || d.B < d.A || d.B > maxDelay {
			why = "want 0 ≤ min ≤ max ≤ max delay"
		}
	case Normal:
		if d.A < 0 || d.B < 0 || d.A > maxDelay {
			why = "want 0 ≤ mean ≤ max delay and sd ≥ 0"
		}
	case Pareto:
		if d.A <= 0 || d.A > maxDelay || !(d.Shape > 0) || math.IsInf(d.Shape, 0) {
			why = "want 0 < min ≤ max delay and shape > 0"
		}
	case Const:
		if d.A < 0 || d.A > maxDelay {
			why = "want 0 ≤ delay ≤ max delay"
		}
	default:
		why = "unknown kind"
	}
	if why != "" {
		return fmt.Errorf("delay %v (max delay %v): %s", d, maxDelay, why)
	}
	return nil
}

// draw returns one delay in ns, within [0, maxDelay]. Out-of-range draws are
// redrawn (a truncated distribution), then clamped after 100 tries.
func (d Dist) draw(rng *rand.Rand, maxDelay time.Duration) int64 {
	var x float64
	for range 100 {
		switch d.Kind {
		case Uniform:
			x = float64(d.A) + rng.Float64()*float64(d.B-d.A)
		case Normal:
			x = float64(d.A) + rng.NormFloat64()*float64(d.B)
		case Pareto:
			x = float64(d.A) / math.Pow(1-rng.Float64(), 1/d.Shape)
		case Const:
			x = float64(d.A)
		}
		if x >= 0 && x <= float64(maxDelay) {
			return int64(math.Round(x))
		}
	}
	return int64(min(max(x, 0), float64(maxDelay)))
}
