package query

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Segment is a hop pair of a path with its figures over the period.
type Segment struct {
	HopFrom, HopTo string
	*Figures
}

// Path is a class's path: its hops in order, the consecutive segments and
// the end-to-end pair, for spatial composition (RFC 5644).
type Path struct {
	Hops     []string
	Segments []Segment // hop i → hop i+1
	EndToEnd *Segment  // first → last hop; nil when not measured
	Other    []Segment // other pairs (skipping a hop)
}

// Path orders the hops of the selected class (the first hop is never a
// destination; the others by their mean delay from it) and returns its
// segments. A class with fewer than three hops has no composition.
func (d *DB) Path(ctx context.Context, s Selection) (*Path, error) {
	if s.Class == "" {
		return nil, fmt.Errorf("path: select a class")
	}
	s.HopFrom, s.HopTo = "", ""
	groups, err := d.collect(ctx, s, cover(s.From, s.To), groupBy{"t.hop_from, t.hop_to", 2}, 1<<DelayHist)
	if err != nil {
		return nil, err
	}
	pairs := map[[2]string]*Figures{}
	isTo, hops := map[string]bool{}, map[string]bool{}
	for k, f := range groups {
		a, b, _ := strings.Cut(k, "\x00")
		pairs[[2]string{a, b}] = f
		isTo[b], hops[a], hops[b] = true, true, true
	}
	var first string
	for h := range hops {
		if !isTo[h] && (first == "" || h < first) {
			first = h
		}
	}
	p := &Path{}
	if first == "" {
		return p, nil
	}
	p.Hops = append(p.Hops, first)
	var rest []string
	for h := range hops {
		if h != first {
			rest = append(rest, h)
		}
	}
	mean := func(h string) float64 {
		if f := pairs[[2]string{first, h}]; f != nil {
			m, _ := f.Mean()
			return m
		}
		return 1e30
	}
	sort.Slice(rest, func(i, j int) bool {
		if mean(rest[i]) != mean(rest[j]) {
			return mean(rest[i]) < mean(rest[j])
		}
		return rest[i] < rest[j]
	})
	p.Hops = append(p.Hops, rest...)
	used := map[[2]string]bool{}
	for i := 0; i+1 < len(p.Hops); i++ {
		k := [2]string{p.Hops[i], p.Hops[i+1]}
		f := pairs[k]
		if f == nil {
			f = newFigures()
		}
		p.Segments = append(p.Segments, Segment{k[0], k[1], f})
		used[k] = true
	}
	if len(p.Hops) > 2 {
		k := [2]string{first, p.Hops[len(p.Hops)-1]}
		if f := pairs[k]; f != nil {
			p.EndToEnd = &Segment{k[0], k[1], f}
			used[k] = true
		}
	}
	for k, f := range pairs {
		if !used[k] {
			p.Other = append(p.Other, Segment{k[0], k[1], f})
		}
	}
	sort.Slice(p.Other, func(i, j int) bool {
		return p.Other[i].HopFrom+">"+p.Other[i].HopTo < p.Other[j].HopFrom+">"+p.Other[j].HopTo
	})
	return p, nil
}

// ClockPoint is a probe's clock as one of its clock events states it.
type ClockPoint struct {
	T                    time.Time
	Kind                 string // clock.sync, clock.budget, clock.unsync, clock.assumed
	Offset, RootDistance time.Duration
	Known                bool // offset and root distance parsed
}

// DropPoint is a capture.drops event: packets the kernel dropped.
type DropPoint struct {
	T              time.Time
	Dropped, OfPkt int64
}

// RetryPoint is a transport.retries event: a probe's PDU retransmissions
// to one collector over the period that ended at T.
type RetryPoint struct {
	T         time.Time
	Collector string
	Retries   int64
	Sent      int64
	Period    string
}

// Probe is what the database knows of one probe: its events by kind, the
// clock states it reported, its capture drops and its PDU retries.
type Probe struct {
	Name       string
	Collectors []string // that recorded its events
	Kinds      map[string]int
	Clock      []ClockPoint
	Drops      []DropPoint
	Retries    []RetryPoint
}

var (
	reOffset  = regexp.MustCompile(`offset (-?[0-9.]+[a-zµ]+), root distance ([0-9.]+[a-zµ]+)`)
	reDrops   = regexp.MustCompile(`dropped ([0-9]+) of ([0-9]+) packets`)
	reRetries = regexp.MustCompile(`^collector (\S+): ([0-9]+) retries of ([0-9]+) PDUs sent in the last (\S+)$`)
)

// Probes returns the probes named by events of the period (source
// probe:NAME), with their clock and drop events. The clock events are
// written when a probe's clock state changes (probe/live.go watchClock);
// the bound the collector applied to every row is in ClockErr.
func (d *DB) Probes(ctx context.Context, s Selection) ([]*Probe, error) {
	evs, err := d.Events(ctx, s, EventFilter{Source: "", Limit: 100000})
	if err != nil {
		return nil, err
	}
	byName := map[string]*Probe{}
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		name, ok := strings.CutPrefix(e.Source, "probe:")
		if !ok {
			continue
		}
		p := byName[name]
		if p == nil {
			p = &Probe{Name: name, Kinds: map[string]int{}}
			byName[name] = p
		}
		p.Kinds[e.Kind]++
		if !contains(p.Collectors, e.Collector) {
			p.Collectors = append(p.Collectors, e.Collector)
		}
		switch {
		case strings.HasPrefix(e.Kind, "clock."):
			c := ClockPoint{T: e.T, Kind: e.Kind}
			if m := reOffset.FindStringSubmatch(e.Detail); m != nil {
				o, err1 := time.ParseDuration(strings.ReplaceAll(m[1], "µ", "u"))
				r, err2 := time.ParseDuration(strings.ReplaceAll(m[2], "µ", "u"))
				c.Offset, c.RootDistance, c.Known = o, r, err1 == nil && err2 == nil
			}
			p.Clock = append(p.Clock, c)
		case e.Kind == "capture.drops":
			if m := reDrops.FindStringSubmatch(e.Detail); m != nil {
				a, _ := strconv.ParseInt(m[1], 10, 64)
				b, _ := strconv.ParseInt(m[2], 10, 64)
				p.Drops = append(p.Drops, DropPoint{e.T, a, b})
			}
		case e.Kind == "transport.retries":
			if m := reRetries.FindStringSubmatch(e.Detail); m != nil {
				a, _ := strconv.ParseInt(m[2], 10, 64)
				b, _ := strconv.ParseInt(m[3], 10, 64)
				p.Retries = append(p.Retries, RetryPoint{e.T, m[1], a, b, m[4]})
			}
		}
	}
	out := make([]*Probe, 0, len(byName))
	for _, p := range byName {
		sort.Strings(p.Collectors)
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Packet is one owd_packet row: a packet seen at both hops.
type Packet struct {
	TFrom   time.Time
	DelayNs int64
	Sig     int64
	// FirstDelayNs: a datagram reassembled from IP fragments at either
	// hop, the delay of its first fragments (docs/spool.md owd_packet);
	// nil for a packet captured whole, or a row from before the column.
	FirstDelayNs *int64
}

// Packets returns the per-packet delays of one flow and hop pair over the
// period (at most limit, earliest first), and the collector they come from:
// the selected one, or else the collector holding the most rows, so that
// no packet is shown twice.
func (d *DB) Packets(ctx context.Context, s Selection, limit int) (pkts []Packet, collector string, truncated bool, err error) {
	if s.Class == "" || !s.Pair() {
		return nil, "", false, fmt.Errorf("packets: select a class, a flow and a hop pair")
	}
	where := " FROM owd_packet t JOIN flows p ON p.id = t.flow_id WHERE t.start_ns >= ? AND t.start_ns < ? AND p.class = ? AND t.hop_from = ? AND t.hop_to = ?"
	args := []any{s.From.UnixNano(), s.To.UnixNano(), s.Class, s.HopFrom, s.HopTo}
	if s.Flow != "" {
		where += " AND p.flow_key = ?"
		args = append(args, s.Flow)
	}
	collector = s.Collector
	if collector == "" {
		var n int64
		err = d.db.QueryRowContext(ctx, "SELECT p.collector, COUNT(*)"+where+" GROUP BY p.collector ORDER BY 2 DESC, 1 LIMIT 1", args...).Scan(&collector, &n)
		if err == sql.ErrNoRows {
			return nil, "", false, nil
		}
		if err != nil {
			return nil, "", false, fmt.Errorf("query packets: %w", err)
		}
	}
	where += " AND p.collector = ?"
	args = append(args, collector)
	q := fmt.Sprintf("SELECT t.t_from, t.delay_ns, t.sig, t.first_delay_ns, t.span_from_ns, t.span_to_ns%s AND t.t_from IS NOT NULL AND t.delay_ns IS NOT NULL ORDER BY t.t_from LIMIT %d", where, limit+1)
	err = d.rows(ctx, q, args, func(r *sql.Rows) error {
		var tf, dl, sig int64
		var first, sf, st sql.NullInt64
		if err := r.Scan(&tf, &dl, &sig, &first, &sf, &st); err != nil {
			return err
		}
		p := Packet{TFrom: time.Unix(0, tf).UTC(), DelayNs: dl, Sig: sig}
		if first.Valid && (sf.Int64 > 0 || st.Int64 > 0) {
			p.FirstDelayNs = &first.Int64
		}
		pkts = append(pkts, p)
		return nil
	})
	if len(pkts) > limit {
		pkts, truncated = pkts[:limit], true
	}
	return pkts, collector, truncated, err
}
