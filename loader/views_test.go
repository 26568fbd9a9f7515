package loader

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Two collectors that received the same flows: c2 is a complete copy of
// c1's spool, c1 lost some of its owd_stats files. Summing the tables counts
// every packet twice; the _one views give exactly the figures of one
// complete collector (the oracle: the same spool loaded alone), take c2's
// rows where c1 has none, and otherwise c1's (equal counts: first by name).
func TestViewsCountEachFigureOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		root := t.TempDir()
		day := time.Date(2026, 11, 22, 23, 52, 0, 0, time.UTC)
		full := genSpool(t, filepath.Join(root, "full"), genConfig{
			Collector: "c1", Start: day, Interval: 10 * time.Second, N: 90, Flows: 5, MaxPkts: 6, Seed: 1, Current: true,
		})
		// The oracle: one collector alone.
		alone := sqliteDB(t)
		copyDir(t, full.dir, filepath.Join(root, "alone"))
		load(t, alone, Config{Spools: []Spool{{"c1", filepath.Join(root, "alone")}}, PerPacket: true})
		c1, c2 := filepath.Join(root, "c1"), filepath.Join(root, "c2")
		copyDir(t, full.dir, c1)
		copyDir(t, full.dir, c2)
		// c1 lost the owd_stats, owd_metrics and owd_hist files of the
		// intervals starting in minute 23:55 (a gap in its reception).
		gap := day.Add(3 * time.Minute).Format("20060102T1504")
		removed := 0
		for _, typ := range []string{"owd_stats", "owd_metrics", "owd_hist"} {
			files, _ := filepath.Glob(filepath.Join(c1, typ, typ+"-"+gap+"*.tsv"))
			for _, f := range files {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
				removed++
			}
		}
		if removed == 0 {
			t.Fatalf("no file of minute %s to remove", gap)
		}
		load(t, db, Config{Spools: []Spool{{"c1", c1}, {"c2", c2}}, PerPacket: true})
		h, ho := db.open(t), alone.open(t)
		for _, l := range levels {
			for _, q := range []string{
				"SELECT SUM(count), SUM(lost_sum), SUM(missed_sum), SUM(sum_ns), MIN(min_ns), MAX(max_ns), COUNT(*) FROM %s",
			} {
				want := query(t, ho, fmt.Sprintf(q, "owd_stats_"+l.Suffix))
				if got := query(t, h, fmt.Sprintf(q, "owd_stats_"+l.Suffix+"_one")); got[0] != want[0] {
					t.Errorf("owd_stats_%s_one: %s, one collector alone %s", l.Suffix, got[0], want[0])
				}
				if doubled := query(t, h, fmt.Sprintf("SELECT SUM(count) FROM owd_stats_%s", l.Suffix)); doubled[0] == strings.Split(want[0], "|")[0] {
					t.Errorf("owd_stats_%s: the fixture does not double the sum (%s)", l.Suffix, doubled[0])
				}
			}
			q := "SELECT SUM(count), SUM(lost), SUM(samples), SUM(ipdv_count), COUNT(*) FROM %s"
			want := query(t, ho, fmt.Sprintf(q, "owd_metrics_"+l.Suffix))
			if got := query(t, h, fmt.Sprintf(q, "owd_metrics_"+l.Suffix+"_one")); got[0] != want[0] {
				t.Errorf("owd_metrics_%s_one: %s, one collector alone %s", l.Suffix, got[0], want[0])
			}
			q = "SELECT SUM(count), COUNT(*) FROM %s"
			want = query(t, ho, fmt.Sprintf(q, "owd_hist_"+l.Suffix))
			if got := query(t, h, fmt.Sprintf(q, "owd_hist_"+l.Suffix+"_one")); got[0] != want[0] {
				t.Errorf("owd_hist_%s_one: %s, one collector alone %s", l.Suffix, got[0], want[0])
			}
		}
		// Which collector: c2 for the gap minute only.
		gapNs := day.Add(3 * time.Minute).UnixNano()
		got := query(t, h, "SELECT DISTINCT collector, start_ns = ? FROM owd_stats_1m_one ORDER BY 1", gapNs)
		if strings.Join(got, ",") != "c1|0,c2|1" {
			t.Errorf("owd_stats_1m_one collectors (collector|is gap minute): %v, want c1 outside the gap, c2 in it", got)
		}
	})
}
