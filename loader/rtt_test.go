package loader

import (
	"fmt"
	"math/big"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/hist"
)

// rtt_stats (docs/spool.md) rolled up: counts, sums, the exact sum of
// squares (beyond 64 bits), extremes and the histogram merge exactly; the
// quantiles of a merged row are those of the merged histogram, computed
// here with package hist over every RTT written, clamped to the exact
// extremes; a split record (a continuation row holding only buckets) adds
// to its row.
func TestRTTRollup(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		dir := filepath.Join(t.TempDir(), "c1")
		start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
		const hdr = "interval_start\tinterval_s\tclass\tflow\tprobe\tiface\tkind\tcount\tunanswered\tsum_ns\tsumsq_ns2\tmin_ns\tmax_ns\thist"
		var fl tsvFile
		fl.add(start.UnixNano(), 1, "dns", "ip.dst=10.2.0.1")
		writeTSV(t, dir, "flows", start, hdrFlows, &fl)
		var all []int64
		unans := 0
		for iv := range 6 {
			s := start.Add(time.Duration(iv) * 20 * time.Second)
			var rtts []int64
			for i := range 5 + iv {
				rtts = append(rtts, int64(1e6*(iv+1))+int64(i)*2e8+int64(iv)*5e9) // up to 25 s: sum of squares beyond 64 bits
			}
			all = append(all, rtts...)
			var h hist.Hist
			var sum int64
			sq := new(big.Int)
			mn, mx := rtts[0], rtts[0]
			for _, v := range rtts {
				h.Add(v)
				sum += v
				sq.Add(sq, new(big.Int).Mul(big.NewInt(v), big.NewInt(v)))
				mn, mx = min(mn, v), max(mx, v)
			}
			sparse := string(h.AppendSparse(nil))
			var f tsvFile
			if iv == 2 {
				// split: the statistics with the first buckets, then a
				// continuation row with the rest
				parts := strings.Split(sparse, ",")
				f.add(s.UnixNano(), 20, "dns", 1, "pa", "a0", "dns", len(rtts), 1, sum, sq, mn, mx, strings.Join(parts[:2], ","))
				f.add(s.UnixNano(), 20, "dns", 1, "pa", "a0", "dns", 0, 0, 0, 0, "", "", strings.Join(parts[2:], ","))
			} else {
				f.add(s.UnixNano(), 20, "dns", 1, "pa", "a0", "dns", len(rtts), 1, sum, sq, mn, mx, sparse)
			}
			unans++
			writeTSV(t, dir, "rtt_stats", s, hdr, &f)
		}
		if st, _ := load(t, db, Config{Spools: []Spool{{"c1", dir}}}); st.Bad != 0 {
			t.Fatalf("bad lines: %+v", st)
		}
		var h hist.Hist
		var sum int64
		sq := new(big.Int)
		for _, v := range all {
			h.Add(v)
			sum += v
			sq.Add(sq, new(big.Int).Mul(big.NewInt(v), big.NewInt(v)))
		}
		if sq.BitLen() <= 64 {
			t.Fatal("test data: sum of squares within 64 bits")
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		h.SetRange(all[0], all[len(all)-1])
		p50, e50 := h.Quantile(0.5)
		p99, e99 := h.Quantile(0.99)
		want := fmt.Sprintf("%d|%d|%d|%s|%d|%d|%d|%d|%d|%d", len(all), unans, sum, sq, all[0], all[len(all)-1], p50, e50, p99, e99)
		got := query(t, db.open(t), `SELECT count, unanswered, sum_ns, sumsq_ns2, min_ns, max_ns, rtt_p50_ns, rtt_p50_err_ns, rtt_p99_ns, rtt_p99_err_ns FROM rtt_stats_1d`)
		if len(got) != 1 || got[0] != want {
			t.Errorf("rtt_stats_1d %v, want %s", got, want)
		}
		if n := query(t, db.open(t), `SELECT COUNT(*) FROM rtt_stats_1m`); n[0] != "2" {
			t.Errorf("%s minute rows, want 2 (six 20 s intervals from 10:00:00)", n[0])
		}
	})
}
