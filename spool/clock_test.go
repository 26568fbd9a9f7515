package spool

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/reconcile"
)

// TestClockColumns checks the error bound and the synchronised flag of
// owd_stats: the sum over the distinct probes of a hop pair, empty when a
// probe's clock is unknown or unsynchronised (its record has no offset: a
// bound of 0 there would claim a perfect clock), ok only when every probe is synchronised within
// the budget; assumeSynced makes every probe good.
func TestClockColumns(t *testing.T) {
	us := int64(time.Microsecond)
	cfg := func(assume bool) *conf.Config {
		return &conf.Config{Interval: time.Minute, Clock: conf.Clock{Budget: time.Millisecond, AssumeSynced: assume}, Classes: []conf.Class{
			{Name: "c", OneWay: &conf.OneWay{Hops: []conf.Hop{
				{Name: "a", Interfaces: []conf.ProbeInterface{{Probe: 0}}},
				{Name: "b", Interfaces: []conf.ProbeInterface{{Probe: 1}, {Probe: 2}}}, // alternatives
				{Name: "c", Interfaces: []conf.ProbeInterface{{Probe: 0, Interface: 1}}},
			}, Pairs: []conf.HopPair{{From: 0, To: 1}, {From: 0, To: 2}}}},
		}}
	}
	iv := &reconcile.Interval{Start: start.UnixNano(), Length: time.Minute, Stats: []reconcile.PairStats{
		{Flow: 1, Class: 0, Pair: 0, Count: 1, Sum: 5, Min: 5, Max: 5, Hist: []uint64{1}},
		{Flow: 1, Class: 0, Pair: 1, Count: 1, Sum: 5, Min: 5, Max: 5, Hist: []uint64{1}},
	}}
	for _, tc := range []struct {
		name   string
		assume bool
		states map[int]ClockState
		want   [2][2]string // per pair: clock_err_ns, clock_ok
	}{
		{"no clock source", false, nil, [2][2]string{{"", "0"}, {"", "0"}}},
		{"all synced", false, map[int]ClockState{0: {true, true, 100 * us}, 1: {true, true, 200 * us}, 2: {true, true, 300 * us}},
			[2][2]string{{"600000", "1"}, {"100000", "1"}}},
		{"one unknown", false, map[int]ClockState{0: {true, true, 100 * us}, 1: {true, true, 200 * us}},
			[2][2]string{{"", "0"}, {"100000", "1"}}},
		{"one unsynchronised", false, map[int]ClockState{0: {true, true, 100 * us}, 1: {true, false, 0}, 2: {true, true, 0}},
			[2][2]string{{"", "0"}, {"100000", "1"}}},
		{"over budget", false, map[int]ClockState{0: {true, true, 2000 * us}, 1: {true, true, 0}, 2: {true, true, 0}},
			[2][2]string{{"2000000", "0"}, {"2000000", "0"}}},
		{"assumed", true, nil, [2][2]string{{"0", "1"}, {"0", "1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := New(dir, cfg(tc.assume))
			if err != nil {
				t.Fatal(err)
			}
			if tc.states != nil {
				w.SetClocks(func(p int) ClockState { return tc.states[p] })
			}
			if err := w.WriteInterval(iv); err != nil {
				t.Fatal(err)
			}
			_, rows, err := ReadFile(filepath.Join(dir, "owd_stats/owd_stats-20261123T034500Z.tsv"))
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rows {
				if got := [2]string{r[len(r)-2], r[len(r)-1]}; got != tc.want[i] {
					t.Errorf("pair %d: clock columns %q, want %q", i, got, tc.want[i])
				}
			}
		})
	}
}
