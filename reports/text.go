package reports

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// WriteText prints the summary for a terminal: per class and hop pair the
// counts, the delay figures and the histogram as bars.
func (s *Summary) WriteText(w io.Writer) {
	defer writeCounted(w, s.Counted)
	if len(s.Pairs) == 0 {
		if st, err := os.Stat(filepath.Join(s.Dir, "archive")); err == nil && st.IsDir() {
			fmt.Fprintf(w, "no one-way measurements left in %s: tmon-loader has loaded them and moved the files to %s (see them with tmon-report -db …)\n", s.Dir, filepath.Join(s.Dir, "archive"))
			return
		}
		fmt.Fprintf(w, "no one-way measurements in %s (no owd_stats files yet: has an interval closed?)\n", s.Dir)
		return
	}
	for _, p := range s.Pairs {
		fmt.Fprintf(w, "\nclass %s, hop %s → %s: %d flow(s), %d interval(s)\n", p.Class, p.From, p.To, len(p.Flows), len(p.Intervals))
		total := p.Count + p.Lost
		fmt.Fprintf(w, "  delays measured  %d\n", p.Count)
		fmt.Fprintf(w, "  lost             %d%s\n", p.Lost, pct(p.Lost, total))
		fmt.Fprintf(w, "  missed           %d   (seen downstream, not upstream)\n", p.Missed)
		fmt.Fprintf(w, "  duplicates       %d\n", p.Duplicate)
		fmt.Fprintf(w, "  reordered        %d\n", p.Reordered)
		fmt.Fprintf(w, "  signature clash  %d   (told apart by time)\n", p.Clashes)
		writeClock(w, p)
		if p.Count > 0 {
			mean := time.Duration(p.SumNs / float64(p.Count))
			fmt.Fprintf(w, "  delay            min %v  mean %v  max %v\n", ns(p.Min), mean.Round(time.Microsecond), ns(p.Max))
			if len(p.Delays) > 0 {
				p50, _ := Percentile(p.Delays, 0.50)
				p99, _ := Percentile(p.Delays, 0.99)
				fmt.Fprintf(w, "                   p50 %v  p99 %v  (exact, from %d per-packet records)\n", ns(p50), ns(p99), len(p.Delays))
			}
			writeHist(w, p.Slices)
		}
		writeMetrics(w, p)
	}
}

func writeHist(w io.Writer, sl []Slice) {
	var peak uint64
	for _, s := range sl {
		peak = max(peak, s.Count)
	}
	if peak == 0 {
		return
	}
	fmt.Fprintln(w, "  histogram:")
	for _, s := range sl {
		var label string
		switch {
		case !s.HasLo && s.HasHi:
			label = fmt.Sprintf("< %v", ns(s.Hi))
		case s.HasLo && !s.HasHi:
			label = fmt.Sprintf(">= %v", ns(s.Lo))
		case s.HasLo && s.HasHi:
			label = fmt.Sprintf("%v – %v", ns(s.Lo), ns(s.Hi))
		default:
			continue // never written (empty)
		}
		bar := strings.Repeat("█", int(40*s.Count/peak))
		fmt.Fprintf(w, "    %-18s %8d %s\n", label, s.Count, bar)
	}
}

func pct(n, total uint64) string {
	if total == 0 {
		return ""
	}
	return fmt.Sprintf("  (%.2f %%)", 100*float64(n)/float64(total))
}

func ns(v int64) time.Duration { return time.Duration(v) }

// writeClock says whether the probes' clocks were good enough for the
// delays: a row with clock_ok 0 may be off by more than the clock budget.
func writeClock(w io.Writer, p *Pair) {
	if p.ClockRows == 0 {
		return
	}
	bound := "unknown"
	if p.ClockUnknown < p.ClockRows {
		bound = ns(p.ClockErrMax).String()
	}
	if p.ClockNotOK == 0 {
		fmt.Fprintf(w, "  clock            ok in every interval (error bound ≤ %s)\n", bound)
		return
	}
	fmt.Fprintf(w, "  clock            NOT OK in %d of %d interval rows (clock_ok=0: a probe's clock unsynchronised or beyond its budget; those delays may be off by more; largest bound written %s)\n",
		p.ClockNotOK, p.ClockRows, bound)
}
