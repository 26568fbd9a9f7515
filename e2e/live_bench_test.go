package e2e

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/internal/testenv"
)

// TestLiveBench steps the sender's rate up on the live lab until a step
// fails: the probes' kernel rings dropped packets, or the spool no longer
// matches the independent captures exactly. It prints a table; the last
// clean step is the figure. It runs only when TMON_BENCH_LIVE is set
// (scripts/bench-live.sh, `make bench-live`), as it takes minutes and all
// the machine's cores. TMON_BENCH_RATES overrides the steps (packets/s,
// comma-separated), TMON_BENCH_SECONDS the length of each step;
// TMON_BENCH_OUT names a file for the table.
//
// Every process of the lab shares the machine: the sender, the delay line,
// both probes, the collector and the two independent captures. On a small
// machine the figure is the lab's, of which the probe is one part; the
// table says which step broke and how.
func TestLiveBench(t *testing.T) {
	if os.Getenv("TMON_BENCH_LIVE") == "" {
		t.Skip("set TMON_BENCH_LIVE=1 (make bench-live) to step the live lab's rate up")
	}
	flag, missing := probeLiveFlag(t)
	if missing != "" {
		testenv.Skipf(t, "%s", missing)
	}
	rates := []int{2000, 5000, 10000, 20000, 40000, 60000, 80000, 100000, 120000, 160000}
	if v := os.Getenv("TMON_BENCH_RATES"); v != "" {
		rates = nil
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r <= 0 {
				t.Fatalf("TMON_BENCH_RATES: %q is not a rate", f)
			}
			rates = append(rates, r)
		}
	}
	seconds := 5.0
	if v := os.Getenv("TMON_BENCH_SECONDS"); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s <= 0 {
			t.Fatalf("TMON_BENCH_SECONDS: %q", v)
		}
		seconds = s
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%8s %9s %8s %7s %11s %15s %7s %9s %9s  %s\n",
		"asked/s", "sent/s", "packets", "lost", "ring drops", "exact", "clashes", "res p50", "res p99", "notes")
	best := 0.0
	for i, rate := range rates {
		var r *liveResult
		ok := t.Run(fmt.Sprint(rate), func(t *testing.T) {
			r = runLive(t, liveOpts{packets: int(float64(rate) * seconds * 10 / 11), rate: float64(rate), tcpEvery: 10,
				live: flag, seed: uint64(100 + i), bench: true})
		})
		if !ok || r == nil {
			fmt.Fprintf(&table, "%8d  the lab failed (see the subtest's log)\n", rate)
			break
		}
		// The criterion is the brief's: zero kernel ring drops at either
		// probe. Exactness is shown beside it: a delay off is a signature
		// clash the collector resolved by nearest time (32-bit signatures,
		// hundreds of thousands of packets a flow, and the lab's own
		// backlog stretching delays), or a bug; the notes say which.
		drops := r.drops[0] + r.drops[1]
		var notes []string
		stop := false
		switch {
		case drops != 0:
			notes, stop = append(notes, "probe: kernel ring drops"), true
		case r.noTruth:
			notes, stop = append(notes, "lab: no ground truth"), true
		case r.sendRate < 0.9*float64(rate):
			notes, stop = append(notes, "lab: the sender fell behind"), true
		}
		if len(r.problems) > 0 {
			notes = append(notes, "probe: "+summarise(r.problems))
		}
		if len(r.lab) > 0 {
			notes = append(notes, "lab: "+summarise(r.lab))
		}
		if len(notes) == 0 {
			notes = append(notes, "clean")
		}
		fmt.Fprintf(&table, "%8d %9.0f %8d %7d %5d %5d %15s %7d %9v %9v  %s\n", rate, r.sendRate, r.truth.sent, len(r.truth.lost),
			r.drops[0], r.drops[1], fmt.Sprintf("%d/%d", r.spool.exact, len(r.truth.delivered)), r.spool.clashes,
			percentile(r.residuals, 0.5).Round(time.Microsecond), percentile(r.residuals, 0.99).Round(time.Microsecond), strings.Join(notes, "; "))
		if drops == 0 && !r.noTruth {
			best = max(best, r.sendRate)
		}
		if stop {
			break
		}
	}
	fmt.Fprintf(&table, "highest rate with zero kernel ring drops at both probes: %.0f packets/s (UDP + TCP, A → B; sender, delay line, two probes, collector and two reference captures on %d cores)\n", best, runtime.NumCPU())
	t.Logf("live bench:\n%s", table.String())
	if out := os.Getenv("TMON_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func summarise(ps []string) string {
	if len(ps) == 1 {
		return ps[0]
	}
	return fmt.Sprintf("%s (+%d more)", ps[0], len(ps)-1)
}
