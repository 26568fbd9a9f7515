package loader

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/spool"
)

// The column lists of the current spool are the writer's (the contract's
// implementation), so that this test follows the collector.
var (
	hdrStatsCurrent = strings.Join(spool.ColsStats, "\t")
	hdrMetrics      = strings.Join(spool.ColsMetrics, "\t")
)

// genMetrics is what the generator decided for one owd_metrics row; the
// distributions are kept raw, for the expected values.
type genMetrics struct {
	sampleN, lossWait        int64
	pdv, ipdv, periods, dist []int64
	extents                  []int64
	neg, viol                int64
}

func genMetricsRow(rng *rand.Rand, g *genStats, iv, n int) *genMetrics {
	m := &genMetrics{sampleN: 1, lossWait: 2e9}
	switch {
	case g.flow.idx == 0 && iv >= n/2:
		m.sampleN = 3 // the sampling changed mid-way
	case g.flow.idx == 3:
		m.sampleN, m.lossWait = 10, 3e9
	}
	if len(g.delays) > 0 {
		lo := slices.Min(g.delays)
		for i, d := range g.delays {
			m.pdv = append(m.pdv, d-lo)
			if i > 0 {
				m.ipdv = append(m.ipdv, d-g.delays[i-1])
			}
			if d < 0 {
				m.neg++
			}
		}
	}
	for left := g.lost; left > 0; {
		p := min(left, 1+rng.Int64N(3))
		m.periods = append(m.periods, p)
		left -= p
	}
	for range max(0, g.lost-1) {
		m.dist = append(m.dist, 1+rng.Int64N(200))
	}
	for range g.reord {
		m.extents = append(m.extents, 1+rng.Int64N(5))
	}
	m.viol = rng.Int64N(2)
	return m
}

// testKey is the bucket of v as docs/spool.md defines it, written here
// independently of package hist.
func testKey(v int64) int64 {
	u := uint64(v)
	if v < 0 {
		u = -u
	}
	k := int64(u)
	if u >= 64 {
		s := bits.Len64(u) - 7
		k = int64(64*s) + int64(u>>s)
	}
	if v < 0 {
		return -k
	}
	return k
}

func testSparse(vals []int64) string {
	m := map[int64]int{}
	for _, v := range vals {
		m[testKey(v)]++
	}
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d:%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}

// exactQuantile is the nearest-rank quantile of the raw values.
func exactQuantile(vals []int64, q float64) int64 {
	s := slices.Clone(vals)
	slices.Sort(s)
	r := int(math.Ceil(q * float64(len(s))))
	return s[max(1, min(r, len(s)))-1]
}

// row is the owd_metrics line, in the writer's column order.
func (m *genMetrics) row(g *genStats) []any {
	n := int64(len(g.delays))
	v := map[string]string{
		"interval_start": fmt.Sprint(g.start), "interval_s": fmt.Sprint(g.intervalS), "class": g.flow.class,
		"flow": fmt.Sprint(g.flow.cflow), "hop_from": g.from, "hop_to": g.to,
		"sample_n": fmt.Sprint(m.sampleN), "count": fmt.Sprint(n), "lost": fmt.Sprint(g.lost),
		// Estimates and quantiles as the collector writes them; the loader
		// recomputes its own, so their exact values do not matter here.
		"count_est": fmt.Sprint(n * m.sampleN), "count_est_ci95": "0.0", "lost_est": fmt.Sprint(g.lost * m.sampleN), "lost_est_ci95": "0.0",
		"loss_wait_ns": fmt.Sprint(m.lossWait),
		"delay_hist":   testSparse(g.delays), "pdv_hist": testSparse(m.pdv), "ipdv_hist": testSparse(m.ipdv),
		"ipdv_count": fmt.Sprint(len(m.ipdv)), "loss_periods": fmt.Sprint(len(m.periods)),
		"loss_period_max": "0", "loss_period_hist": testSparse(m.periods),
		"loss_distance_count": fmt.Sprint(len(m.dist)), "loss_distance_hist": testSparse(m.dist),
		"reordered": fmt.Sprint(g.reord), "reorder_extent_max": "0", "reorder_extent_sum": "0",
		"duplicate": fmt.Sprint(g.dup), "neg_delay": fmt.Sprint(m.neg), "compose_viol": fmt.Sprint(m.viol),
	}
	if n+g.lost > 0 {
		v["loss_ratio"] = strconv.FormatFloat(float64(g.lost)/float64(n+g.lost), 'g', 6, 64)
		v["loss_ratio_ci95"] = "0"
	}
	for kind, vals := range map[string][]int64{"delay": g.delays, "pdv": m.pdv, "ipdv": m.ipdv} {
		if len(vals) == 0 {
			continue
		}
		for _, q := range quantileNames {
			v[kind+"_"+q.name+"_ns"] = fmt.Sprint(exactQuantile(vals, q.q))
			v[kind+"_"+q.name+"_err_ns"] = "0"
		}
	}
	if n > 0 {
		v["pdv_max_ns"] = fmt.Sprint(slices.Max(m.pdv))
	}
	if len(m.ipdv) > 0 {
		v["ipdv_min_ns"], v["ipdv_max_ns"] = fmt.Sprint(slices.Min(m.ipdv)), fmt.Sprint(slices.Max(m.ipdv))
	}
	if len(m.periods) > 0 {
		v["loss_period_max"] = fmt.Sprint(slices.Max(m.periods))
	}
	if len(m.dist) > 0 {
		v["loss_distance_min"] = fmt.Sprint(slices.Min(m.dist))
	}
	if len(m.extents) > 0 {
		var sum int64
		for _, e := range m.extents {
			sum += e
		}
		v["reorder_extent_max"], v["reorder_extent_sum"] = fmt.Sprint(slices.Max(m.extents)), fmt.Sprint(sum)
	}
	out := make([]any, len(spool.ColsMetrics))
	for i, c := range spool.ColsMetrics {
		out[i] = v[c]
	}
	return out
}

// expMetrics is the expected owd_metrics row of one key and level.
type expMetrics struct {
	samples, nmin, nmax, count, lost, countEst, countVar, lostEst, lostVar int64
	lossWait, ipdvN, periods, distN, reord, extMax, extSum, dup, neg, viol int64
	delays, pdv, ipdv, periodV, distV                                      []int64
	pdvMax, ipdvMin, ipdvMax, periodMax, distMin                           *int64
}

const metricsIntCols = `m.start_ns, f.collector, f.class, f.flow_key, m.hop_from, m.hop_to, m.samples, m.sample_n_min, m.sample_n_max,
	m.count, m.lost, m.count_est, m.count_est_var, m.lost_est, m.lost_est_var, m.loss_wait_ns, m.pdv_max_ns,
	m.ipdv_count, m.ipdv_min_ns, m.ipdv_max_ns, m.loss_periods, m.loss_period_max, m.loss_distance_count, m.loss_distance_min,
	m.reordered, m.reorder_extent_max, m.reorder_extent_sum, m.duplicate, m.neg_delay, m.compose_viol,
	m.delay_hist, m.pdv_hist, m.ipdv_hist, m.loss_period_hist, m.loss_distance_hist`

func expectedMetrics(fxs []*fixture, step int64) map[string]*expMetrics {
	out := map[string]*expMetrics{}
	optMin := func(p **int64, v int64) {
		if *p == nil || v < **p {
			*p = &v
		}
	}
	optMax := func(p **int64, v int64) {
		if *p == nil || v > **p {
			*p = &v
		}
	}
	for _, fx := range fxs {
		for _, g := range fx.stats {
			m := g.m
			if m == nil {
				continue
			}
			k := fmt.Sprintf("%d|%s|%s|%s|%s|%s", floorTo(g.start, step), fx.cfg.Collector, g.flow.class, g.flow.key, g.from, g.to)
			e := out[k]
			if e == nil {
				e = &expMetrics{nmin: m.sampleN, nmax: m.sampleN}
				out[k] = e
			}
			n := int64(len(g.delays))
			e.samples++
			e.nmin, e.nmax = min(e.nmin, m.sampleN), max(e.nmax, m.sampleN)
			e.count += n
			e.lost += g.lost
			e.countEst += n * m.sampleN
			e.countVar += n * m.sampleN * (m.sampleN - 1)
			e.lostEst += g.lost * m.sampleN
			e.lostVar += g.lost * m.sampleN * (m.sampleN - 1)
			e.lossWait = max(e.lossWait, m.lossWait)
			e.delays = append(e.delays, g.delays...)
			e.pdv = append(e.pdv, m.pdv...)
			for _, v := range m.pdv {
				optMax(&e.pdvMax, v)
			}
			e.ipdv = append(e.ipdv, m.ipdv...)
			e.ipdvN += int64(len(m.ipdv))
			for _, v := range m.ipdv {
				optMin(&e.ipdvMin, v)
				optMax(&e.ipdvMax, v)
			}
			e.periods += int64(len(m.periods))
			e.periodV = append(e.periodV, m.periods...)
			optMax(&e.periodMax, 0)
			for _, v := range m.periods {
				optMax(&e.periodMax, v)
			}
			e.distN += int64(len(m.dist))
			e.distV = append(e.distV, m.dist...)
			for _, v := range m.dist {
				optMin(&e.distMin, v)
			}
			e.reord += g.reord
			for _, x := range m.extents {
				e.extMax = max(e.extMax, x)
				e.extSum += x
			}
			e.dup += g.dup
			e.neg += m.neg
			e.viol += m.viol
		}
	}
	return out
}

func (e *expMetrics) intRow(k string) string {
	opt := func(p *int64) string {
		if p == nil {
			return "NULL"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("%s|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%s|%d|%s|%s|%d|%s|%d|%s|%d|%d|%d|%d|%d|%d|%s|%s|%s|%s|%s",
		k, e.samples, e.nmin, e.nmax, e.count, e.lost, e.countEst, e.countVar, e.lostEst, e.lostVar, e.lossWait, opt(e.pdvMax),
		e.ipdvN, opt(e.ipdvMin), opt(e.ipdvMax), e.periods, opt(e.periodMax), e.distN, opt(e.distMin),
		e.reord, e.extMax, e.extSum, e.dup, e.neg, e.viol,
		testSparse(e.delays), testSparse(e.pdv), testSparse(e.ipdv), testSparse(e.periodV), testSparse(e.distV))
}

// checkMetrics compares owd_metrics_1m|1h|1d with a direct computation from
// the generated rows: counts, extremes and histograms exactly; ratios and
// intervals to the last bits of a double; each quantile by its contract (the
// exact nearest-rank quantile of the raw values lies within ± its error
// bound, and the bound is at most 1/128 of the value).
func checkMetrics(t *testing.T, db testDB, fxs []*fixture) {
	t.Helper()
	h := db.open(t)
	for _, l := range levels {
		exp := expectedMetrics(fxs, l.Ns)
		if len(exp) == 0 {
			t.Fatal("no owd_metrics rows in the test data")
		}
		var want []string
		for k, e := range exp {
			want = append(want, e.intRow(k))
		}
		sort.Strings(want)
		got := query(t, h, fmt.Sprintf("SELECT %s FROM owd_metrics_%s m JOIN flows f ON f.id = m.flow_id", metricsIntCols, l.Suffix))
		if strings.Join(want, "\n") != strings.Join(got, "\n") {
			t.Errorf("owd_metrics_%s: want %d rows, got %d", l.Suffix, len(want), len(got))
			diffRows(t, want, got)
		}
		cols := []string{"count_est_ci95", "lost_est_ci95", "loss_ratio", "loss_ratio_ci95", "reorder_ratio", "dup_ratio"}
		var qcols []string
		for _, kind := range []string{"delay", "pdv", "ipdv"} {
			for _, q := range quantileNames {
				qcols = append(qcols, "m."+kind+"_"+q.name+"_ns", "m."+kind+"_"+q.name+"_err_ns")
			}
		}
		rows, err := h.Query(fmt.Sprintf(`SELECT m.start_ns, f.collector, f.class, f.flow_key, m.hop_from, m.hop_to, m.%s, %s
			FROM owd_metrics_%s m JOIN flows f ON f.id = m.flow_id`, strings.Join(cols, ", m."), strings.Join(qcols, ", "), l.Suffix))
		if err != nil {
			t.Fatal(err)
		}
		nq := 0
		for rows.Next() {
			var key [6]string
			var fkey *string
			fl := make([]*float64, len(cols))
			qv := make([]*int64, len(qcols))
			dest := []any{&key[0], &key[1], &key[2], &fkey, &key[4], &key[5]}
			for i := range fl {
				dest = append(dest, &fl[i])
			}
			for i := range qv {
				dest = append(dest, &qv[i])
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			if fkey != nil {
				key[3] = *fkey
			} else {
				key[3] = "NULL"
			}
			k := strings.Join(key[:], "|")
			e := exp[k]
			if e == nil {
				continue // reported above
			}
			sampled := e.nmax > 1
			ci := func(k, variance int64) *float64 {
				v := 0.0
				switch {
				case !sampled:
				case k == 0:
					v = 3 * float64(e.nmax)
				default:
					v = 1.96 * math.Sqrt(float64(variance))
				}
				return &v
			}
			ratio := func(a, b int64) *float64 {
				if b == 0 {
					return nil
				}
				r := float64(a) / float64(b)
				return &r
			}
			sent := e.count + e.lost
			lr := ratio(e.lost, sent)
			// Wilson score interval, written out here (z = 1.96).
			var lrci *float64
			if lr != nil {
				v := 0.0
				if sampled {
					n, p, z := float64(sent), *lr, 1.96
					c := (p + z*z/(2*n)) / (1 + z*z/n)
					h := z / (1 + z*z/n) * math.Sqrt(p*(1-p)/n+z*z/(4*n*n))
					lo, hi := math.Max(c-h, 0), math.Min(c+h, 1)
					if e.lost == 0 {
						lo = 0
					}
					if e.lost == sent {
						hi = 1
					}
					v = (hi - lo) / 2
				}
				lrci = &v
			}
			for i, w := range []*float64{ci(e.count, e.countVar), ci(e.lost, e.lostVar), lr, lrci, ratio(e.reord, e.count), ratio(e.dup, sent)} {
				g := fl[i]
				if (w == nil) != (g == nil) || (w != nil && math.Abs(*w-*g) > 1e-12*math.Abs(*w)) {
					t.Errorf("owd_metrics_%s %s: %s = %v, want %v", l.Suffix, k, cols[i], deref(g), deref(w))
				}
			}
			for ki, vals := range [][]int64{e.delays, e.pdv, e.ipdv} {
				for qi, q := range quantileNames {
					v, ve := qv[(ki*len(quantileNames)+qi)*2], qv[(ki*len(quantileNames)+qi)*2+1]
					name := qcols[(ki*len(quantileNames)+qi)*2]
					if len(vals) == 0 {
						if v != nil || ve != nil {
							t.Errorf("owd_metrics_%s %s: %s of no values is %v", l.Suffix, k, name, *v)
						}
						continue
					}
					if v == nil || ve == nil {
						t.Errorf("owd_metrics_%s %s: %s NULL", l.Suffix, k, name)
						continue
					}
					x := exactQuantile(vals, q.q)
					if d := *v - x; d > *ve || -d > *ve || *ve > abs(x)/128+1 {
						t.Errorf("owd_metrics_%s %s: %s = %d ± %d, exact %d", l.Suffix, k, name, *v, *ve, x)
					}
					nq++
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if nq == 0 {
			t.Errorf("owd_metrics_%s: no quantile checked", l.Suffix)
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return "NULL"
	}
	return *p
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
