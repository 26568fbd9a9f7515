package loader

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// flow_counters (docs/spool.md) rolled up to 1 min, 1 h and 1 day: every
// column equals a direct computation from the rows written, with plain Go
// sums and math/big for the sums of squares. Intervals of 20 s cross an
// hour and a day boundary; one file of an interval is written twice
// (<start>.1.tsv, a collector restarted) and its rows add up; a flow is
// seen by two probes; rows with ICMP errors only have no sizes.
func TestCountersRollup(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		dir := filepath.Join(t.TempDir(), "c1")
		rng := rand.New(rand.NewPCG(5, 9))
		start := time.Date(2026, 11, 22, 23, 58, 0, 0, time.UTC)
		const hdr = "interval_start\tinterval_s\tclass\tflow\tprobe\tiface\tpackets\tbytes\tfragments\ticmp_errors\tsize_sumsq\tsize_min\tsize_max"
		type row struct {
			start                    int64
			class, key, probe, iface string
			pk, by, fr, ic           int64
			sq                       *big.Int
			mn, mx                   int64
		}
		var fl tsvFile
		fl.add(start.UnixNano(), 1, "site", "ip.src=10.1.0.1 ip.dst=10.2.0.1")
		fl.add(start.UnixNano(), 2, "other", "")
		writeTSV(t, dir, "flows", start, hdrFlows, &fl)
		var rows []row
		for iv := range 12 {
			s := start.Add(time.Duration(iv) * 20 * time.Second)
			var f tsvFile
			for _, w := range []struct {
				flow                     int
				class, key, probe, iface string
			}{{1, "site", "ip.src=10.1.0.1 ip.dst=10.2.0.1", "pa", "a0"}, {1, "site", "ip.src=10.1.0.1 ip.dst=10.2.0.1", "pb", "b0"}, {2, "other", "", "pa", "a0"}} {
				r := row{start: s.UnixNano(), class: w.class, key: w.key, probe: w.probe, iface: w.iface, sq: new(big.Int)}
				n := rng.IntN(5)
				if iv == 3 {
					n = 0 // ICMP errors only
				}
				for range n {
					sz := int64(40 + rng.IntN(1460))
					if r.pk == 0 || sz < r.mn {
						r.mn = sz
					}
					r.mx = max(r.mx, sz)
					r.pk++
					r.by += sz
					r.sq.Add(r.sq, big.NewInt(sz*sz))
					if rng.IntN(4) == 0 {
						r.fr++
					}
				}
				r.ic = int64(rng.IntN(2))
				if iv == 3 {
					r.ic = 1
				}
				if r.pk == 0 && r.ic == 0 {
					continue
				}
				mn, mx := "", ""
				if r.pk > 0 {
					mn, mx = fmt.Sprint(r.mn), fmt.Sprint(r.mx)
				}
				f.add(r.start, 20, r.class, w.flow, r.probe, r.iface, r.pk, r.by, r.fr, r.ic, r.sq, mn, mx)
				rows = append(rows, r)
			}
			writeTSV(t, dir, "flow_counters", s, hdr, &f)
			if iv == 5 {
				// The same interval again, as a restarted collector names it.
				var again tsvFile
				r := row{start: s.UnixNano(), class: "other", key: "", probe: "pa", iface: "a0", pk: 1, by: 1500, sq: big.NewInt(1500 * 1500), mn: 1500, mx: 1500}
				again.add(r.start, 20, "other", 2, "pa", "a0", 1, 1500, 0, 0, 1500*1500, 1500, 1500)
				rows = append(rows, r)
				writeTSVName(t, dir, "flow_counters", fmt.Sprintf("flow_counters-%s.1.tsv", s.UTC().Format(startLayout)), hdr, &again)
			}
		}
		st, _ := load(t, db, Config{Spools: []Spool{{"c1", dir}}})
		if st.Bad != 0 {
			t.Fatalf("bad lines: %+v", st)
		}
		h := db.open(t)
		for _, l := range levels {
			type agg struct {
				samples, pk, by, fr, ic int64
				sq                      *big.Int
				mn, mx                  *int64
			}
			m := map[string]*agg{}
			for _, r := range rows {
				k := fmt.Sprintf("%d|%s|%s|%s|%s", floorTo(r.start, l.Ns), r.class, r.key, r.probe, r.iface)
				a := m[k]
				if a == nil {
					a = &agg{sq: new(big.Int)}
					m[k] = a
				}
				a.samples++
				a.pk += r.pk
				a.by += r.by
				a.fr += r.fr
				a.ic += r.ic
				a.sq.Add(a.sq, r.sq)
				if r.pk > 0 {
					mn, mx := r.mn, r.mx
					if a.mn == nil || mn < *a.mn {
						a.mn = &mn
					}
					if a.mx == nil || mx > *a.mx {
						a.mx = &mx
					}
				}
			}
			opt := func(p *int64) string {
				if p == nil {
					return "NULL"
				}
				return fmt.Sprint(*p)
			}
			var want []string
			for k, a := range m {
				sq := "NULL"
				if a.samples > 0 {
					sq = a.sq.String()
				}
				want = append(want, fmt.Sprintf("%s|%d|%d|%d|%d|%d|%s|%s|%s", k, a.samples, a.pk, a.by, a.fr, a.ic, sq, opt(a.mn), opt(a.mx)))
			}
			sort.Strings(want)
			got := query(t, h, fmt.Sprintf(`SELECT c.start_ns, f.class, COALESCE(f.flow_key, ''), c.probe, c.iface, c.samples, c.packets, c.bytes,
				c.fragments, c.icmp_errors, c.size_sumsq, c.size_min, c.size_max FROM flow_counters_%s c JOIN flows f ON f.id = c.flow_id`, l.Suffix))
			if strings.Join(want, "\n") != strings.Join(got, "\n") {
				t.Errorf("flow_counters_%s: want %d rows, got %d", l.Suffix, len(want), len(got))
				diffRows(t, want, got)
			}
		}
	})
}
