// Package spool writes the collector's TSV logs (docs/spool.md, version 1):
// the stable boundary between the online collector and the offline loader.
//
// Data flow: reconcile ──Interval──► spool ──files──► loader.
//
// Every file is written under a temporary name, synced and renamed, so a
// loader sees only complete files; a complete file never changes again.
package spool

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/reconcile"
)

// File types: the subdirectory and name prefix of each kind of file.
const (
	TypeFlows      = "flows"
	TypeEvents     = "events"
	TypeStats      = "owd_stats"
	TypeHist       = "owd_hist"
	TypePacket     = "owd_packet"
	TypeIncomplete = "owd_incomplete"
	TypeAccounting = "owd_accounting"
)

// Column names of each type, in order (the header line without its '#').
var (
	ColsFlows      = []string{"time", "flow", "class", "key"}
	ColsEvents     = []string{"time", "source", "kind", "detail"}
	ColsStats      = []string{"interval_start", "interval_s", "class", "flow", "hop_from", "hop_to", "count", "sum_ns", "sumsq_ns2", "min_ns", "max_ns", "lost", "missed", "duplicate", "reordered", "clashes", "dropped", "clock_err_ns", "clock_ok"}
	ColsHist       = []string{"interval_start", "interval_s", "class", "flow", "hop_from", "hop_to", "slice", "lo_ns", "hi_ns", "count"}
	ColsPacket     = []string{"interval_start", "class", "flow", "sig", "hop_from", "hop_to", "t_from", "t_to", "delay_ns", "span_from_ns", "span_to_ns", "first_delay_ns"}
	ColsIncomplete = []string{"interval_start", "class", "flow", "sig", "kind", "hops"}
	ColsAccounting = []string{"interval_start", "interval_s", "sightings", "complete", "lost", "missed", "dropped", "duplicate", "late", "invalid"}
)

// timeFormat is the UTC interval start in file names.
const timeFormat = "20060102T150405Z"

// Writer writes one spool directory. It implements reconcile.Sink.
//
// Concurrency: a Writer is safe for concurrent use; WriteInterval is
// typically called by the reconcile goroutine while WriteFlow and
// WriteEvent come from the collector's other goroutines.
type Writer struct {
	dir      string
	cfg      *conf.Config
	interval int64 // ns
	volatile bool  // SetVolatile: nothing is fsynced

	clocks atomic.Pointer[func(probe int) ClockState]
	count  counters

	mu        sync.Mutex
	flows     buffer
	events    buffer
	counters  intervalRows
	rtt       intervalRows
	tcp       intervalRows
	ftp       intervalRows
	closed    bool
	committer Committer
	// unfinished: committed sets whose renames failed, retried by Cut.
	unfinished []Set
	finishErr  error
	failing    error // of the last set written
}

var _ reconcile.Sink = (*Writer)(nil)

// buffer holds the flows or events rows of one interval until the interval
// is over, so that they are cut into files at the same boundaries as the
// measurements.
type buffer struct {
	typ   string
	cols  []string
	start int64 // interval start (ns) of the buffered rows
	rows  []byte
	n     int
}

// New returns a Writer into dir (created if missing) for the classes and
// interval of cfg. The interval must be a whole number of seconds: file
// names carry the interval start to the second.
func New(dir string, cfg *conf.Config) (*Writer, error) {
	if cfg == nil {
		return nil, errors.New("spool: new: nil config")
	}
	if cfg.Interval < time.Second || cfg.Interval%time.Second != 0 {
		return nil, fmt.Errorf("spool: new %s: interval %v is not a whole number of seconds", dir, cfg.Interval)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool: new: %w", err)
	}
	return &Writer{
		dir:      dir,
		cfg:      cfg,
		interval: int64(cfg.Interval),
		flows:    buffer{typ: TypeFlows, cols: ColsFlows},
		events:   buffer{typ: TypeEvents, cols: ColsEvents},
		counters: intervalRows{typ: TypeCounters, cols: ColsCounters},
		rtt:      intervalRows{typ: TypeRTT, cols: ColsRTT},
		tcp:      intervalRows{typ: TypeTCPConn, cols: ColsTCPConn},
		ftp:      intervalRows{typ: TypeFTP, cols: ColsFTP},
	}, nil
}

// SetVolatile turns off the fsyncs of files and directories that make a
// committed set survive a machine crash: for a spool that a rerun rebuilds
// from its inputs (tmon owd), where they were most of the wall time. The
// files, their names and the commit order are unchanged. Call it before
// the first write.
func (w *Writer) SetVolatile() { w.volatile = true }

// ClockState is what the collector knows of one probe's clock, for the
// clock columns of owd_stats.
type ClockState struct {
	Known  bool  // a clock record of the probe has arrived
	Synced bool  // the probe's clock was synchronised (or assumed so)
	Bound  int64 // ns: |offset| + root distance (0 when assumed)
}

// SetClocks gives the writer the probes' latest clock states (probe index
// of the configuration → state). It is called for every owd_stats row,
// from the goroutine that writes intervals, and must not block on a lock
// held around WriteInterval. Without it, or for a probe not Known, the
// clock columns say unknown; a configuration with assumeSynced makes every
// probe synchronised with bound 0.
func (w *Writer) SetClocks(f func(probe int) ClockState) { w.clocks.Store(&f) }

// clockCols returns the clock columns of a hop pair: the sum of the error
// bounds of the distinct probes observing its two hops (empty when one is
// unknown or unsynchronised), and whether all were synchronised within the budget.
func (w *Writer) clockCols(dst []byte, ow *conf.OneWay, p conf.HopPair) []byte {
	cc := w.cfg.Clock.Resolved()
	var f func(int) ClockState
	if fp := w.clocks.Load(); fp != nil {
		f = *fp
	}
	var seen [8]int
	probes := seen[:0]
	for _, h := range [2]int{p.From, p.To} {
		for _, pi := range ow.Hops[h].Interfaces {
			if !slices.Contains(probes, pi.Probe) {
				probes = append(probes, pi.Probe)
			}
		}
	}
	var sum int64
	known, ok := len(probes) > 0, len(probes) > 0
	for _, pr := range probes {
		st := ClockState{Known: true, Synced: true}
		if !cc.AssumeSynced {
			if f == nil {
				st = ClockState{}
			} else {
				st = f(pr)
			}
		}
		// An unsynchronised record carries no offset (clock.Measure): its
		// bound would read 0, a perfect clock; the bound is unknown.
		known = known && st.Known && st.Synced
		ok = ok && st.Known && st.Synced && st.Bound <= int64(cc.Budget)
		sum += st.Bound
	}
	if known {
		dst = strconv.AppendInt(dst, sum, 10)
	}
	if ok {
		return append(dst, "\t1"...)
	}
	return append(dst, "\t0"...)
}

// Dir returns the spool directory.
func (w *Writer) Dir() string { return w.dir }

// WriteFlow records that the collector learned flow id of the named class
// at time t; key is the granular field values (docs/spool.md, flows).
func (w *Writer) WriteFlow(t time.Time, id uint32, class, key string) error {
	ns := t.UnixNano()
	var b []byte
	b = strconv.AppendInt(b, ns, 10)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(id), 10)
	b = appendText(append(b, '\t'), class)
	b = appendText(append(b, '\t'), key)
	return w.buffered(&w.flows, ns, b)
}

// WriteEvent records an event; source is "collector:<name>" or
// "probe:<name>", kind e.g. "config.switch". TABs and line breaks in the
// text become spaces.
func (w *Writer) WriteEvent(t time.Time, source, kind, detail string) error {
	ns := t.UnixNano()
	var b []byte
	b = strconv.AppendInt(b, ns, 10)
	b = appendText(append(b, '\t'), source)
	b = appendText(append(b, '\t'), kind)
	b = appendText(append(b, '\t'), detail)
	return w.buffered(&w.events, ns, b)
}

// buffered appends row (without its LF) to buf. Rows are kept in the order
// they are written and cut only by Cut and Close, between the collector's
// PDUs: so a cut file holds every row written before it, which is what lets
// the collector's journal skip exactly those rows after a restart. A row of
// a later interval joins the open buffer until the next Cut (at most a
// second); a row of an earlier one (a probe's event arriving late) joins it
// too: a written file is never reopened.
func (w *Writer) buffered(buf *buffer, ns int64, row []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("spool: write %s: writer closed", buf.typ)
	}
	if buf.n == 0 {
		buf.start = w.startOf(ns)
	}
	buf.rows = append(append(buf.rows, row...), '\n')
	buf.n++
	return nil
}

// Cut writes out the buffered flows and events whose first row's interval
// ended at or before now, and retries the renames of committed sets that
// failed: the collector calls it every second.
func (w *Writer) Cut(now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := w.startOf(now.UnixNano())
	errs := []error{w.retryUnfinished()}
	for _, buf := range []*buffer{&w.flows, &w.events} {
		if buf.n > 0 && buf.start < start {
			errs = append(errs, w.cut(buf))
		}
	}
	return errors.Join(errs...)
}

// Close writes the buffered flows and events. Later writes fail; so does
// Close when rows could not be written (they are lost with the process,
// but the collector's journal still holds their PDUs).
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	errs := []error{w.retryUnfinished()}
	for _, buf := range []*buffer{&w.flows, &w.events} {
		if buf.n > 0 {
			errs = append(errs, w.cut(buf))
		}
	}
	errs = append(errs, w.cutData(math.MaxInt64))
	return errors.Join(errs...)
}

// cut writes buf to its file and empties it. On failure (disk full) the
// rows stay buffered, and the next Cut tries again.
func (w *Writer) cut(buf *buffer) error {
	if err := w.writeSet(buf.start, []setFile{{typ: buf.typ, cols: buf.cols, rows: buf.rows}}, false, false); err != nil {
		return err
	}
	buf.rows = buf.rows[:0]
	buf.n = 0
	return nil
}

func (w *Writer) startOf(ns int64) int64 {
	q := ns / w.interval
	if ns%w.interval < 0 {
		q--
	}
	return q * w.interval
}

// WriteInterval writes the files of one closed interval: owd_stats and
// owd_hist when it has statistics, owd_packet and owd_incomplete when it
// has per-packet rows, owd_accounting when it was given sightings. Class and hop names come from the configuration.
func (w *Writer) WriteInterval(iv *reconcile.Interval) error {
	if iv.Length != time.Duration(w.interval) {
		return fmt.Errorf("spool: write interval %d: length %v, spool configured for %v", iv.Start, iv.Length, time.Duration(w.interval))
	}
	start := strconv.FormatInt(iv.Start, 10)
	secs := strconv.FormatFloat(iv.Length.Seconds(), 'f', -1, 64)

	var stats, hist, inc, mets []byte
	for i := range iv.Stats {
		st := &iv.Stats[i]
		ow, p, err := w.pair(st.Class, st.Pair)
		if err != nil {
			return fmt.Errorf("spool: write interval %d: flow %d: %w", iv.Start, st.Flow, err)
		}
		pre := appendPrefix(nil, start, secs, w.cfg.Classes[st.Class].Name, st.Flow, ow.Hops[p.From].Name, ow.Hops[p.To].Name)
		stats = append(stats, pre...)
		stats = strconv.AppendUint(stats, st.Count, 10)
		stats = append(stats, '\t')
		if st.Count > 0 {
			stats = strconv.AppendInt(stats, st.Sum, 10)
			stats = append(stats, '\t')
			stats = st.SumSq.AppendDecimal(stats)
			stats = append(stats, '\t')
			stats = strconv.AppendInt(stats, st.Min, 10)
			stats = append(stats, '\t')
			stats = strconv.AppendInt(stats, st.Max, 10)
		} else {
			stats = append(stats, "0\t0\t\t"...)
		}
		for _, v := range [...]uint64{st.Lost, st.Missed, st.Duplicate, st.Reordered, st.Clashes, st.Dropped} {
			stats = strconv.AppendUint(append(stats, '\t'), v, 10)
		}
		stats = w.clockCols(append(stats, '\t'), ow, p)
		stats = append(stats, '\n')
		if i < len(iv.Metrics) {
			mets = appendMetrics(mets, pre, &iv.Metrics[i])
		}

		for b, n := range st.Hist {
			if n == 0 {
				continue
			}
			hist = append(hist, pre...)
			hist = strconv.AppendInt(hist, int64(b), 10)
			hist = append(hist, '\t')
			if b > 0 && b-1 < len(p.Slices) {
				hist = strconv.AppendInt(hist, int64(p.Slices[b-1]), 10)
			}
			hist = append(hist, '\t')
			if b < len(p.Slices) {
				hist = strconv.AppendInt(hist, int64(p.Slices[b]), 10)
			}
			hist = strconv.AppendUint(append(hist, '\t'), n, 10)
			hist = append(hist, '\n')
		}
	}
	// Checked first: the rows are made while the set is written.
	for i := range iv.Packets {
		if pk := &iv.Packets[i]; i == 0 || pk.Class != iv.Packets[i-1].Class || pk.Pair != iv.Packets[i-1].Pair {
			if _, _, err := w.pair(pk.Class, pk.Pair); err != nil {
				return fmt.Errorf("spool: write interval %d: flow %d: %w", iv.Start, pk.Flow, err)
			}
		}
	}
	for i := range iv.Incomplete {
		in := &iv.Incomplete[i]
		ow, err := w.oneWay(in.Class)
		if err != nil {
			return fmt.Errorf("spool: write interval %d: flow %d: %w", iv.Start, in.Flow, err)
		}
		inc = append(inc, start...)
		inc = appendText(append(inc, '\t'), w.cfg.Classes[in.Class].Name)
		inc = strconv.AppendUint(append(inc, '\t'), uint64(in.Flow), 10)
		inc = appendSig(append(inc, '\t'), in.Sig)
		if in.Dropped {
			inc = append(inc, "\tdropped\t"...)
		} else if in.Lost {
			inc = append(inc, "\tlost\t"...)
		} else {
			inc = append(inc, "\tmissed\t"...)
		}
		for h, hop := range ow.Hops {
			if h > 0 {
				inc = append(inc, ' ')
			}
			inc = append(appendText(inc, hop.Name), '=')
			if h < reconcile.MaxHops && in.Mask&(1<<h) != 0 {
				inc = strconv.AppendInt(inc, in.TS[h], 10)
			}
		}
		inc = append(inc, '\n')
	}

	var acct []byte
	if a := &iv.Accounting; a.Sightings > 0 {
		acct = append(acct, start...)
		acct = append(append(acct, '\t'), secs...)
		for _, v := range [...]uint64{a.Sightings, a.Complete, a.Lost, a.Missed, a.Dropped, a.Duplicate, a.Late, a.Invalid} {
			acct = strconv.AppendUint(append(acct, '\t'), v, 10)
		}
		acct = append(acct, '\n')
	}

	var files []setFile
	for _, f := range [...]setFile{
		{typ: TypeStats, cols: ColsStats, rows: stats},
		{typ: TypeHist, cols: ColsHist, rows: hist},
		{typ: TypePacket, cols: ColsPacket, gen: w.packetRows(iv, start)},
		{typ: TypeIncomplete, cols: ColsIncomplete, rows: inc},
		{typ: TypeMetrics, cols: ColsMetrics, rows: mets},
		{typ: TypeAccounting, cols: ColsAccounting, rows: acct},
	} {
		if len(f.rows) > 0 || f.gen != nil && len(iv.Packets) > 0 {
			files = append(files, f)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeSet(iv.Start, files, true, true)
}

// appendSig appends a signature as 8 lower-case hex digits (fmt's %08x,
// without fmt's cost on a row per packet).
func appendSig(b []byte, sig uint32) []byte {
	const digits = "0123456789abcdef"
	for sh := 28; sh >= 0; sh -= 4 {
		b = append(b, digits[sig>>uint(sh)&0xf])
	}
	return b
}

func (w *Writer) oneWay(class int) (*conf.OneWay, error) {
	if class < 0 || class >= len(w.cfg.Classes) || w.cfg.Classes[class].OneWay == nil {
		return nil, fmt.Errorf("class %d has no one-way measurement in the configuration", class)
	}
	return w.cfg.Classes[class].OneWay, nil
}

// pair returns the hop pair, applying the default first→last pair.
func (w *Writer) pair(class, pair int) (*conf.OneWay, conf.HopPair, error) {
	ow, err := w.oneWay(class)
	if err != nil {
		return nil, conf.HopPair{}, err
	}
	if len(ow.Pairs) == 0 && pair == 0 {
		return ow, conf.HopPair{From: 0, To: len(ow.Hops) - 1}, nil
	}
	if pair < 0 || pair >= len(ow.Pairs) {
		return nil, conf.HopPair{}, fmt.Errorf("class %q: hop pair %d out of range", w.cfg.Classes[class].Name, pair)
	}
	p := ow.Pairs[pair]
	if p.From < 0 || p.To >= len(ow.Hops) {
		return nil, conf.HopPair{}, fmt.Errorf("class %q: hop pair %d→%d outside the path", w.cfg.Classes[class].Name, p.From, p.To)
	}
	return ow, p, nil
}

func appendPrefix(b []byte, start, secs, class string, flow uint32, from, to string) []byte {
	b = append(b, start...)
	b = append(append(b, '\t'), secs...)
	b = appendText(append(b, '\t'), class)
	b = strconv.AppendUint(append(b, '\t'), uint64(flow), 10)
	b = appendText(append(b, '\t'), from)
	b = appendText(append(b, '\t'), to)
	return append(b, '\t')
}

// appendText appends s with TABs and line breaks replaced by spaces, so
// that free text cannot break the record structure.
// Text is a name (class, hop) as the spool's text columns hold it: tabs and
// line breaks made spaces.
func Text(s string) string { return string(appendText(nil, s)) }

func appendText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\t', '\n', '\r':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return b
}

// testHookBeforeRename, when set by a test, runs once the temporary files
// of a set are complete and synced, before the commit; an error aborts the
// write.
var testHookBeforeRename func(tmp string) error
