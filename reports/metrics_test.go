package reports

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/hist"
	"github.com/tmon-project/tmon/spool"
)

// writeSpool writes owd_stats and owd_metrics files of one class and hop
// pair, two flows and three intervals; sampleN per interval. It returns
// every delay, lost count and the rows' sum of IPDV counts.
func writeSpool(t *testing.T, dir string, sampleN []uint64, metrics bool) (delays []int64, lost uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	for iv, n := range sampleN {
		start := int64(1780315200e9) + int64(iv)*5e9
		var st, me []string
		for flow := range 2 {
			var d []int64
			for range 200 + rng.IntN(300) {
				d = append(d, 10e6+rng.Int64N(5e6)+int64(flow)*3e6)
			}
			l := uint64(rng.IntN(5))
			lost += l
			delays = append(delays, d...)
			var delay, pdv, ipdv hist.Hist
			lo, hi, sum := slices.Min(d), slices.Max(d), int64(0)
			for i, x := range d {
				sum += x
				delay.Add(x)
				pdv.Add(x - lo)
				if i > 0 {
					ipdv.Add(x - d[i-1])
				}
			}
			key := fmt.Sprintf("%d\t5\tweb\t%d\tA\tB", start, flow)
			st = append(st, fmt.Sprintf("%s\t%d\t%d\t0\t%d\t%d\t%d\t0\t1\t7\t0\t2\t50000\t1", key, len(d), sum, lo, hi, l))
			v := map[string]string{
				"sample_n": fmt.Sprint(n), "count": fmt.Sprint(len(d)), "lost": fmt.Sprint(l), "loss_wait_ns": "2000000000",
				"delay_hist": string(delay.AppendSparse(nil)), "pdv_hist": string(pdv.AppendSparse(nil)), "ipdv_hist": string(ipdv.AppendSparse(nil)),
				"pdv_max_ns": fmt.Sprint(hi - lo), "ipdv_count": fmt.Sprint(ipdv.Count()),
				"ipdv_min_ns": fmt.Sprint(ipdv.Min()), "ipdv_max_ns": fmt.Sprint(ipdv.Max()),
				"loss_periods": fmt.Sprint(l), "loss_period_max": fmt.Sprint(min(l, 1)),
				"reordered": "7", "reorder_extent_max": fmt.Sprint(2 + flow), "reorder_extent_sum": "10", "duplicate": "1",
				"neg_delay": "0", "compose_viol": "0",
			}
			row := []string{key}
			for _, c := range spool.ColsMetrics[6:] {
				row = append(row, v[c])
			}
			me = append(me, strings.Join(row, "\t"))
		}
		write(t, dir, "owd_stats", start, spool.ColsStats, st)
		if metrics {
			write(t, dir, "owd_metrics", start, spool.ColsMetrics, me)
		}
	}
	return delays, lost
}

func write(t *testing.T, dir, typ string, start int64, cols, rows []string) {
	t.Helper()
	p := filepath.Join(dir, typ, fmt.Sprintf("%s-%d.tsv", typ, start))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	text := "#" + strings.Join(cols, "\t") + "\n" + strings.Join(rows, "\n") + "\n"
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The quantiles of the merged histograms hold the exact quantiles of every
// delay of the spool within their printed bound; counts add up; sampling
// turns the totals into estimates; the first-version lines stay.
func TestSummaryMetrics(t *testing.T) {
	dir := t.TempDir()
	delays, lost := writeSpool(t, dir, []uint64{1, 4, 4}, true)
	s, err := ReadSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Pairs) != 1 || s.Pairs[0].M == nil {
		t.Fatalf("pairs %+v: want one with metrics", s.Pairs)
	}
	p := s.Pairs[0]
	m := p.M
	if m.Rows != 6 || m.Count != uint64(len(delays)) || m.Lost != lost || m.Delay.Count() != m.Count {
		t.Errorf("rows %d count %d lost %d hist %d; want 6, %d, %d", m.Rows, m.Count, m.Lost, m.Delay.Count(), len(delays), lost)
	}
	if m.Delay.Min() != slices.Min(delays) || m.Delay.Max() != slices.Max(delays) {
		t.Errorf("delay extremes %d %d, want the exact %d %d", m.Delay.Min(), m.Delay.Max(), slices.Min(delays), slices.Max(delays))
	}
	sorted := slices.Sorted(slices.Values(delays))
	for _, q := range quantileLabels {
		v, e := m.Delay.Quantile(q.q)
		x, _ := Percentile(sorted, q.q)
		if v-x > e || x-v > e || float64(e) > float64(x)*hist.RelErr+1 {
			t.Errorf("%s: %d ± %d, exact %d", q.label, v, e, x)
		}
	}
	if m.SampleNMin != 1 || m.SampleNMax != 4 || !m.Sampled() || m.ReorderExtentMax != 3 || m.Reordered != 42 {
		t.Errorf("sampling %d..%d, reorder extent max %d over %d", m.SampleNMin, m.SampleNMax, m.ReorderExtentMax, m.Reordered)
	}
	var out bytes.Buffer
	s.WriteText(&out)
	text := out.String()
	for _, want := range []string{
		"class web, hop A → B: 2 flow(s), 3 interval(s)", "delays measured  " + fmt.Sprint(len(delays)), "signature clash  0",
		"delay quantiles  p50 ", "p99.9 ", "loss ratio ", "within 2s", "loss periods ", "PDV p99 ", "IPDV p99 ",
		"reorder extent   max 3, mean 1.43", "(estimates: 1 in N packets measured)", "sampling         1 in 1 to 1 in 4",
		"dropped          12",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
}

// Without owd_metrics files (an older collector) the summary is what it was.
func TestSummaryWithoutMetrics(t *testing.T) {
	dir := t.TempDir()
	writeSpool(t, dir, []uint64{1, 1}, false)
	s, err := ReadSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.WriteText(&out)
	if s.Pairs[0].M != nil || strings.Contains(out.String(), "IPPM") || !strings.Contains(out.String(), "delays measured") {
		t.Errorf("summary without owd_metrics:\n%s", &out)
	}
}
