package web

import (
	"testing"
	"time"

	"github.com/tmon-project/tmon/reports/query"
)

// The per-packet scatter draws the first fragments' delay of reassembled
// datagrams beside the delay (of their last fragments), and nothing more
// for packets captured whole.
func TestScatterFirstFragment(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	first := int64(18_500_000)
	whole := scatterChart([]query.Packet{{TFrom: t0, DelayNs: 20e6}, {TFrom: t0.Add(time.Millisecond), DelayNs: 21e6}})
	if len(whole.Series) != 1 || whole.Series[0].Label != "delay" {
		t.Errorf("whole packets: series %+v", whole.Series)
	}
	c := scatterChart([]query.Packet{{TFrom: t0, DelayNs: 20e6}, {TFrom: t0.Add(time.Millisecond), DelayNs: 21e6, FirstDelayNs: &first}})
	if len(c.Series) != 2 || c.Series[1].Label != "first fragment" {
		t.Fatalf("series %+v", c.Series)
	}
	d, f := c.Series[0].Data, c.Series[1].Data
	if *d[0] != 20 || *d[1] != 21 || f[0] != nil || f[1] == nil || *f[1] != 18.5 {
		t.Errorf("delay %v %v, first fragment %v %v", *d[0], *d[1], f[0], f[1])
	}
}
