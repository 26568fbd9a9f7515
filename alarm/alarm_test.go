package alarm

import (
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/hist"
	"github.com/tmon-project/tmon/reconcile"
)

const testConf = `<tmon interval="1s">
  <collector name="c1" address="127.0.0.1:4739"/>
  <probe name="pa" id="1"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2"><interface name="b0" hop="B"/></probe>
  <flowClass name="k">
    <oneWay hops="A B">
      <hopPair from="A" to="B">
        <threshold metric="delay.p50" above="30ms" clear="25ms" after="2" clearAfter="2"/>
        <threshold metric="loss" above="10%" clear="5%"/>
        <threshold metric="delay.max" learn="3" factor="2" clearFactor="1.5"/>
      </hopPair>
    </oneWay>
  </flowClass>
</tmon>`

// interval builds interval i (1 s long) with two flows: n packets each at
// delay d, and lost lost packets in the first.
func interval(i int, n int, d time.Duration, lost uint64) *reconcile.Interval {
	iv := &reconcile.Interval{Start: int64(i) * int64(time.Second), Length: time.Second}
	for f := uint32(0); f < 2; f++ {
		var h, p hist.Hist
		for range n {
			h.Add(int64(d))
			p.Add(0)
		}
		st := reconcile.PairStats{Flow: f, Count: uint64(n), Min: int64(d), Max: int64(d)}
		if f == 0 {
			st.Lost = lost
		}
		iv.Stats = append(iv.Stats, st)
		iv.Metrics = append(iv.Metrics, reconcile.Metrics{Flow: f, Count: uint64(n), DelayHist: h.AppendSparse(nil), PDVHist: p.AppendSparse(nil)})
	}
	return iv
}

func TestWatcher(t *testing.T) {
	cfg, err := conf.Parse(strings.NewReader(testConf), "t.xml")
	if err != nil {
		t.Fatal(err)
	}
	w := New(cfg, "c1")
	ms := time.Millisecond
	for i, s := range []struct {
		n    int
		d    time.Duration
		lost uint64
		want []string // kind metric
	}{
		{100, 20 * ms, 0, nil}, // learning delay.max: 20ms
		{100, 20 * ms, 0, nil},
		{100, 20 * ms, 0, nil}, // baseline 20ms: limit 40ms, clear 30ms
		{100, 35 * ms, 0, nil}, // p50 over 30ms once: after="2" waits
		{100, 20 * ms, 0, nil}, // back under: the run restarts
		{100, 35 * ms, 0, nil}, // once more
		{100, 45 * ms, 0, []string{"threshold.crossed delay.p50", "threshold.crossed delay.max"}}, // twice in a row; max over 40ms
		{100, 45 * ms, 0, nil}, // already raised
		{100, 28 * ms, 0, []string{"threshold.cleared delay.max"}}, // 28 > 25: p50 stays; max ≤ 30ms clears
		{0, 0, 0, nil},         // no packet: nothing judged
		{100, 24 * ms, 0, nil}, // first under clear
		{100, 24 * ms, 0, []string{"threshold.cleared delay.p50"}}, // second: cleared
		{90, 20 * ms, 30, []string{"threshold.crossed loss"}},      // 30/(180+30) = 14 %
		{90, 20 * ms, 9, nil}, // 9/189 = 4.8 % but … ≤ 5 %: cleared
	} {
		var iv *reconcile.Interval
		if s.n == 0 {
			iv = &reconcile.Interval{Start: int64(i) * int64(time.Second), Length: time.Second}
		} else {
			iv = interval(i, s.n, s.d, s.lost)
		}
		var got []string
		for _, n := range w.Interval(iv, time.Unix(int64(i), 0)) {
			got = append(got, n.Kind+" "+n.Metric)
			if n.IntervalStart != time.Unix(int64(i), 0).UTC() || n.Class != "k" || n.From != "A" || n.To != "B" || n.Collector != "c1" {
				t.Errorf("interval %d: notice %+v", i, n)
			}
		}
		want := s.want
		if i == 13 {
			want = []string{"threshold.cleared loss"}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("interval %d: %v, want %v", i, got, want)
		}
	}
}
