package query

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/reports/internal/fixture"
)

// One flow instance selected, with both redundant collectors loaded: each
// flow's figures (delays, losses, the series) equal the generator's truth
// for that flow's packets (src, dst, destination port), counted once; and
// the flows add up to the truth of the class. Also with one collector
// selected.
func TestOneFlowAgainstTruth(t *testing.T) {
	fx := theFixture(t)
	type ft struct{ count, lost int64 }
	truth := map[string]*ft{}
	var total ft
	for _, r := range fx.Truth {
		k := fmt.Sprintf("%s %s %d", r.Src, r.Dst, r.DstPort)
		if truth[k] == nil {
			truth[k] = &ft{}
		}
		if r.Lost {
			truth[k].lost++
			total.lost++
		} else {
			truth[k].count++
			total.count++
		}
	}
	if len(truth) < 2 {
		t.Fatalf("the fixture has %d flows: nothing to tell apart", len(truth))
	}
	eachDB(t, nil, func(t *testing.T, db *DB) {
		ctx := context.Background()
		keys := flowKeys(t, db)
		if len(keys) != len(truth) {
			t.Fatalf("%d flows in the database, the truth has %d", len(keys), len(truth))
		}
		for _, coll := range []string{"", "c2"} {
			var sum ft
			for _, key := range keys {
				f := map[string]string{}
				for _, tok := range strings.Fields(key) {
					k, v, _ := strings.Cut(tok, "=")
					f[k] = v
				}
				want := truth[f["ip.src"]+" "+f["ip.dst"]+" "+f["l4.dport"]]
				if want == nil {
					t.Fatalf("flow %q: not in the truth", key)
				}
				s := daySel(fx, "day")
				s.Class, s.Flow, s.HopFrom, s.HopTo, s.Collector = fixture.Class, key, fixture.HopFrom, fixture.HopTo, coll
				tot, err := db.Total(ctx, s)
				if err != nil {
					t.Fatal(err)
				}
				if tot.Count != want.count || tot.Lost != want.lost {
					t.Errorf("collector %q, flow %s: %d delays, %d lost; truth %d, %d", coll, key, tot.Count, tot.Lost, want.count, want.lost)
				}
				steps, err := db.Series(ctx, s)
				if err != nil {
					t.Fatal(err)
				}
				var n int64
				for _, st := range steps {
					n += st.Count
				}
				if n != want.count {
					t.Errorf("collector %q, flow %s: the series sums to %d delays, truth %d", coll, key, n, want.count)
				}
				sum.count += tot.Count
				sum.lost += tot.Lost
			}
			if sum != total {
				t.Errorf("collector %q: the flows sum to %+v, the class's truth is %+v", coll, sum, total)
			}
		}
	})
}

// flowKeys lists the fixture class's flow keys.
func flowKeys(t *testing.T, db *DB) []string {
	t.Helper()
	var keys []string
	err := db.rows(context.Background(), "SELECT DISTINCT flow_key FROM flows WHERE class = ? AND flow_key IS NOT NULL ORDER BY 1", []any{fixture.Class}, func(r *sql.Rows) error {
		var k string
		keys = append(keys, k)
		return r.Scan(&keys[len(keys)-1])
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// The selectors' options: the collectors, classes, flows and hop pairs of
// the database; the pairs read from the per-class day rows are those of
// the per-flow rows.
func TestOptions(t *testing.T) {
	eachDB(t, nil, func(t *testing.T, db *DB) {
		ctx := context.Background()
		for _, class := range []string{"", fixture.Class} {
			s := daySel(fx, "day")
			s.Class = class
			o, err := db.Options(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			db.flowRows = true
			o2, err := db.Options(ctx, s)
			db.flowRows = false
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(o.Pairs) != fmt.Sprint(o2.Pairs) || fmt.Sprint(o.Pairs) != "[["+fixture.HopFrom+" "+fixture.HopTo+"]]" {
				t.Errorf("class %q: pairs %v (per-flow rows: %v), want [[A B]]", class, o.Pairs, o2.Pairs)
			}
			if fmt.Sprint(o.Collectors) != "[c1 c2]" || fmt.Sprint(o.Classes) != "["+fixture.Class+"]" {
				t.Errorf("collectors %v, classes %v", o.Collectors, o.Classes)
			}
			if class != "" && len(o.Flows) != len(flowKeys(t, db)) {
				t.Errorf("%d flows offered, the database has %d", len(o.Flows), len(flowKeys(t, db)))
			}
		}
	})
}
