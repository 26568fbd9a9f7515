// Package reports turns what tmon measured into what an operator reads. It
// sits at the end of the data flow: today it summarises a collector's spool
// directly (tmon summary); database-backed pages and charts join it later.
package reports

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tmon-project/tmon/spool"
)

// PairKey names one hop pair of one class.
type PairKey struct {
	Class, From, To string
}

// Pair aggregates a hop pair of a class over every interval of a spool.
type Pair struct {
	PairKey
	Flows     map[string]bool
	Intervals map[string]bool
	Count     uint64
	SumNs     float64
	Min, Max  int64
	Lost      uint64
	Missed    uint64
	Dropped   uint64 // sightings a probe gave up (docs/spool.md)
	Duplicate uint64
	Reordered uint64
	Clashes   uint64
	// Clock validity of the owd_stats rows (docs/spool.md clock_ok,
	// clock_err_ns): rows with clock_ok 0, rows with an unknown bound, the
	// largest bound; ClockRows counts the rows that had the columns.
	ClockRows, ClockNotOK, ClockUnknown uint64
	ClockErrMax                         int64
	Slices                              []Slice // histogram over the configured slices, merged
	// Delays are the per-packet delays when the class writes owd_packet,
	// sorted; percentiles are then exact.
	Delays []int64
	// M is the merge of the pair's owd_metrics rows; nil when the spool
	// has none (a collector older than that file type).
	M *Metrics
}

// Slice is one histogram slice: [Lo, Hi) in ns; HasLo/HasHi false for the
// open-ended first and last slices.
type Slice struct {
	Seen         bool // a row of the spool has it (the others are unknown)
	Index        int
	Lo, Hi       int64
	HasLo, HasHi bool
	Count        uint64
}

// Summary is what one spool directory holds.
type Summary struct {
	Dir   string
	Pairs []*Pair
	// Packets maps (class, t_from) to the delay of each reconciled packet
	// and Lost the t_from of each packet classified lost, for comparison
	// with a generator's ground truth.
	Packets map[int64]int64
	Lost    map[int64]bool
	Missed  int
	Dropped int // per-packet records of kind dropped
	// PacketRows and LostRows count the owd_packet and lost owd_incomplete
	// rows: more rows than distinct packets means data counted twice.
	PacketRows, LostRows int
	// FlowKeys are the key texts of the one-way flows (flows files) by
	// class; IntervalNs the interval length of the owd_stats rows.
	FlowKeys   map[string][]string
	IntervalNs int64
	// Counted: per class and probe interface, what the counters analysis
	// saw (every class, one-way or not).
	Counted []*Counted
}

// ReadSpool reads every complete owd_* file of a collector's spool.
func ReadSpool(dir string) (*Summary, error) {
	s := &Summary{Dir: dir, Packets: map[int64]int64{}, Lost: map[int64]bool{}, FlowKeys: map[string][]string{}}
	keys := map[string]bool{}
	err := eachRow(dir, "flows", func(r map[string]string) error {
		if k := r["class"] + "\x00" + r["key"]; !keys[k] {
			keys[k] = true
			s.FlowKeys[r["class"]] = append(s.FlowKeys[r["class"]], r["key"])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	pairs := map[PairKey]*Pair{}
	get := func(r map[string]string) *Pair {
		k := PairKey{r["class"], r["hop_from"], r["hop_to"]}
		p := pairs[k]
		if p == nil {
			p = &Pair{PairKey: k, Flows: map[string]bool{}, Intervals: map[string]bool{}}
			pairs[k] = p
		}
		return p
	}
	err = eachRow(dir, "owd_stats", func(r map[string]string) error {
		p := get(r)
		if secs, err := strconv.ParseFloat(r["interval_s"], 64); err == nil {
			s.IntervalNs = int64(secs * 1e9)
		}
		p.Flows[r["flow"]] = true
		p.Intervals[r["interval_start"]] = true
		n, err := uintCol(r, "count")
		if err != nil {
			return err
		}
		if n > 0 {
			sum, e1 := intCol(r, "sum_ns")
			mn, e2 := intCol(r, "min_ns")
			mx, e3 := intCol(r, "max_ns")
			if e1 != nil || e2 != nil || e3 != nil {
				return fmt.Errorf("bad delay statistics")
			}
			if p.Count == 0 || mn < p.Min {
				p.Min = mn
			}
			if p.Count == 0 || mx > p.Max {
				p.Max = mx
			}
			p.Count += n
			p.SumNs += float64(sum)
		}
		if ok, has := r["clock_ok"]; has {
			p.ClockRows++
			if ok == "0" {
				p.ClockNotOK++
			}
			if e, err := strconv.ParseInt(r["clock_err_ns"], 10, 64); err == nil {
				p.ClockErrMax = max(p.ClockErrMax, e)
			} else {
				p.ClockUnknown++
			}
		}
		for col, dst := range map[string]*uint64{"lost": &p.Lost, "missed": &p.Missed, "duplicate": &p.Duplicate, "reordered": &p.Reordered, "clashes": &p.Clashes, "dropped": &p.Dropped} {
			v, err := uintCol(r, col)
			if err != nil {
				return err
			}
			*dst += v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = eachRow(dir, "owd_hist", func(r map[string]string) error {
		p := get(r)
		idx, err := strconv.Atoi(r["slice"])
		if err != nil {
			return fmt.Errorf("slice: %w", err)
		}
		n, err := uintCol(r, "count")
		if err != nil {
			return err
		}
		for len(p.Slices) <= idx {
			p.Slices = append(p.Slices, Slice{Index: len(p.Slices)})
		}
		sl := &p.Slices[idx]
		sl.Seen = true
		if r["lo_ns"] != "" {
			sl.Lo, _ = strconv.ParseInt(r["lo_ns"], 10, 64)
			sl.HasLo = true
		}
		if r["hi_ns"] != "" {
			sl.Hi, _ = strconv.ParseInt(r["hi_ns"], 10, 64)
			sl.HasHi = true
		}
		sl.Count += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = eachRow(dir, "owd_metrics", func(r map[string]string) error {
		p := get(r)
		if p.M == nil {
			p.M = newMetrics()
		}
		return p.M.add(r)
	})
	if err != nil {
		return nil, err
	}
	err = eachRow(dir, "owd_packet", func(r map[string]string) error {
		p := get(r)
		d, err := intCol(r, "delay_ns")
		if err != nil {
			return err
		}
		t, err := intCol(r, "t_from")
		if err != nil {
			return err
		}
		p.Delays = append(p.Delays, d)
		s.Packets[t] = d
		s.PacketRows++
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = eachRow(dir, "owd_incomplete", func(r map[string]string) error {
		switch r["kind"] {
		case "dropped":
			s.Dropped++
			return nil
		case "lost":
		default:
			s.Missed++
			return nil
		}
		// hops: "A=123 B=" — the first present time is the sending time.
		for _, f := range strings.Fields(r["hops"]) {
			if _, v, ok := strings.Cut(f, "="); ok && v != "" {
				t, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return fmt.Errorf("hops: %w", err)
				}
				s.Lost[t] = true
				s.LostRows++
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.Counted, err = readCounted(dir); err != nil {
		return nil, err
	}
	for _, p := range pairs {
		if p.M != nil {
			p.M.finish(p)
		}
		slices.Sort(p.Delays)
		s.Pairs = append(s.Pairs, p)
	}
	sort.Slice(s.Pairs, func(i, j int) bool {
		a, b := s.Pairs[i].PairKey, s.Pairs[j].PairKey
		return a.Class+"\x00"+a.From+"\x00"+a.To < b.Class+"\x00"+b.From+"\x00"+b.To
	})
	return s, nil
}

// Percentile returns the q-quantile (0..1) of the sorted delays by the
// nearest-rank method, and false when there are none.
func Percentile(sorted []int64, q float64) (int64, bool) {
	if len(sorted) == 0 {
		return 0, false
	}
	i := int(float64(len(sorted))*q+0.999999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i], true
}

func eachRow(dir, typ string, fn func(map[string]string) error) error {
	files, err := filepath.Glob(filepath.Join(dir, typ, typ+"-*.tsv"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("spool %s: %w", dir, err)
	}
	sort.Strings(files)
	for _, f := range files {
		hdr, rows, err := spool.ReadFile(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		m := make(map[string]string, len(hdr))
		for i, row := range rows {
			for j, h := range hdr {
				m[h] = row[j]
			}
			if err := fn(m); err != nil {
				return fmt.Errorf("%s: row %d: %w", f, i+2, err)
			}
		}
	}
	return nil
}

func uintCol(r map[string]string, col string) (uint64, error) {
	v := r[col]
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("column %s: %w", col, err)
	}
	return n, nil
}

func intCol(r map[string]string, col string) (int64, error) {
	n, err := strconv.ParseInt(r[col], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("column %s: %w", col, err)
	}
	return n, nil
}
