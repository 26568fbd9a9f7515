package loader

import (
	"sync/atomic"
	"time"

	"github.com/tmon-project/tmon/health"
)

// totals add up the Stats of every run of a daemon loader, for its
// metrics endpoint: each run's figures are counted once, when it ends.
type totals struct {
	runs, failures, files, rows, bad, archived atomic.Uint64
	lastOK                                     atomic.Int64 // Unix ns of the end of the last successful run
	lastElapsed                                atomic.Int64 // ns
}

func (t *totals) add(st Stats, err error) {
	t.runs.Add(1)
	if err != nil {
		t.failures.Add(1)
	} else {
		t.lastOK.Store(time.Now().UnixNano())
	}
	t.files.Add(uint64(st.Files))
	t.rows.Add(uint64(st.Rows))
	t.bad.Add(uint64(st.Bad))
	t.archived.Add(uint64(st.Archived))
	t.lastElapsed.Store(int64(st.Elapsed))
}

// Metrics returns the loader's health.Func (docs/operations.md): the
// totals of the runs so far.
func (l *Loader) Metrics() health.Func {
	return func(e health.Emit) {
		t := &l.tot
		e.Gauge("tmon_loader_info", "The loader's database kind (value 1).", 1, "db", l.d.Name())
		e.Counter("tmon_loader_runs_total", "Load runs ended, successful or not.", float64(t.runs.Load()))
		e.Counter("tmon_loader_run_failures_total", "Load runs that failed (files stay in the spool for the next run).", float64(t.failures.Load()))
		e.Counter("tmon_loader_files_total", "Spool files loaded.", float64(t.files.Load()))
		e.Counter("tmon_loader_rows_total", "Spool rows loaded.", float64(t.rows.Load()))
		e.Counter("tmon_loader_bad_lines_total", "Malformed spool lines (kept in table bad_lines).", float64(t.bad.Load()))
		e.Counter("tmon_loader_archived_files_total", "Files moved to the archive.", float64(t.archived.Load()))
		e.Gauge("tmon_loader_last_run_duration_seconds", "Duration of the last run.", time.Duration(t.lastElapsed.Load()).Seconds())
		if ok := t.lastOK.Load(); ok != 0 {
			e.Gauge("tmon_loader_last_success_timestamp_seconds", "When the last successful run ended (Unix time).", float64(ok)/1e9)
		}
	}
}
