package loader

import (
	"context"
	"fmt"
	"strings"
)

// Views that give every figure once when several collectors load the same
// flows (redundant collectors, docs/loader.md "Redundant collectors"). The
// loader keeps each collector's rows, keyed on the collector's own flow; a
// report that sums them counts every packet once per collector. The views
// pick, per flow (class and key), interval and hop pair, the rows of one
// collector: the one that measured the most delays, then the one with the
// fewest packets it could not account for (lost + missed: a collector that
// missed a probe's PDUs reports that probe's packets as lost), then the
// first by name. Picking on owd_stats and joining the other tables to the
// pick keeps one collector's figures together: the counts, the histograms
// and the metrics of a row always come from the same collector.
//
// They are plain SQL views (window functions: SQLite ≥ 3.25, MariaDB ≥
// 10.2, MySQL ≥ 8.0), recomputed by every query: nothing to keep in step
// with the tables, and nothing the loader must update.

// View is a view the loader creates: a name and its SELECT.
type View struct {
	Name, Select string
}

// PickOrder is the pick's order among the owd_stats rows (alias s) of one
// flow's collectors (their flows rows, alias f) for an interval and hop
// pair: the first is chosen. Reports that pick among a single flow's rows
// use it rather than the view (which ranks every flow of the period).
const PickOrder = "s.count DESC, s.lost_sum + s.missed_sum, f.collector"

// pickView is owd_pick_<level>: the chosen rows' keys with the collector,
// class and flow key they belong to.
func pickView(level string) View {
	return View{
		Name: "owd_pick_" + level,
		Select: `SELECT start_ns, flow_id, hop_from, hop_to, collector, class, flow_key FROM (
SELECT s.start_ns, s.flow_id, s.hop_from, s.hop_to, f.collector, f.class, f.flow_key,
ROW_NUMBER() OVER (PARTITION BY f.class, f.flow_key, CASE WHEN f.flow_key IS NULL THEN f.id END, s.start_ns, s.hop_from, s.hop_to
ORDER BY ` + PickOrder + `) AS pick_rank
FROM owd_stats_` + level + ` s JOIN flows f ON f.id = s.flow_id) ranked WHERE pick_rank = 1`,
	}
}

// oneView is <table>_one: the rows of table that the pick chose, with the
// collector, class and flow key.
func oneView(table, level string) View {
	return View{
		Name: table + "_one",
		Select: `SELECT p.collector, p.class, p.flow_key, t.* FROM ` + table + ` t JOIN owd_pick_` + level +
			` p ON p.start_ns = t.start_ns AND p.flow_id = t.flow_id AND p.hop_from = t.hop_from AND p.hop_to = t.hop_to`,
	}
}

// allViews lists the views in creation order (a view after those it uses).
func allViews() []View {
	var vs []View
	for _, l := range levels {
		vs = append(vs, pickView(l.Suffix))
	}
	for _, l := range levels {
		for _, base := range []string{"owd_stats", "owd_metrics", "owd_hist"} {
			vs = append(vs, oneView(base+"_"+l.Suffix, l.Suffix))
		}
	}
	return vs
}

// createViews creates or updates the views.
func (l *Loader) createViews(ctx context.Context, q querier) error {
	for _, v := range allViews() {
		if err := l.d.EnsureView(ctx, q, v); err != nil {
			return fmt.Errorf("loader: view %s: %w", v.Name, err)
		}
	}
	return nil
}

// viewSQL is the CREATE VIEW statement of v without the dialect's options.
func viewSQL(d dialect, v View, options string) string {
	return fmt.Sprintf("CREATE %sVIEW %s AS %s", options, d.Quote(v.Name), strings.TrimSpace(v.Select))
}
