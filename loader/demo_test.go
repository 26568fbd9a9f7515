package loader

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/spool"
)

// demoSpool runs the demo pipeline (scripts/demo.sh: generator, collector
// and two probes over UDP on loopback, built from this tree) into a
// temporary directory and returns the collector's spool: the real
// collector's files, whatever it writes today.
func demoSpool(t *testing.T) string {
	t.Helper()
	out, _ := runDemo(t, false)
	return filepath.Join(out, "spool", "c1")
}

// runDemo runs scripts/demo.sh (with the report step: also tmon-loader and
// tmon-report) in a temporary working directory and returns its output
// directory and what it printed.
func runDemo(t *testing.T, report bool) (string, []byte) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the commands and runs the demo pipeline")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	// Only what scripts/demo.sh runs.
	cmds := []string{"./cmd/tmon-gen", "./cmd/tmon-collector", "./cmd/tmon-probe", "./cmd/tmon"}
	if report {
		cmds = append(cmds, "./cmd/tmon-loader", "./cmd/tmon-report")
	}
	build := exec.Command("go", append([]string{"build", "-o", bin + "/"}, cmds...)...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build commands: %v\n%s", err, out)
	}
	// The demo's collector port, replaced by a free one: other tests (and
	// other demos) may run at the same time.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	xml, err := os.ReadFile(filepath.Join(root, "examples/demo.xml"))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(tmp, "demo.xml")
	xml = []byte(strings.Replace(string(xml), "127.0.0.1:47390", "127.0.0.1:"+strconv.Itoa(port), 1))
	if err := os.WriteFile(conf, xml, 0o644); err != nil {
		t.Fatal(err)
	}
	// The probes' key files, named relative to the configuration.
	keys, _ := filepath.Glob(filepath.Join(root, "examples", "*.key"))
	for _, k := range keys {
		b, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, filepath.Base(k)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(tmp, "demo")
	cmd := exec.Command("bash", filepath.Join(root, "scripts/demo.sh"))
	rep := "REPORT=0"
	if report {
		rep = "REPORT=1"
	}
	cmd.Env = append(os.Environ(), "BIN="+bin, "OUT="+out, "CONF="+conf, "COUNT=6000", rep)
	cmd.Dir = tmp
	log, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, log)
	}
	return out, log
}

// spoolTotals reads a spool directly: rows per type, and the sums of
// owd_stats count and lost.
func spoolTotals(t *testing.T, dir string) (rows map[string]int, count, lost int64) {
	t.Helper()
	rows = map[string]int{}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.tsv"))
	for _, f := range files {
		typ := filepath.Base(filepath.Dir(f))
		if typ == spool.TypeSets || typeByName(typ) == nil {
			continue // manifests, and types without a table: no rows loaded
		}
		hdr, recs, err := spool.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rows[typ] += len(recs)
		if typ != "owd_stats" {
			continue
		}
		for _, r := range recs {
			for i, h := range hdr {
				v, _ := strconv.ParseInt(r[i], 10, 64)
				switch h {
				case "count":
					count += v
				case "lost":
					lost += v
				}
			}
		}
	}
	return rows, count, lost
}

// The spool of the real collector loads completely on both databases: every
// file and row, no bad line, owd_stats_1m sums equal to the spool's, and the
// delay quantiles merged over the day hold the exact per-packet quantiles
// within their error bounds.
func TestLoadDemoSpool(t *testing.T) {
	src := demoSpool(t)
	rows, count, lost := spoolTotals(t, src)
	for _, typ := range []string{"owd_stats", "owd_metrics", "owd_hist", "owd_packet", "flows"} {
		if rows[typ] == 0 {
			t.Fatalf("demo spool has no %s rows: %v", typ, rows)
		}
	}
	if count == 0 || lost == 0 {
		t.Fatalf("demo spool: count %d, lost %d: want both", count, lost)
	}
	eachDB(t, func(t *testing.T, db testDB) {
		dir := filepath.Join(t.TempDir(), "c1")
		copyDir(t, src, dir)
		st, tl := load(t, db, Config{Spools: []Spool{{"c1", dir}}, PerPacket: true})
		total := 0
		for _, n := range rows {
			total += n
		}
		if st.Bad != 0 || st.Rows != total {
			t.Fatalf("loaded %d rows, %d bad; the spool has %d rows (%v)\nlog:\n%s", st.Rows, st.Bad, total, rows, tl)
		}
		h := db.open(t)
		for typ, n := range rows {
			got := query(t, h, "SELECT COALESCE(SUM(rows_loaded), 0) FROM loaded_files WHERE name LIKE ?", typ+"/%")
			if got[0] != fmt.Sprint(n) {
				t.Errorf("%s: %s rows loaded, spool has %d", typ, got[0], n)
			}
		}
		for _, l := range levels {
			want := fmt.Sprintf("%d|%d|%d", count, lost, rows["owd_stats"])
			if got := query(t, h, "SELECT SUM(count), SUM(lost_sum), SUM(samples) FROM owd_stats_"+l.Suffix); got[0] != want {
				t.Errorf("owd_stats_%s: count|lost|samples %s, spool %s", l.Suffix, got[0], want)
			}
			want = fmt.Sprintf("%d|%d|%d", count, lost, rows["owd_metrics"])
			if got := query(t, h, "SELECT SUM(count), SUM(lost), SUM(samples) FROM owd_metrics_"+l.Suffix); got[0] != want {
				t.Errorf("owd_metrics_%s: count|lost|samples %s, spool %s", l.Suffix, got[0], want)
			}
		}
		if got := query(t, h, "SELECT COUNT(*) FROM owd_stats_1m WHERE dropped_sum IS NULL OR clock_not_ok IS NULL"); got[0] != "0" {
			t.Errorf("owd_stats_1m: %s rows without dropped or clock columns", got[0])
		}
		// The day's merged histogram against the exact quantiles of the
		// per-packet records (the demo's class writes every packet).
		delays := map[string][]int64{}
		for _, r := range query(t, h, "SELECT flow_id, hop_from, hop_to, delay_ns FROM owd_packet") {
			i := strings.LastIndexByte(r, '|')
			d, _ := strconv.ParseInt(r[i+1:], 10, 64)
			delays[r[:i]] = append(delays[r[:i]], d)
		}
		checked := 0
		for _, r := range query(t, h, `SELECT flow_id, hop_from, hop_to, count, delay_p50_ns, delay_p50_err_ns, delay_p90_ns, delay_p90_err_ns,
			delay_p99_ns, delay_p99_err_ns, delay_p999_ns, delay_p999_err_ns FROM owd_metrics_1d`) {
			f := strings.Split(r, "|")
			k := strings.Join(f[:3], "|")
			if f[3] != fmt.Sprint(len(delays[k])) {
				t.Errorf("owd_metrics_1d %s: count %s, %d per-packet records", k, f[3], len(delays[k]))
				continue
			}
			for qi, q := range quantileNames {
				v, _ := strconv.ParseInt(f[4+2*qi], 10, 64)
				e, _ := strconv.ParseInt(f[5+2*qi], 10, 64)
				x := exactQuantile(delays[k], q.q)
				if v-x > e || x-v > e || e > abs(x)/128+1 {
					t.Errorf("owd_metrics_1d %s: %s = %d ± %d, exact %d", k, q.name, v, e, x)
				}
				checked++
			}
		}
		if checked == 0 {
			t.Error("no quantile checked")
		}
	})
}
