package e2e

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/reports"
	"github.com/tmon-project/tmon/spool"
)

// TestMetricsSampled replays generated traffic through real probes and a
// collector with 1/1 and 1/16 sampling and checks the owd_metrics rows
// against the generator's truth: the packets measured must be the same at
// both hops (no false loss), about 1/N of them, and every metric of every
// flow and interval must equal a direct computation from the truth of the
// packets selected.
func TestMetricsSampled(t *testing.T) {
	for _, n := range []int{1, 16} {
		t.Run(fmt.Sprintf("1in%d", n), func(t *testing.T) {
			gc := gen.DefaultConfig()
			gc.Seed, gc.Count, gc.Rate = 5, 24000, 6000
			d, err := gen.ParseDist("pareto:15ms:2")
			if err != nil {
				t.Fatal(err)
			}
			gc.Delay = d
			gc.Loss, gc.Dup, gc.Frag, gc.Clashes, gc.IPv6 = 0.02, 0.005, 0.01, 0, 0.1
			dir, truth := generate(t, gc)
			truth = gen.Datagrams(truth) // tmon reassembles fragments
			interval := 2 * time.Second
			xml := fmt.Sprintf(genConf, interval, freePort(t), slicesAttr())
			xml = strings.Replace(xml, `perPacket="true">`, fmt.Sprintf(`perPacket="true" sample="1/%d">`, n), 1)
			spoolDir := runPath(t, xml, map[string]string{
				"pa": filepath.Join(dir, "hop-a.pcap"),
				"pb": filepath.Join(dir, "hop-b.pcap"),
			})
			s, err := reports.ReadSpool(spoolDir)
			if err != nil {
				t.Fatal(err)
			}
			checkMetrics(t, spoolDir, s, truth, n, interval)
		})
	}
}

func checkMetrics(t *testing.T, spoolDir string, s *reports.Summary, truth []gen.TruthRow, n int, interval time.Duration) {
	t.Helper()
	// Flow ids of the collector, by key text.
	flows := map[string]string{}
	for _, r := range readSpoolRows(t, spoolDir, "flows") {
		flows[r["key"]] = r["flow"]
	}
	type key struct {
		flow  string
		start int64
	}
	type pkt struct {
		a, b int64
		lost bool
	}
	seqs := map[key][]pkt{}
	dups := map[key]uint64{}
	var inClassN, selected int
	for _, r := range truth {
		if !inClass(r) {
			continue
		}
		inClassN++
		_, measured := s.Packets[r.TA]
		lost := s.Lost[r.TA]
		if !measured && !lost {
			continue // not selected (or never measured: checked below)
		}
		selected++
		if lost != r.Lost {
			t.Errorf("seq %d: lost %v, truth %v (the two hops selected differently?)", r.Seq, lost, r.Lost)
		}
		fk := fmt.Sprintf("ip.src=%s ip.dst=%s l4.dport=%d", r.Src, r.Dst, r.DstPort)
		id, ok := flows[fk]
		if !ok {
			t.Fatalf("no flow %q in the spool (flows %v)", fk, flows)
		}
		k := key{id, r.TA - r.TA%int64(interval)}
		seqs[k] = append(seqs[k], pkt{r.TA, r.TB, r.Lost})
		if r.DupTB != 0 {
			dups[key{id, r.DupTB - r.DupTB%int64(interval)}]++
		}
	}
	if s.Missed != 0 {
		t.Errorf("%d missed packets: the hops did not select the same packets", s.Missed)
	}
	if n == 1 && selected != inClassN {
		t.Errorf("unsampled: %d of %d packets measured", selected, inClassN)
	}
	p := 1 / float64(n)
	if d := math.Abs(float64(selected) - float64(inClassN)*p); d > 4.5*math.Sqrt(float64(inClassN)*p*(1-p)) {
		t.Errorf("1/%d: %d of %d packets measured", n, selected, inClassN)
	}

	rows := readSpoolRows(t, spoolDir, spool.TypeMetrics)
	got := map[key]map[string]string{}
	for _, r := range rows {
		st, _ := strconv.ParseInt(r["interval_start"], 10, 64)
		got[key{r["flow"], st}] = r
	}
	for k, dk := range dups {
		if _, ok := seqs[k]; !ok && dk > 0 {
			seqs[k] = nil // a row with duplicates only
		}
	}
	if len(got) != len(seqs) {
		t.Errorf("%d owd_metrics rows, truth %d flow-intervals", len(got), len(seqs))
	}
	for k, ps := range seqs {
		r := got[k]
		if r == nil {
			t.Errorf("%+v: no owd_metrics row", k)
			continue
		}
		slices.SortFunc(ps, func(x, y pkt) int { return cmp.Compare(x.a, y.a) })
		var delays []int64
		var lost, periods, ipdvN, run int64
		minD, ipdvMin, ipdvMax := int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MinInt64)
		for i, q := range ps {
			if q.lost {
				lost++
				run++
				continue
			}
			if run > 0 {
				periods++
				run = 0
			}
			d := q.b - q.a
			delays = append(delays, d)
			minD = min(minD, d)
			if i > 0 && !ps[i-1].lost {
				v := d - (ps[i-1].b - ps[i-1].a)
				ipdvN++
				ipdvMin, ipdvMax = min(ipdvMin, v), max(ipdvMax, v)
			}
		}
		if run > 0 {
			periods++
		}
		var arr []pkt
		for _, q := range ps {
			if !q.lost {
				arr = append(arr, q)
			}
		}
		slices.SortFunc(arr, func(x, y pkt) int { return cmp.Or(cmp.Compare(x.b, y.b), cmp.Compare(x.a, y.a)) })
		var reo, extMax, extSum int64
		for j := range arr {
			for i := 0; i < j; i++ {
				if arr[i].a > arr[j].a {
					reo++
					extSum += int64(j - i)
					extMax = max(extMax, int64(j-i))
					break
				}
			}
		}
		want := map[string]string{
			"sample_n": strconv.Itoa(n), "count": strconv.Itoa(len(delays)), "lost": strconv.FormatInt(lost, 10),
			"count_est": strconv.Itoa(len(delays) * n), "loss_periods": strconv.FormatInt(periods, 10),
			"ipdv_count": strconv.FormatInt(ipdvN, 10), "reordered": strconv.FormatInt(reo, 10),
			"reorder_extent_max": strconv.FormatInt(extMax, 10), "reorder_extent_sum": strconv.FormatInt(extSum, 10),
			"duplicate": strconv.FormatUint(dups[k], 10), "neg_delay": "0", "compose_viol": "0",
			"loss_wait_ns": "2000000000",
		}
		if ipdvN > 0 {
			want["ipdv_min_ns"], want["ipdv_max_ns"] = strconv.FormatInt(ipdvMin, 10), strconv.FormatInt(ipdvMax, 10)
		}
		if len(delays) > 0 {
			want["pdv_max_ns"] = strconv.FormatInt(slices.Max(delays)-minD, 10)
		}
		for c, w := range want {
			if r[c] != w {
				t.Errorf("flow %s interval %d: %s %q, truth %q", k.flow, k.start, c, r[c], w)
			}
		}
		if len(delays) == 0 {
			continue
		}
		slices.Sort(delays)
		for _, q := range []struct {
			name string
			q    float64
		}{{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}} {
			rank := max(1, min(int(math.Ceil(q.q*float64(len(delays)))), len(delays)))
			exact := delays[rank-1]
			v, _ := strconv.ParseInt(r["delay_"+q.name+"_ns"], 10, 64)
			e, _ := strconv.ParseInt(r["delay_"+q.name+"_err_ns"], 10, 64)
			if v-exact > e || exact-v > e || float64(e) > float64(exact)/128+0.5 {
				t.Errorf("flow %s interval %d: delay %s %d ± %d, exact %d", k.flow, k.start, q.name, v, e, exact)
			}
		}
	}
	t.Logf("1/%d: %d of %d packets measured, %d owd_metrics rows checked against the truth", n, selected, inClassN, len(seqs))
}

// readSpoolRows reads every complete file of a spool type as maps of column → value.
func readSpoolRows(t *testing.T, spoolDir, typ string) []map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(spoolDir, typ, typ+"-*.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			continue
		}
		hdr, rows, err := spool.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range rows {
			m := map[string]string{}
			for i, h := range hdr {
				m[h] = row[i]
			}
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		if _, err := os.Stat(filepath.Join(spoolDir, typ)); err != nil {
			t.Fatalf("no %s files: %v", typ, err)
		}
	}
	return out
}
