package loader

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A daemon loader (-every) with -metrics serves the totals of its runs;
// fetched and parsed as Prometheus text, they match the files it found in
// the spool, the loaded_files table and the archive.
func TestLoaderMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the loader binary")
	}
	db := sqliteDB(t)
	dir := manyFiles(t)
	files := spoolFilesLeft(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := loaderCmd(t, db, dir, "-every", "200ms", "-metrics", addr)
	out := &testLog{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("loader output:\n%s", out.String())
		}
	}()
	var vals map[string]float64
	deadline := time.Now().Add(2 * time.Minute)
	for {
		vals, err = scrapeValues(addr)
		if err == nil && vals["tmon_loader_files_total"] == float64(files) && vals["tmon_loader_archived_files_total"] == float64(files) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("loader metrics never reached %d files: %v %v", files, vals, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := query(t, db.open(t), "SELECT COUNT(*) FROM loaded_files"); len(n) != 1 || n[0] != strconv.Itoa(files) {
		t.Errorf("loaded_files has %v rows, metrics say %d files", n, files)
	}
	if a := archived(t, dir); len(a) != files {
		t.Errorf("%d files archived, metrics say %d", len(a), files)
	}
	if vals["tmon_loader_runs_total"] < 1 || vals["tmon_loader_run_failures_total"] != 0 || vals["tmon_loader_rows_total"] == 0 {
		t.Errorf("runs, failures, rows: %v", vals)
	}
	if s := vals["tmon_loader_last_success_timestamp_seconds"]; time.Since(time.Unix(int64(s), 0)) > time.Minute {
		t.Errorf("last success at %v", s)
	}
}

// scrapeValues fetches http://addr/metrics, parses it as Prometheus text
// and returns each unlabelled tmon_ sample's value.
func scrapeValues(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			switch {
			case m.Counter != nil:
				out[name] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out, nil
}
