package loader

import (
	"fmt"
	"github.com/tmon-project/tmon/reconcile"
	"math"
)

// recordType maps one spool observation type (docs/spool.md) to its table(s).
// Adding a type is adding one recordType to recordTypes: its table name, its
// time column and its fields (each a database column plus the spool column it
// comes from). Nothing else in the loader names a type, except flows, which
// are definitions rather than observations.
type recordType struct {
	Type  string // spool type: directory and file name prefix
	Table string // table name; for aggregated types the base of <Table>_1m, _1h, _1d
	// Aggregate: rows are merged per key (the OpKey fields, Time rounded down
	// to the minute, hour or day) with each field's AggOp. Otherwise each spool
	// line is one row, identified by (Time, file_id, line).
	Aggregate bool
	Time      string  // database column holding the row's time (ns); partitions and retention use it
	PerPacket bool    // per-packet records: loaded only with Config.PerPacket
	Fields    []field // in table column order
	// Derive computes the OpDerived fields of an aggregated row from its
	// merged fields, before each write: values that do not merge themselves
	// (a quantile, a ratio) are kept as what does (a histogram, counts).
	Derive func(r aggRow)

	tables []*Table // derived by init: one table, or one per level for aggregates
	needs  []string // spool columns every file's header must name
}

// recordTypes lists the observation types the loader knows, in the order in
// which files of the same interval are loaded.
var recordTypes = []*recordType{
	{
		Type: "owd_stats", Table: "owd_stats", Aggregate: true, Time: "start_ns",
		Fields: concat(
			[]field{
				fInt("start_ns", "interval_start", OpKey, false),
				fFlow(),
				fStr("hop_from", "hop_from", 64, OpKey, false),
				fStr("hop_to", "hop_to", 64, OpKey, false),
				fOne("samples"),
				fInt("count", "count", OpSum, false),
				fInt("sum_ns", "sum_ns", OpSum, true),
				fExact("sumsq_ns2", "sumsq_ns2"),
				fInt("min_ns", "min_ns", OpMin, true),
				fInt("max_ns", "max_ns", OpMax, true),
			},
			counterStats("lost", false),
			counterStats("missed", false),
			// Added to the spool after its first files: NULL for those.
			counterStats("dropped", true),
			counterStats("duplicate", false),
			counterStats("reordered", false),
			counterStats("clashes", false),
			[]field{
				// A bound on the clock error of every delay of the row:
				// the bound of a merge is the largest. Rows whose bound
				// was unknown are counted apart, since the max cannot
				// include them.
				fOptInt("clock_err_ns", "clock_err_ns", OpMax),
				fCountIf("clock_err_unknown", "clock_err_ns", func(s string) (bool, error) { return s == "", nil }),
				fCountIf("clock_not_ok", "clock_ok", func(s string) (bool, error) {
					switch s {
					case "0":
						return true, nil
					case "1":
						return false, nil
					}
					return false, fmt.Errorf("not 0 or 1")
				}),
			},
		),
	},
	{
		Type: "owd_hist", Table: "owd_hist", Aggregate: true, Time: "start_ns",
		Fields: []field{
			fInt("start_ns", "interval_start", OpKey, false),
			fFlow(),
			fStr("hop_from", "hop_from", 64, OpKey, false),
			fStr("hop_to", "hop_to", 64, OpKey, false),
			fInt("slice", "slice", OpKey, false),
			fEdge("lo_ns", "lo_ns", math.MinInt64),
			fEdge("hi_ns", "hi_ns", math.MaxInt64),
			fInt("count", "count", OpSum, false),
		},
	},
	{
		// IPPM metrics (docs/spool.md): counts add up, histograms merge
		// bucket by bucket, extremes by min/max; quantiles and ratios are
		// derived from those after every merge (deriveMetrics), so an hour
		// is exactly the merge of its minutes here too.
		Type: "owd_metrics", Table: "owd_metrics", Aggregate: true, Time: "start_ns",
		Fields: concat(
			[]field{
				fInt("start_ns", "interval_start", OpKey, false),
				fFlow(),
				fStr("hop_from", "hop_from", 64, OpKey, false),
				fStr("hop_to", "hop_to", 64, OpKey, false),
				fOne("samples"),
				fInt("sample_n_min", "sample_n", OpMin, false),
				fInt("sample_n_max", "sample_n", OpMax, false),
				fInt("count", "count", OpSum, false),
				fInt("lost", "lost", OpSum, false),
				// Estimates of the whole population under 1-in-N
				// sampling: N·count and its binomial variance
				// count·N·(N−1) add up over rows; the 95 % interval
				// is derived from the summed variance.
				fCalc("count_est", OpSum, []string{"count", "sample_n"}, func(v []int64) int64 { return v[0] * v[1] }),
				fCalc("count_est_var", OpSum, []string{"count", "sample_n"}, func(v []int64) int64 { return v[0] * v[1] * (v[1] - 1) }),
				fDerived("count_est_ci95", KindFloat),
				fCalc("lost_est", OpSum, []string{"lost", "sample_n"}, func(v []int64) int64 { return v[0] * v[1] }),
				fCalc("lost_est_var", OpSum, []string{"lost", "sample_n"}, func(v []int64) int64 { return v[0] * v[1] * (v[1] - 1) }),
				fDerived("lost_est_ci95", KindFloat),
				fDerived("loss_ratio", KindFloat),
				fDerived("loss_ratio_ci95", KindFloat),
				fDerived("loss_ratio_lo", KindFloat),
				fDerived("loss_ratio_hi", KindFloat),
				fInt("loss_wait_ns", "loss_wait_ns", OpMax, true),
			},
			quantileFields("delay"),
			[]field{fHist("delay_hist", "delay_hist")},
			quantileFields("pdv"),
			[]field{
				fInt("pdv_max_ns", "pdv_max_ns", OpMax, true),
				fHist("pdv_hist", "pdv_hist"),
				fInt("ipdv_count", "ipdv_count", OpSum, false),
				fInt("ipdv_min_ns", "ipdv_min_ns", OpMin, true),
				fInt("ipdv_max_ns", "ipdv_max_ns", OpMax, true),
			},
			quantileFields("ipdv"),
			[]field{
				fHist("ipdv_hist", "ipdv_hist"),
				fInt("loss_periods", "loss_periods", OpSum, false),
				fInt("loss_period_max", "loss_period_max", OpMax, false),
				fHist("loss_period_hist", "loss_period_hist"),
				fInt("loss_distance_count", "loss_distance_count", OpSum, false),
				fInt("loss_distance_min", "loss_distance_min", OpMin, true),
				fHist("loss_distance_hist", "loss_distance_hist"),
				fInt("reordered", "reordered", OpSum, false),
				fDerived("reorder_ratio", KindFloat),
				fInt("reorder_extent_max", "reorder_extent_max", OpMax, false),
				fInt("reorder_extent_sum", "reorder_extent_sum", OpSum, false),
				fInt("duplicate", "duplicate", OpSum, false),
				fDerived("dup_ratio", KindFloat),
				fInt("neg_delay", "neg_delay", OpSum, false),
				fInt("compose_viol", "compose_viol", OpSum, false),
			},
		),
		Derive: deriveMetrics,
	},
	{
		Type: "owd_packet", Table: "owd_packet", Time: "start_ns", PerPacket: true,
		Fields: []field{
			fInt("start_ns", "interval_start", OpKey, false),
			fFlow(),
			fHex("sig", "sig"),
			fStr("hop_from", "hop_from", 64, OpKey, false),
			fStr("hop_to", "hop_to", 64, OpKey, false),
			fInt("t_from", "t_from", OpKey, true),
			fInt("t_to", "t_to", OpKey, true),
			fInt("delay_ns", "delay_ns", OpKey, true),
			// Added to the spool after its first files (reassembled
			// datagrams, docs/spool.md): NULL for those.
			fOptInt("span_from_ns", "span_from_ns", OpKey),
			fOptInt("span_to_ns", "span_to_ns", OpKey),
			fOptInt("first_delay_ns", "first_delay_ns", OpKey),
		},
	},
	{
		Type: "owd_incomplete", Table: "owd_incomplete", Time: "start_ns", PerPacket: true,
		Fields: []field{
			fInt("start_ns", "interval_start", OpKey, false),
			fFlow(),
			fHex("sig", "sig"),
			fStr("kind", "kind", 16, OpKey, false),
			fText("hops", "hops"),
		},
	},
	{
		// What became of every sighting a collector was given, per
		// interval (docs/spool.md owd_accounting): counts that add up
		// over intervals, per collector, so the identity holds in every
		// row of every level.
		Type: "owd_accounting", Table: "owd_accounting", Aggregate: true, Time: "start_ns",
		Fields: []field{
			fInt("start_ns", "interval_start", OpKey, false),
			fCollector(),
			fOne("samples"),
			fInt("sightings", "sightings", OpSum, false),
			fInt("complete", "complete", OpSum, false),
			fInt("lost", "lost", OpSum, false),
			fInt("missed", "missed", OpSum, false),
			fInt("dropped", "dropped", OpSum, false),
			fInt("duplicate", "duplicate", OpSum, false),
			fInt("late", "late", OpSum, false),
			fInt("invalid", "invalid", OpSum, false),
		},
	},
	{
		// Counters of every class per flow instance, probe interface and
		// interval (analyse/counters): counts add up, sizes keep the
		// statistics that merge (sum of squares exact, min, max).
		Type: "flow_counters", Table: "flow_counters", Aggregate: true, Time: "start_ns",
		Fields: []field{
			fInt("start_ns", "interval_start", OpKey, false),
			fFlow(),
			fStr("probe", "probe", 64, OpKey, false),
			fStr("iface", "iface", 64, OpKey, false),
			fOne("samples"),
			fInt("packets", "packets", OpSum, false),
			fInt("bytes", "bytes", OpSum, false),
			fInt("fragments", "fragments", OpSum, false),
			fInt("icmp_errors", "icmp_errors", OpSum, false),
			fExact("size_sumsq", "size_sumsq"),
			fInt("size_min", "size_min", OpMin, true),
			fInt("size_max", "size_max", OpMax, true),
		},
	},
	{
		// Round trips per flow instance, probe interface, kind and
		// interval (analyse/rtt): statistics that merge, the histogram
		// merged bucket by bucket, quantiles derived from it.
		Type: "rtt_stats", Table: "rtt_stats", Aggregate: true, Time: "start_ns",
		Fields: concat(
			[]field{
				fInt("start_ns", "interval_start", OpKey, false),
				fFlow(),
				fStr("probe", "probe", 64, OpKey, false),
				fStr("iface", "iface", 64, OpKey, false),
				fStr("kind", "kind", 16, OpKey, false),
				fOne("samples"),
				fInt("count", "count", OpSum, false),
				fInt("unanswered", "unanswered", OpSum, false),
				fInt("sum_ns", "sum_ns", OpSum, false),
				fExact("sumsq_ns2", "sumsq_ns2"),
				fInt("min_ns", "min_ns", OpMin, true),
				fInt("max_ns", "max_ns", OpMax, true),
				fHist("rtt_hist", "hist"),
			},
			quantileFields("rtt"),
		),
		Derive: func(r aggRow) { r.quantiles("rtt", r.get("min_ns"), r.get("max_ns")) },
	},
	{
		// TCP connections (analyse/tcpconn): a row per connection and
		// report, open ones at the end of every interval (cumulative),
		// the final one when it ended; nothing to merge.
		Type: "tcp_conns", Table: "tcp_conns", Time: "start_ns",
		Fields: concat(
			[]field{
				fInt("start_ns", "interval_start", OpKey, false),
				fFlow(),
				fStr("probe", "probe", 64, OpKey, false),
				fStr("iface", "iface", 64, OpKey, false),
				fInt("conn", "conn", OpKey, false),
				fStr("status", "status", 8, OpKey, false),
				fStr("conn_state", "conn_state", 8, OpKey, false),
				fInt("first_ns", "start_ns", OpKey, false),
				fInt("duration_ns", "duration_ns", OpKey, false),
				fStr("orig_addr", "orig_addr", 45, OpKey, false),
				fInt("orig_port", "orig_port", OpKey, false),
				fStr("resp_addr", "resp_addr", 45, OpKey, false),
				fInt("resp_port", "resp_port", OpKey, false),
			},
			tcpSide("orig"), tcpSide("resp"),
			[]field{fStr("history", "history", 32, OpKey, true)},
		),
	},
	{
		// FTP transfers (analyse/ftp): a row per listing or file
		// transfer, nothing to merge.
		Type: "ftp_transfers", Table: "ftp_transfers", Time: "start_ns",
		Fields: []field{
			fInt("start_ns", "interval_start", OpKey, false),
			fFlow(),
			fStr("probe", "probe", 64, OpKey, false),
			fStr("iface", "iface", 64, OpKey, false),
			fInt("cmd_ns", "start_ns", OpKey, false),
			fInt("duration_ns", "duration_ns", OpKey, false),
			fStr("command", "command", 8, OpKey, false),
			fText("arg", "arg"),
			fStr("user", "user", 64, OpKey, true),
			fInt("reply_code", "reply_code", OpKey, true),
			fInt("bytes", "bytes", OpKey, false),
			fInt("throughput_bps", "throughput_bps", OpKey, true),
			fInt("data_start_ns", "data_start_ns", OpKey, true),
			fInt("data_duration_ns", "data_duration_ns", OpKey, true),
			fInt("passive", "passive", OpKey, true),
			fStr("client_addr", "client_addr", 45, OpKey, false),
			fInt("client_port", "client_port", OpKey, false),
			fStr("server_addr", "server_addr", 45, OpKey, false),
			fInt("server_port", "server_port", OpKey, false),
			fStr("data_orig_addr", "data_orig_addr", 45, OpKey, true),
			fInt("data_orig_port", "data_orig_port", OpKey, true),
			fStr("data_resp_addr", "data_resp_addr", 45, OpKey, true),
			fInt("data_resp_port", "data_resp_port", OpKey, true),
		},
	},
	{
		Type: "events", Table: "events", Time: "time_ns",
		Fields: []field{
			fInt("time_ns", "time", OpKey, false),
			fCollector(),
			fStr("source", "source", 128, OpKey, false),
			fStr("kind", "kind", 64, OpKey, false),
			fText("detail", "detail"),
		},
	},
}

// tcpSide are the columns of one side of a TCP connection.
func tcpSide(p string) []field {
	var out []field
	for _, c := range []string{"pkts", "bytes", "retrans", "ooo", "zero_win"} {
		out = append(out, fInt(p+"_"+c, p+"_"+c, OpKey, false))
	}
	return out
}

// quantileNames are the quantiles of owd_metrics, by column name part.
var quantileNames = []struct {
	name string
	q    float64
}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p999", 0.999}}

// quantileFields are the derived quantile columns of a histogram: value and
// error bound (the exact quantile lies within ± the bound).
func quantileFields(kind string) []field {
	var out []field
	for _, q := range quantileNames {
		out = append(out, fDerived(kind+"_"+q.name+"_ns", KindInt), fDerived(kind+"_"+q.name+"_err_ns", KindInt))
	}
	return out
}

// deriveMetrics recomputes the quantiles and ratios of a merged owd_metrics
// row as the collector computes them for one interval (reconcile/metrics.go).
func deriveMetrics(r aggRow) {
	count, lost := r.get("count").i, r.get("lost").i
	nmax := r.get("sample_n_max").i
	sampled := nmax > 1
	estCI := func(k int64, variance string) val {
		switch {
		case !sampled:
			return floatVal(0)
		case k == 0:
			return floatVal(3 * float64(nmax)) // rule of three, at the coarsest sampling
		}
		return floatVal(ci95(float64(r.get(variance).i)))
	}
	r.set("count_est_ci95", estCI(count, "count_est_var"))
	r.set("lost_est_ci95", estCI(lost, "lost_est_var"))
	ratio := func(num, den int64) val {
		if den == 0 {
			return val{}
		}
		return floatVal(float64(num) / float64(den))
	}
	sent := count + lost
	lr := ratio(lost, sent)
	r.set("loss_ratio", lr)
	r.set("loss_ratio_ci95", val{})
	r.set("loss_ratio_lo", val{})
	r.set("loss_ratio_hi", val{})
	if lr.ok {
		// The collector's interval (Wilson score, 95 %), recomputed from
		// the summed counts; a census has no sampling error.
		lo, hi := lr.f, lr.f
		if sampled {
			lo, hi = reconcile.Wilson(uint64(lost), uint64(sent))
		}
		r.set("loss_ratio_ci95", floatVal((hi-lo)/2))
		r.set("loss_ratio_lo", floatVal(lo))
		r.set("loss_ratio_hi", floatVal(hi))
	}
	r.set("reorder_ratio", ratio(r.get("reordered").i, count))
	r.set("dup_ratio", ratio(r.get("duplicate").i, sent))

	// Exact extremes where a merged column holds them: every interval's
	// PDV has a 0 (its fastest packet) and pdv_max_ns; IPDV has both. The
	// delay's extremes are in owd_stats, not here.
	r.quantiles("delay", val{}, val{})
	var zero val
	if count > 0 {
		zero = intVal(0)
	}
	r.quantiles("pdv", zero, r.get("pdv_max_ns"))
	r.quantiles("ipdv", r.get("ipdv_min_ns"), r.get("ipdv_max_ns"))
}

// aggRow is a merged row of an aggregated table with its columns by name,
// for a type's Derive function.
type aggRow struct {
	vals []val
	idx  map[string]int
}

func (r aggRow) at(name string) int {
	i, ok := r.idx[name]
	if !ok {
		panic("loader: Derive names unknown column " + name) // a declaration error
	}
	return i
}

func (r aggRow) get(name string) val    { return r.vals[r.at(name)] }
func (r aggRow) set(name string, v val) { r.vals[r.at(name)] = v }

// quantiles sets <kind>_pXX_ns and _err_ns from <kind>_hist; lo and hi are
// the exact extremes when known.
func (r aggRow) quantiles(kind string, lo, hi val) {
	qs := make([]float64, len(quantileNames))
	for i, q := range quantileNames {
		qs[i] = q.q
	}
	v, e, ok := quantileSet(r.get(kind+"_hist").h, qs, lo, hi)
	for i, q := range quantileNames {
		var x, xe val
		if ok {
			x, xe = intVal(v[i]), intVal(e[i])
		}
		r.set(kind+"_"+q.name+"_ns", x)
		r.set(kind+"_"+q.name+"_err_ns", xe)
	}
}

// flowsType is the flow dictionary: its rows feed the flows and flow_ids
// tables through the flow map (flows.go) instead of a table of their own.
var flowsType = &recordType{
	Type: "flows",
	Fields: []field{
		fInt("first_ns", "time", OpKey, true),
		fInt("cflow", "flow", OpKey, false),
		fStr("class", "class", 64, OpKey, false),
		fText("flow_key", "key"), // empty: a class without granular fields
	},
}

// setsType is the interval manifests (docs/spool.md, "Commit"): no table;
// a manifest says which files form one interval's set, is recorded in
// loaded_files and archived after them.
var setsType = &recordType{Type: "sets"}

// typeByName finds a known spool type, flows and sets included.
func typeByName(name string) *recordType {
	if name == flowsType.Type {
		return flowsType
	}
	if name == setsType.Type {
		return setsType
	}
	for _, rt := range recordTypes {
		if rt.Type == name {
			return rt
		}
	}
	return nil
}

func concat(parts ...[]field) []field {
	var out []field
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func init() {
	for _, rt := range append([]*recordType{flowsType}, recordTypes...) {
		if err := rt.derive(); err != nil {
			panic(err) // a programming error in the declarations above
		}
	}
}

// derive builds a type's table definitions from its fields.
func (rt *recordType) derive() error {
	seen := map[string]bool{}
	hasFlow := false
	for _, f := range rt.Fields {
		if f.Op == OpDerived && (rt.Derive == nil || !rt.Aggregate) {
			return fmt.Errorf("loader: type %s: derived column %s without an aggregated Derive", rt.Type, f.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("loader: type %s: column %s twice", rt.Type, f.Name)
		}
		seen[f.Name] = true
		hasFlow = hasFlow || f.Name == "flow_id"
		for _, n := range f.needs {
			if !contains(rt.needs, n) {
				rt.needs = append(rt.needs, n)
			}
		}
	}
	if rt == flowsType {
		return nil
	}
	if !seen[rt.Time] {
		return fmt.Errorf("loader: type %s: time column %q is not a field", rt.Type, rt.Time)
	}
	cols := make([]Column, len(rt.Fields))
	for i, f := range rt.Fields {
		cols[i] = f.Column
	}
	var idx [][]string
	if hasFlow {
		idx = [][]string{{"flow_id", rt.Time}}
	}
	if !rt.Aggregate {
		cols = append(cols, Column{Name: "file_id", Kind: KindInt}, Column{Name: "line", Kind: KindInt})
		key := []string{rt.Time, "file_id", "line"}
		var oldKey []string
		if rt.PerPacket && hasFlow {
			// Per-packet rows, the bulk of a load: the flow in the key
			// instead of a second index, one b-tree to write per row
			// instead of two (BenchmarkLoadPerPacket*: a third more rows
			// per second into SQLite, a fifth into MariaDB). Time first,
			// as reports read a period (and retention cuts one). A table
			// of an older loader gets this key (rekey).
			oldKey = key
			key, idx = []string{rt.Time, "flow_id", "file_id", "line"}, nil
		}
		rt.tables = []*Table{{
			Name: rt.Table, Columns: cols, Key: key, OldKey: oldKey,
			Indexes: idx, Time: rt.Time, Class: "rec",
		}}
		return nil
	}
	var key []string
	for _, c := range cols {
		if c.Op == OpKey {
			if c.Null {
				return fmt.Errorf("loader: type %s: key column %s may be NULL", rt.Type, c.Name)
			}
			key = append(key, c.Name)
		}
	}
	var derive func([]val)
	if rt.Derive != nil {
		byName := map[string]int{}
		for i, c := range cols {
			byName[c.Name] = i
		}
		derive = func(row []val) { rt.Derive(aggRow{row, byName}) }
	}
	for _, l := range levels {
		rt.tables = append(rt.tables, &Table{
			Name: rt.Table + "_" + l.Suffix, Columns: cols, Key: key,
			Indexes: idx, Time: rt.Time, Class: l.Suffix, derive: derive,
		})
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// allTables lists every table of the schema, system tables first.
func allTables() []*Table {
	ts := []*Table{&flowsTable, &flowIDsTable, &loadedFilesTable, &badLinesTable}
	for _, rt := range recordTypes {
		ts = append(ts, rt.tables...)
	}
	return append(ts, classTables()...)
}
