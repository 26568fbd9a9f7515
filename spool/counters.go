package spool

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
)

// TypeCounters is the spool type of the counters analysis (docs/spool.md,
// flow_counters): per flow instance, probe interface and interval.
const TypeCounters = "flow_counters"

// ColsCounters are its columns.
var ColsCounters = []string{"interval_start", "interval_s", "class", "flow", "probe", "iface",
	"packets", "bytes", "fragments", "icmp_errors", "size_sumsq", "size_min", "size_max"}

// CounterRow is one flow_counters row.
type CounterRow struct {
	Start                                     int64 // interval start (ns)
	Class                                     string
	Flow                                      uint32 // collector flow id
	Probe, Iface                              string
	Packets, Bytes, Fragments, ICMPErrors, Sq uint64
	SizeMin, SizeMax                          uint32 // written only when Packets > 0
}

// intervalRows holds the rows of data intervals until the collector knows
// that every probe has sent its records of them (CutData): rows from
// several probes arrive at different times, and a file is written once.
type intervalRows struct {
	typ  string
	cols []string
	rows map[int64][]byte // interval start → rows
	n    int
}

// WriteCounters buffers one flow_counters row; CutData writes it.
func (w *Writer) WriteCounters(r CounterRow) error {
	b := appendPrefix(nil, strconv.FormatInt(r.Start, 10), strconv.FormatInt(w.interval/1e9, 10), r.Class, r.Flow, r.Probe, r.Iface)
	for _, v := range []uint64{r.Packets, r.Bytes, r.Fragments, r.ICMPErrors, r.Sq} {
		b = strconv.AppendUint(b, v, 10)
		b = append(b, '\t')
	}
	if r.Packets > 0 {
		b = strconv.AppendUint(b, uint64(r.SizeMin), 10)
		b = append(b, '\t')
		b = strconv.AppendUint(b, uint64(r.SizeMax), 10)
	} else {
		b = append(b, '\t')
	}
	return w.bufferData(&w.counters, w.startOf(r.Start), b)
}

func (w *Writer) bufferData(ir *intervalRows, start int64, row []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("spool: write " + ir.typ + ": writer closed")
	}
	if ir.rows == nil {
		ir.rows = make(map[int64][]byte)
	}
	ir.rows[start] = append(append(ir.rows[start], row...), '\n')
	ir.n++
	return nil
}

// CutData writes the buffered rows of the data intervals that ended at or
// before wm (data time: every probe has sent what it had of them). Rows
// that arrive later for an interval already written go to another file of
// that interval (<type>-<start>.<n>.tsv), whose rows add up.
func (w *Writer) CutData(wm int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cutData(wm)
}

// cutData is CutData with w.mu held.
func (w *Writer) cutData(wm int64) error {
	irs := w.dataRows()
	var starts []int64
	for _, ir := range irs {
		for s := range ir.rows {
			if s+w.interval <= wm && !slices.Contains(starts, s) {
				starts = append(starts, s)
			}
		}
	}
	slices.Sort(starts)
	var errs []error
	for _, s := range starts {
		// One set (a manifest, no interval: the reconciler's interval of
		// the same start is another set) for every analysis's rows of
		// the interval: a set's fsyncs are paid once, and they run
		// under the collector's lock. On failure the rows stay buffered
		// and the next cut tries again.
		var files []setFile
		var from []*intervalRows
		for _, ir := range irs {
			if rows, ok := ir.rows[s]; ok {
				files = append(files, setFile{typ: ir.typ, cols: ir.cols, rows: rows})
				from = append(from, ir)
			}
		}
		if err := w.writeSet(s, files, true, false); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ir := range from {
			ir.n -= countLines(ir.rows[s])
			delete(ir.rows, s)
		}
	}
	return errors.Join(errs...)
}

// dataRows are the per-interval rows of the analyses' spool types.
func (w *Writer) dataRows() []*intervalRows {
	return []*intervalRows{&w.counters, &w.rtt, &w.tcp, &w.ftp}
}

// countLines counts the rows of b (bytes.Count is vectorised: a loop over
// the bytes was 2 % of tmon owd's CPU time, twice over a 5 MB owd_packet
// file).
func countLines(b []byte) int { return bytes.Count(b, []byte{'\n'}) }
