package loader

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// A deterministic spool generator for the tests: it writes TSV files as
// docs/spool.md specifies (not through loader code) and keeps the rows it
// wrote, so that the tests compute the expected tables independently.

type genConfig struct {
	Collector string
	Start     time.Time
	Interval  time.Duration
	N         int // intervals
	Flows     int
	MaxPkts   int // per flow, hop pair and interval
	Seed      uint64
	// Current spool: owd_stats with dropped and the clock columns, and
	// owd_metrics. Otherwise the first version's owd_stats only.
	Current bool
	// Sets: each interval's files (events aside) are committed as a set
	// with a manifest in sets/ (docs/spool.md, "Commit"), as the current
	// collector does.
	Sets bool
}

type genFlow struct {
	idx        int
	cflow      int64
	class, key string
	big        bool // delays of seconds: sums of squares beyond 64 bits
	negative   bool // a probe with a bad clock: some negative delays
}

type genStats struct {
	start, intervalS  int64
	flow              genFlow
	from, to          string
	delays            []int64
	lost, missed      int64
	dup, reord, clash int64
	// Current spool only.
	dropped  *int64
	clockErr *int64 // nil: unknown
	clockOK  bool
	m        *genMetrics
}

type genEvent struct {
	time                 int64
	source, kind, detail string
}

type fixture struct {
	cfg     genConfig
	dir     string
	flows   []genFlow
	stats   []genStats
	events  []genEvent
	packets int // owd_packet rows
	incompl int // owd_incomplete rows
	files   int
	rows    int // data rows written, flows included
}

var genEdges = []int64{5e6, 10e6, 15e6, 20e6, 30e6, 50e6, 100e6}

var genPairs = [][2]string{{"A", "B"}, {"A", "C"}}

// sliceOf is the histogram slice of delay d: the number of edges ≤ d.
func sliceOf(d int64) int {
	return sort.Search(len(genEdges), func(i int) bool { return genEdges[i] > d })
}

type tsvFile struct {
	lines []string
}

func (f *tsvFile) add(fields ...any) {
	s := make([]string, len(fields))
	for i, x := range fields {
		s[i] = fmt.Sprint(x)
	}
	f.lines = append(f.lines, strings.Join(s, "\t"))
}

func writeTSV(t testing.TB, dir, typ string, start time.Time, header string, f *tsvFile) []byte {
	t.Helper()
	return writeTSVName(t, dir, typ, tsvName(typ, start), header, f)
}

func tsvName(typ string, start time.Time) string {
	return fmt.Sprintf("%s-%s.tsv", typ, start.UTC().Format(startLayout))
}

func writeTSVName(t testing.TB, dir, typ, name, header string, f *tsvFile) []byte {
	t.Helper()
	d := filepath.Join(dir, typ)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("#" + header + "\n")
	for _, l := range f.lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	content := []byte(b.String())
	if err := os.WriteFile(filepath.Join(d, name), content, 0o644); err != nil {
		t.Fatal(err)
	}
	return content
}

const (
	hdrFlows  = "time\tflow\tclass\tkey"
	hdrStats  = "interval_start\tinterval_s\tclass\tflow\thop_from\thop_to\tcount\tsum_ns\tsumsq_ns2\tmin_ns\tmax_ns\tlost\tmissed\tduplicate\treordered\tclashes"
	hdrHist   = "interval_start\tinterval_s\tclass\tflow\thop_from\thop_to\tslice\tlo_ns\thi_ns\tcount"
	hdrPacket = "interval_start\tclass\tflow\tsig\thop_from\thop_to\tt_from\tt_to\tdelay_ns"
	// Current spool: the spans of reassembled datagrams and the first
	// fragments' delay.
	hdrPacketCurrent = hdrPacket + "\tspan_from_ns\tspan_to_ns\tfirst_delay_ns"
	hdrIncomplete    = "interval_start\tclass\tflow\tsig\tkind\thops"
	hdrEvents        = "time\tsource\tkind\tdetail"
)

// genSpool writes a spool under dir (dir is the spool directory itself).
func genSpool(t testing.TB, dir string, cfg genConfig) *fixture {
	t.Helper()
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	fx := &fixture{cfg: cfg, dir: dir}
	for i := range cfg.Flows {
		f := genFlow{idx: i, cflow: int64(100 + i*3), class: "site1-to-site2",
			key: fmt.Sprintf("ip.src=10.1.0.%d ip.dst=10.2.0.%d l4.dport=%d", i+1, i%3+1, 5000+i)}
		if i == cfg.Flows-1 {
			f.class, f.key = "other", "" // a class without granular fields
		}
		f.big = i == 1
		f.negative = i == 2
		fx.flows = append(fx.flows, f)
	}
	// Flow definitions in two files: most at the start, the last one later.
	var fl1, fl2 tsvFile
	t0 := cfg.Start.UnixNano()
	for i, f := range fx.flows {
		tf := &fl1
		if i == len(fx.flows)-1 && cfg.N > 2 {
			tf = &fl2
		}
		tf.add(t0+int64(i), f.cflow, f.class, f.key)
		fx.rows++
	}
	writeTSV(t, dir, "flows", cfg.Start, hdrFlows, &fl1)
	fx.files++
	if len(fl2.lines) > 0 {
		writeTSV(t, dir, "flows", cfg.Start.Add(cfg.Interval), hdrFlows, &fl2)
		fx.files++
	}
	ivNs := cfg.Interval.Nanoseconds()
	for iv := range cfg.N {
		start := cfg.Start.Add(time.Duration(iv) * cfg.Interval)
		s0 := start.UnixNano()
		var st, hi, pk, inc, ev, me, man tsvFile
		for _, f := range fx.flows {
			for pi, p := range genPairs {
				g := genStats{start: s0, intervalS: int64(cfg.Interval / time.Second), flow: f, from: p[0], to: p[1]}
				n := rng.IntN(cfg.MaxPkts + 1)
				for range n {
					d := int64(2e6+pi*5e6) + rng.Int64N(60e6)
					switch {
					case f.big:
						d = 2e9 + rng.Int64N(2e9)
					case f.negative && rng.IntN(4) == 0:
						d = -rng.Int64N(100e3) - 1
					}
					g.delays = append(g.delays, d)
				}
				pick := func(p int) int64 {
					if rng.IntN(p) == 0 {
						return 1 + rng.Int64N(4)
					}
					return 0
				}
				g.lost, g.missed, g.dup, g.reord, g.clash = pick(3), pick(5), pick(6), pick(4), pick(8)
				if n == 0 && g.lost+g.missed+g.dup+g.reord+g.clash == 0 {
					continue
				}
				fx.stats = append(fx.stats, g)
				var sum int64
				sq := new(big.Int)
				mn, mx := "", ""
				if n > 0 {
					lo, hiv := g.delays[0], g.delays[0]
					for _, d := range g.delays {
						sum += d
						b := big.NewInt(d)
						sq.Add(sq, b.Mul(b, b))
						lo, hiv = min(lo, d), max(hiv, d)
					}
					mn, mx = fmt.Sprint(lo), fmt.Sprint(hiv)
				}
				if cfg.Current {
					dropped := pick(7)
					g.dropped = &dropped
					clock := ""
					if rng.IntN(5) != 0 {
						e := rng.Int64N(500e3)
						g.clockErr, clock = &e, fmt.Sprint(e)
					}
					g.clockOK = rng.IntN(6) != 0
					ok := 0
					if g.clockOK {
						ok = 1
					}
					st.add(s0, g.intervalS, f.class, f.cflow, p[0], p[1], n, sum, sq.String(), mn, mx, g.lost, g.missed, g.dup, g.reord, g.clash,
						dropped, clock, ok)
					g.m = genMetricsRow(rng, &g, iv, cfg.N)
					me.add(g.m.row(&g)...)
				} else {
					st.add(s0, g.intervalS, f.class, f.cflow, p[0], p[1], n, sum, sq.String(), mn, mx, g.lost, g.missed, g.dup, g.reord, g.clash)
				}
				fx.stats[len(fx.stats)-1] = g
				counts := map[int]int{}
				for _, d := range g.delays {
					counts[sliceOf(d)]++
				}
				for s := 0; s <= len(genEdges); s++ {
					if counts[s] == 0 {
						continue
					}
					lo, hiE := "", ""
					if s > 0 {
						lo = fmt.Sprint(genEdges[s-1])
					}
					if s < len(genEdges) {
						hiE = fmt.Sprint(genEdges[s])
					}
					hi.add(s0, g.intervalS, f.class, f.cflow, p[0], p[1], s, lo, hiE, counts[s])
				}
				if pi == 0 {
					for _, d := range g.delays {
						tf := s0 + rng.Int64N(ivNs)
						sig := fmt.Sprintf("%08x", rng.Uint32())
						if !cfg.Current {
							pk.add(s0, f.class, f.cflow, sig, p[0], p[1], tf, tf+d, d)
							continue
						}
						// Every other packet a reassembled datagram.
						var sf, st int64
						if rng.IntN(2) == 0 {
							sf, st = rng.Int64N(50_000), rng.Int64N(50_000)
						}
						pk.add(s0, f.class, f.cflow, sig, p[0], p[1], tf, tf+d, d, sf, st, d-st+sf)
					}
					for range g.lost {
						tf := s0 + rng.Int64N(ivNs)
						inc.add(s0, f.class, f.cflow, fmt.Sprintf("%08x", rng.Uint32()), "lost", fmt.Sprintf("A=%d B= C=", tf))
					}
				}
			}
		}
		if iv%7 == 0 {
			e := genEvent{s0 + 1234, "probe:probe-a", "capture.drops", fmt.Sprintf("%d packets dropped by the kernel", iv)}
			fx.events = append(fx.events, e)
			ev.add(e.time, e.source, e.kind, e.detail)
		}
		stHdr, pkHdr := hdrStats, hdrPacket
		if cfg.Current {
			stHdr, pkHdr = hdrStatsCurrent, hdrPacketCurrent
		}
		for _, w := range []struct {
			typ, hdr string
			f        *tsvFile
		}{{"owd_stats", stHdr, &st}, {"owd_hist", hdrHist, &hi}, {"owd_packet", pkHdr, &pk},
			{"owd_incomplete", hdrIncomplete, &inc}, {"events", hdrEvents, &ev}, {"owd_metrics", hdrMetrics, &me}} {
			if len(w.f.lines) == 0 && w.typ != "owd_stats" {
				continue
			}
			data := writeTSV(t, dir, w.typ, start, w.hdr, w.f)
			fx.files++
			fx.rows += len(w.f.lines)
			if cfg.Sets && w.typ != "events" {
				sum := sha256.Sum256(data)
				man.add(w.typ, filepath.Base(tsvName(w.typ, start)), len(w.f.lines), len(data), hex.EncodeToString(sum[:]))
			}
		}
		if len(man.lines) > 0 {
			// Named after the set's first file.
			writeTSVName(t, dir, "sets", tsvName("owd_stats", start), "type\tfile\trows\tbytes\tsha256", &man)
			fx.files++
		}
		fx.packets += len(pk.lines)
		fx.incompl += len(inc.lines)
	}
	return fx
}

// Expected aggregates, computed directly from the generated rows with plain
// Go sums, as canonical text rows in the column order of the test queries.

type expStat struct {
	samples, count, sum int64
	sumsq               *big.Int
	min, max            *int64
	ctr                 [5]struct {
		sum, min, max int64
		sumsq         *big.Int
	}
	dropped                        *[4]int64 // sum, sumsq, min, max; nil: no row had the column
	clockErr                       *int64
	clockUnknown, clockNotOK, ncur int64
}

func expectedStats(fxs []*fixture, step int64) []string {
	m := map[string]*expStat{}
	var keys []string
	for _, fx := range fxs {
		for _, g := range fx.stats {
			k := fmt.Sprintf("%d|%s|%s|%s|%s|%s", floorTo(g.start, step), fx.cfg.Collector, g.flow.class, g.flow.key, g.from, g.to)
			e := m[k]
			if e == nil {
				e = &expStat{sumsq: new(big.Int)}
				for i := range e.ctr {
					e.ctr[i].sumsq = new(big.Int)
					e.ctr[i].min = 1 << 62
					e.ctr[i].max = -1
				}
				m[k] = e
				keys = append(keys, k)
			}
			e.samples++
			for _, d := range g.delays {
				e.count++
				e.sum += d
				b := big.NewInt(d)
				e.sumsq.Add(e.sumsq, b.Mul(b, b))
				if e.min == nil || d < *e.min {
					e.min = &d
				}
				if e.max == nil || d > *e.max {
					e.max = &d
				}
			}
			if g.dropped != nil {
				d := *g.dropped
				if e.dropped == nil {
					e.dropped = &[4]int64{0, 0, d, d}
				}
				e.dropped[0] += d
				e.dropped[1] += d * d
				e.dropped[2], e.dropped[3] = min(e.dropped[2], d), max(e.dropped[3], d)
				e.ncur++
				if g.clockErr == nil {
					e.clockUnknown++
				} else if e.clockErr == nil || *g.clockErr > *e.clockErr {
					e.clockErr = g.clockErr
				}
				if !g.clockOK {
					e.clockNotOK++
				}
			}
			for i, c := range []int64{g.lost, g.missed, g.dup, g.reord, g.clash} {
				x := &e.ctr[i]
				x.sum += c
				x.sumsq.Add(x.sumsq, big.NewInt(c*c))
				x.min, x.max = min(x.min, c), max(x.max, c)
			}
		}
	}
	var out []string
	for _, k := range keys {
		e := m[k]
		opt := func(p *int64) string {
			if p == nil {
				return "NULL"
			}
			return fmt.Sprint(*p)
		}
		// sum_ns of a row with no delay at all is 0 in the spool, not NULL.
		s := fmt.Sprintf("%s|%d|%d|%d|%s|%s|%s", k, e.samples, e.count, e.sum, e.sumsq, opt(e.min), opt(e.max))
		for i, x := range e.ctr {
			if i == 2 {
				if d := e.dropped; d != nil {
					s += fmt.Sprintf("|%d|%d|%d|%d", d[0], d[1], d[2], d[3])
				} else {
					s += "|NULL|NULL|NULL|NULL" // only in the first spool version's files
				}
			}
			s += fmt.Sprintf("|%d|%s|%d|%d", x.sum, x.sumsq, x.min, x.max)
		}
		if e.ncur > 0 {
			s += fmt.Sprintf("|%s|%d|%d", opt(e.clockErr), e.clockUnknown, e.clockNotOK)
		} else {
			s += "|NULL|NULL|NULL"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func expectedHist(fxs []*fixture, step int64) []string {
	m := map[string]int64{}
	for _, fx := range fxs {
		for _, g := range fx.stats {
			for _, d := range g.delays {
				s := sliceOf(d)
				lo, hi := "-9223372036854775808", "9223372036854775807"
				if s > 0 {
					lo = fmt.Sprint(genEdges[s-1])
				}
				if s < len(genEdges) {
					hi = fmt.Sprint(genEdges[s])
				}
				m[fmt.Sprintf("%d|%s|%s|%s|%s|%s|%d|%s|%s", floorTo(g.start, step), fx.cfg.Collector, g.flow.class, g.flow.key, g.from, g.to, s, lo, hi)]++
			}
		}
	}
	var out []string
	for k, n := range m {
		out = append(out, fmt.Sprintf("%s|%d", k, n))
	}
	sort.Strings(out)
	return out
}

func expectedEvents(fxs []*fixture) []string {
	var out []string
	for _, fx := range fxs {
		for _, e := range fx.events {
			out = append(out, fmt.Sprintf("%d|%s|%s|%s|%s", e.time, fx.cfg.Collector, e.source, e.kind, e.detail))
		}
	}
	sort.Strings(out)
	return out
}
