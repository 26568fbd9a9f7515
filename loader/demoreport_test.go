package loader

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/internal/testenv"
)

// `make demo` ends with the report (issue 12): scripts/demo.sh as a
// newcomer runs it loads its spool into SQLite, writes a self-contained
// HTML report holding the demo's figures, says how to serve the pages; its
// summary says how the clocks were; afterwards `tmon summary` on the
// loaded spool says where the files went, and nothing is left in the
// working directory (no stray tmon.db or lock).
func TestDemoEndsWithReport(t *testing.T) {
	out, log := runDemo(t, true)
	text := string(log)
	for _, want := range []string{
		"== 5/5 loading the spool into SQLite", "Report: open " + filepath.Join(out, "report.html"),
		"tmon-report -db sqlite:" + filepath.Join(out, "tmon.db"), "http://127.0.0.1:8090/?period=all",
		"  clock   ", // the summary's clock line (clock_ok of the rows)
		"counted (every class, per probe interface)", "class other", // the counted-only class
		"  histogram:", // the delay slices as bars, not a bucket list
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, text)
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(out, "tmon.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var count int64
	if err := db.QueryRow("SELECT SUM(count) FROM owd_stats_1d_one").Scan(&count); err != nil || count == 0 {
		t.Fatalf("the demo's database: %d delays (%v)", count, err)
	}
	html, err := os.ReadFile(filepath.Join(out, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	for _, want := range []string{"A → B", fmt.Sprint(count), "uPlot"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, ref := range []string{`src="`, `href="http`, "url("} {
		if strings.Contains(page, ref) {
			t.Errorf("report.html refers to something outside itself: %s…", ref)
		}
	}
	// The spool was loaded and archived: the summary says so.
	sum, err := exec.Command(filepath.Join(filepath.Dir(out), "bin", "tmon"), "summary", filepath.Join(out, "spool", "c1")).CombinedOutput()
	if err != nil || !strings.Contains(string(sum), "tmon-loader has loaded them") {
		t.Errorf("tmon summary of the loaded spool (%v):\n%s", err, sum)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "tmon.db*"))
	if len(left) > 0 {
		t.Errorf("files left in the working directory: %v", left)
	}

	// The PDF the demo's last line offers, as cron would run it: one
	// pair selected, headless chromium, nothing on stdout.
	for _, tool := range []string{"chromium", "pdftotext"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "%s not found (Debian: chromium, poppler-utils)", tool)
		}
	}
	pdf := filepath.Join(out, "report.pdf")
	cmd := exec.Command(filepath.Join(filepath.Dir(out), "bin", "tmon-report"), "-db", "sqlite:"+filepath.Join(out, "tmon.db"),
		"-period", "all", "-select", "pair=A>B", "-pdf", pdf)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stdout.Len() > 0 {
		t.Fatalf("tmon-report -pdf: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	txt, err := exec.Command("pdftotext", "-layout", pdf, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tmon report", "A → B", fmt.Sprint(count), "page 1 of"} {
		if !strings.Contains(string(txt), want) {
			t.Errorf("the PDF's text lacks %q", want)
		}
	}
}
