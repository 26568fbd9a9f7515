package spool

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/tmon-project/tmon/reconcile"
)

func TestWriteMetrics(t *testing.T) {
	w, dir := newWriter(t)
	iv := testInterval()
	for _, st := range iv.Stats {
		m := reconcile.Metrics{Flow: st.Flow, Class: st.Class, Pair: st.Pair, Count: st.Count, Lost: st.Lost,
			Duplicate: st.Duplicate, Reordered: st.Reordered, LossWait: 2e9}
		if st.Count == 3 {
			m.SampleN = 16
			m.Delay = reconcile.Quantiles{V: [4]int64{15e6, 25e6, 25e6, 25e6}, Err: [4]int64{65536, 0, 0, 0}}
			m.DelayHist = []byte("1100:1,1200:2")
			m.IPDVCount, m.IPDVMin, m.IPDVMax = 2, -10e6, 20e6
			m.ReorderExtentMax, m.ReorderExtentSum = 1, 1
		}
		iv.Metrics = append(iv.Metrics, m)
	}
	if err := w.WriteInterval(iv); err != nil {
		t.Fatal(err)
	}
	hdr, rows, err := ReadFile(filepath.Join(dir, "owd_metrics", "owd_metrics-20261123T034500Z.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hdr, ColsMetrics) || len(rows) != len(iv.Stats) {
		t.Fatalf("header %q, %d rows", hdr, len(rows))
	}
	col := func(r int, name string) string { return rows[r][slices.Index(hdr, name)] }
	for name, want := range map[string]string{
		"hop_from": "gw", "hop_to": "mcc", "sample_n": "16", "count": "3", "count_est": "48",
		"count_est_ci95": "52.6", "lost_est": "0", "lost_est_ci95": "48.0", "loss_ratio": "0", "loss_wait_ns": "2000000000",
		// Wilson interval of 0 lost in 3: [0, 1.96²/(3+1.96²)].
		"loss_ratio_lo": "0", "loss_ratio_hi": "0.561506", "loss_ratio_ci95": "0.280753",
		"delay_p50_ns": "15000000", "delay_p50_err_ns": "65536", "delay_hist": "1100:1,1200:2",
		"ipdv_min_ns": "-10000000", "ipdv_max_ns": "20000000", "reorder_ratio": "0.333333", "dup_ratio": "0.333333",
		"loss_distance_min": "", "compose_viol": "0",
	} {
		if got := col(0, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	// A row without delays leaves the delay figures empty.
	if got := col(1, "delay_p99_ns"); got != "" || col(1, "sample_n") != "1" || col(1, "count_est_ci95") != "0.0" {
		t.Errorf("row without delays: p99 %q sample_n %q ci %q", got, col(1, "sample_n"), col(1, "count_est_ci95"))
	}
}
