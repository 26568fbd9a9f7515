// Package reports turns what tmon measured into what an operator reads. It
// sits at the end of the data flow: today it summarises a collector's spool
// directly (tmon summary); database-backed pages and charts join it later.
package reports

import (
	"bytes"
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
func ReadSpool(dir string) (*Summary, error) { return readSpool(dir, nil) }

// PairDelays are per-packet delays of one hop pair: owd_packet's delay_ns.
type PairDelays struct {
	PairKey
	Delays []int64
}

// ReadSpoolDelays is ReadSpool with the owd_packet rows given rather than
// read: delays must be exactly the spool's (tmon owd keeps them from the
// intervals it wrote), in any order. Summary.Packets (by t_from, for a
// comparison with ground truth) is then left empty; PacketRows counts the
// delays. ReadSpoolDelays takes the slices.
func ReadSpoolDelays(dir string, delays []PairDelays) (*Summary, error) {
	if delays == nil {
		delays = []PairDelays{}
	}
	return readSpool(dir, delays)
}

func readSpool(dir string, delays []PairDelays) (*Summary, error) {
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
	getKey := func(k PairKey) *Pair {
		p := pairs[k]
		if p == nil {
			p = &Pair{PairKey: k, Flows: map[string]bool{}, Intervals: map[string]bool{}}
			pairs[k] = p
		}
		return p
	}
	get := func(r map[string]string) *Pair { return getKey(PairKey{r["class"], r["hop_from"], r["hop_to"]}) }
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
	for _, pd := range delays {
		p := getKey(pd.PairKey)
		if p.Delays == nil {
			p.Delays = pd.Delays
		} else {
			p.Delays = append(p.Delays, pd.Delays...)
		}
		s.PacketRows += len(pd.Delays)
	}
	if delays == nil {
		// owd_packet has a row per measured packet (millions in a day): read
		// by scanRows, without a map or a string per row.
		var last *Pair
		var lastKey [3][]byte
		err = scanRows(dir, "owd_packet", []string{"class", "hop_from", "hop_to", "t_from", "delay_ns"}, func(f [][]byte) error {
			if last == nil || !bytes.Equal(f[0], lastKey[0]) || !bytes.Equal(f[1], lastKey[1]) || !bytes.Equal(f[2], lastKey[2]) {
				last = getKey(PairKey{string(f[0]), string(f[1]), string(f[2])})
				lastKey = [3][]byte{f[0], f[1], f[2]}
			}
			t, ok1 := parseInt(f[3])
			d, ok2 := parseInt(f[4])
			if !ok1 {
				return fmt.Errorf("column t_from: invalid integer %q", f[3])
			}
			if !ok2 {
				return fmt.Errorf("column delay_ns: invalid integer %q", f[4])
			}
			last.Delays = append(last.Delays, d)
			s.Packets[t] = d
			s.PacketRows++
			return nil
		})
		if err != nil {
			return nil, err
		}
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
		sortDelays(p.Delays)
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

// spoolFiles lists the complete files of type typ in dir, in time order.
func spoolFiles(dir, typ string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, typ, typ+"-*.tsv"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	sort.Strings(files)
	return files, nil
}

// scanRows reads the files of type typ as eachRow does, with the checks of
// spool.ReadFile (a header line, every row as wide as it, the last line
// ended by LF), but hands fn only the columns named by cols, as slices of
// the file's bytes valid during the call: no map, string or slice per row.
// A column missing from a file's header is an error.
func scanRows(dir, typ string, cols []string, fn func(fields [][]byte) error) error {
	files, err := spoolFiles(dir, typ)
	if err != nil {
		return err
	}
	fields := make([][]byte, len(cols))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("spool: read: %w", err)
		}
		if len(b) == 0 {
			return fmt.Errorf("spool: read %s: empty file", f)
		}
		nl := bytes.IndexByte(b, '\n')
		if b[0] != '#' || nl < 0 {
			return fmt.Errorf("spool: read %s:1: no header line starting with '#'", f)
		}
		if b[len(b)-1] != '\n' {
			return fmt.Errorf("spool: read %s: last line not ended by LF (incomplete file)", f)
		}
		hdr := strings.Split(string(b[1:nl]), "\t")
		at := make([]int, len(hdr)) // column → position in cols + 1, 0: unwanted
		for i, c := range cols {
			j := slices.Index(hdr, c)
			if j < 0 {
				return fmt.Errorf("spool: read %s: no column %s", f, c)
			}
			at[j] = i + 1
		}
		line := 1
		for rest := b[nl+1:]; len(rest) > 0; {
			line++
			end := bytes.IndexByte(rest, '\n')
			row := rest[:end]
			rest = rest[end+1:]
			n := 0
			for {
				tab := bytes.IndexByte(row, '\t')
				field := row
				if tab >= 0 {
					field = row[:tab]
				}
				if n < len(at) && at[n] > 0 {
					fields[at[n]-1] = field
				}
				n++
				if tab < 0 {
					break
				}
				row = row[tab+1:]
			}
			if n != len(hdr) {
				return fmt.Errorf("spool: read %s:%d: %d fields, header has %d", f, line, n, len(hdr))
			}
			if err := fn(fields); err != nil {
				return fmt.Errorf("%s: row %d: %w", f, line, err)
			}
		}
	}
	return nil
}

// parseInt parses a decimal int64 (an optional '-', then digits) without
// making a string of it.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return int64(-n), true
	case !neg && n < 1<<63:
		return int64(n), true
	}
	return 0, false
}

func eachRow(dir, typ string, fn func(map[string]string) error) error {
	files, err := spoolFiles(dir, typ)
	if err != nil {
		return err
	}
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
