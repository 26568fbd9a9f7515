package web_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tmon-project/tmon/internal/testenv"
	"github.com/tmon-project/tmon/reports/export"
	"github.com/tmon-project/tmon/reports/internal/fixture"
	"github.com/tmon-project/tmon/reports/query"
	"github.com/tmon-project/tmon/reports/web"

	_ "github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite"
)

// screenshotDir is where the browser tests leave their screenshots and the
// PDF's first page, for a person to look at: $TMON_SCREENSHOTS, or
// <tmp>/tmon-report-screenshots.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("TMON_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tmon-report-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// env is a database loaded from the fixture (two redundant collectors),
// a report server on it, and the headless chromium.
type env struct {
	fx      *fixture.Fixture
	dbPath  string
	db      *query.DB
	srv     *web.Server
	ts      *httptest.Server
	browser string
	sel     query.Selection
}

var (
	envOnce sync.Once
	theEnv  *env
	envErr  error
)

func setup(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("runs probes, collectors and chromium")
	}
	browser, err := export.Chromium("")
	if err != nil {
		testenv.Skipf(t, "%v", err)
	}
	envOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tmon-report-web")
		if err != nil {
			envErr = err
			return
		}
		e := &env{browser: browser, dbPath: filepath.Join(dir, "tmon.db")}
		if e.fx, envErr = fixture.Build(dir); envErr != nil {
			return
		}
		if envErr = e.fx.Load("sqlite:" + e.dbPath); envErr != nil {
			return
		}
		if e.db, envErr = query.Open("sqlite:" + e.dbPath); envErr != nil {
			return
		}
		e.srv = web.New(e.db, nil, nil)
		e.ts = httptest.NewServer(e.srv)
		day := e.fx.Start.UTC().Truncate(24 * time.Hour)
		e.sel, envErr = query.Parse(map[string][]string{"period": {"custom"}, "from": {day.Format(time.RFC3339)}, "to": {day.Add(24 * time.Hour).Format(time.RFC3339)}}, time.Now())
		theEnv = e
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	return theEnv
}

// served is a report server on one database of the fixture, and a plain
// read-only handle on that database for the tests' own counts.
type served struct {
	db  *query.DB
	ts  *httptest.Server
	raw *sql.DB
}

var (
	myOnce   sync.Once
	theMy    *served
	myErr    error
	mySkip   string
	myClosed []func()
)

// setupMySQL loads the same fixture into MariaDB (the package's own
// database, fixture.MySQLDSNs("_web")) and serves it through the read-only
// account, so that the pages are seen in chromium on both databases.
func setupMySQL(t *testing.T, e *env) *served {
	t.Helper()
	myOnce.Do(func() {
		load, ro, err := fixture.MySQLDSNs("_web")
		if err != nil {
			myErr = err
			return
		}
		if err := fixture.ResetMySQL(load); err != nil {
			mySkip = fmt.Sprintf("MariaDB not usable at %s (%v): run .ci/mariadb.sh", load, err)
			return
		}
		if myErr = e.fx.Load("mysql:" + load); myErr != nil {
			return
		}
		s := &served{}
		if s.db, myErr = query.Open("mysql:" + ro); myErr != nil {
			return
		}
		if s.raw, myErr = sql.Open("mysql", ro); myErr != nil {
			return
		}
		s.ts = httptest.NewServer(web.New(s.db, nil, nil))
		myClosed = append(myClosed, s.ts.Close, func() { s.db.Close() }, func() { s.raw.Close() })
		theMy = s
	})
	if mySkip != "" {
		testenv.Skipf(t, "%s", mySkip)
	}
	if myErr != nil {
		t.Fatal(myErr)
	}
	return theMy
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range myClosed {
		f()
	}
	if theEnv != nil {
		theEnv.ts.Close()
		theEnv.db.Close()
		os.RemoveAll(theEnv.fx.Dir)
	}
	os.Exit(code)
}

// browse opens a fresh headless chromium (the flags of the PDF export, a
// fresh profile) and returns its context and the console messages it
// collects.
func browse(t *testing.T, e *env) (context.Context, func() []chromedp.ConsoleMessage) {
	t.Helper()
	opts := append(export.BrowserFlags(t.TempDir()), chromedp.ExecPath(e.browser))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", e.browser, err)
	}
	var mu sync.Mutex
	var msgs []chromedp.ConsoleMessage
	cons := chromedp.Console(ctx)
	go func() {
		for m, err := range cons {
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, m)
			mu.Unlock()
		}
	}()
	return ctx, func() []chromedp.ConsoleMessage {
		mu.Lock()
		defer mu.Unlock()
		return append([]chromedp.ConsoleMessage(nil), msgs...)
	}
}

// chartSums is, per chart drawn on the page, the sum of each series' data,
// and whether uPlot drew it.
const chartSums = `JSON.stringify(Object.fromEntries(Object.entries(window.tmonCharts).map(([id, c]) =>
	[id, {drawn: !!c.plot && c.plot.root.querySelector("canvas") !== null, n: c.def.x.length,
	      sums: c.def.series.map(s => s.data.reduce((a, b) => a + (b || 0), 0))}])))`

type chartInfo struct {
	Drawn bool      `json:"drawn"`
	N     int       `json:"n"`
	Sums  []float64 `json:"sums"`
}

// Every page loads in chromium with no console error or warning, draws its
// charts, and the charts hold the database's figures: on SQLite and on
// MariaDB (the same fixture loaded into each).
func TestPagesInChromium(t *testing.T) {
	e := setup(t)
	t.Run("sqlite", func(t *testing.T) {
		raw, err := sql.Open("sqlite", "file:"+e.dbPath+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		pagesInChromium(t, e, &served{db: e.db, ts: e.ts, raw: raw}, "")
	})
	t.Run("mysql", func(t *testing.T) {
		pagesInChromium(t, e, setupMySQL(t, e), "mysql-")
	})
}

// pagesInChromium opens every page of s's server; its screenshots are
// named with prefix.
func pagesInChromium(t *testing.T, e *env, s *served, prefix string) {
	ctx, console := browse(t, e)
	raw := s.raw
	var count, lost, packets int64
	if err := raw.QueryRow("SELECT SUM(count), SUM(lost_sum) FROM owd_stats_1m_one").Scan(&count, &lost); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow("SELECT COUNT(*) FROM owd_packet p JOIN flows f ON f.id = p.flow_id WHERE f.collector = 'c1'").Scan(&packets); err != nil {
		t.Fatal(err)
	}
	pairSel := e.sel
	pairSel.Class, pairSel.HopFrom, pairSel.HopTo = fixture.Class, fixture.HopFrom, fixture.HopTo
	shots := screenshotDir(t)
	for _, pg := range []struct {
		name, path string
		sel        query.Selection
		charts     []string
	}{
		{"overview", "/", e.sel, nil},
		{"pair", "/pair", pairSel, []string{"delay", "loss", "count", "slices", "loghist", "pdv", "ipdv", "lossperiods", "clockerr"}},
		{"path", "/path", pairSel, []string{"segments"}},
		{"events", "/events", e.sel, nil},
		{"probes", "/probes", e.sel, []string{"clockerr"}},
		{"packets", "/packets", pairSel, []string{"packets"}},
		{"report", "/report", e.sel, []string{"p0-delay", "p0-count"}},
	} {
		t.Run(pg.name, func(t *testing.T) {
			before := len(console())
			url := s.ts.URL + pg.path + "?" + pg.sel.Values().Encode()
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`))); err != nil {
				t.Fatalf("%s: %v", url, err)
			}
			js, err := chromedp.Run(ctx, chromedp.Evaluate[string](chartSums))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]chartInfo{}
			if err := json.Unmarshal([]byte(js), &got); err != nil {
				t.Fatal(err)
			}
			for _, id := range pg.charts {
				c, ok := got[id]
				if !ok || !c.Drawn || c.N == 0 {
					t.Errorf("chart %s: %+v (want drawn, with points)", id, c)
				}
			}
			// The chart data against the database.
			check := func(id string, series int, want int64) {
				if c, ok := got[id]; ok && int64(c.Sums[series]+0.5) != want {
					t.Errorf("chart %s series %d sums to %v, the database says %d", id, series, c.Sums[series], want)
				}
			}
			check("count", 0, count)
			check("count", 1, lost)
			check("p0-count", 0, count)
			check("slices", 0, count)
			check("loghist", 0, count)
			if c, ok := got["packets"]; ok && int64(c.N) != packets {
				t.Errorf("packets chart: %d points, the database has %d rows of collector c1", c.N, packets)
			}
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(shots, prefix+pg.name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, m := range console()[before:] {
				if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleWarning {
					t.Errorf("console %s: %s (%s:%d)", m.Type, m, m.URL, m.Line+1)
				}
			}
		})
	}
	t.Logf("screenshots in %s", shots)
}

// On a phone-sized screen the pages do not overflow sideways (wide tables
// scroll inside their box) and the charts fit.
func TestPhoneWidth(t *testing.T) {
	e := setup(t)
	ctx, console := browse(t, e)
	pairSel := e.sel
	pairSel.Class, pairSel.HopFrom, pairSel.HopTo = fixture.Class, fixture.HopFrom, fixture.HopTo
	for _, pg := range []struct {
		name, path string
		sel        query.Selection
	}{{"overview", "/", e.sel}, {"pair", "/pair", pairSel}} {
		url := e.ts.URL + pg.path + "?" + pg.sel.Values().Encode()
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`))); err != nil {
			t.Fatal(err)
		}
		w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if w > 390 {
			t.Errorf("%s: the page is %d px wide on a 390 px screen", pg.name, w)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(screenshotDir(t), "phone-"+pg.name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range console() {
		if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
			t.Errorf("console %s: %s", m.Type, m)
		}
	}
}

// The PDF export: it opens (pdfinfo), has a page per section, carries the
// figures as text (pdftotext), and its first page is rendered to PNG.
func TestPDF(t *testing.T) {
	e := setup(t)
	for _, tool := range []string{"pdftotext", "pdfinfo", "pdftoppm"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "%s not found (Debian: poppler-utils)", tool)
		}
	}
	doc, err := export.HTML(context.Background(), e.srv, e.sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{`src="`, `href="/`, `href="http`, "url("} {
		if strings.Contains(string(doc), ref) {
			t.Errorf("the HTML export refers to something outside itself: %s…", ref)
		}
	}
	out := filepath.Join(t.TempDir(), "report.pdf")
	if err := export.PDF(context.Background(), e.srv, e.sel, e.browser, out); err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command("pdfinfo", out).CombinedOutput()
	if err != nil {
		t.Fatalf("pdfinfo: %v\n%s", err, info)
	}
	var pages int
	for _, l := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(l, "Pages:"); ok {
			fmt.Sscan(strings.TrimSpace(v), &pages)
		}
	}
	// Overview, one pair, events: at least three pages.
	if pages < 3 {
		t.Errorf("%d pages, want at least 3 (overview, the pair, events)", pages)
	}
	txt, err := exec.Command("pdftotext", "-layout", out, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	f, err := e.db.Total(context.Background(), e.sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tmon report", "Overview", "A → B", "One-way delay percentiles", "Events", fmt.Sprint(f.Count), fmt.Sprintf("%.3f", float64(f.MaxNs)/1e6), "page 1 of"} {
		if !strings.Contains(string(txt), want) {
			t.Errorf("the PDF's text lacks %q", want)
		}
	}
	prefix := filepath.Join(screenshotDir(t), "report-page1")
	if b, err := exec.Command("pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", out, prefix).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, b)
	}
	if st, err := os.Stat(prefix + ".png"); err != nil || st.Size() < 10000 {
		t.Errorf("first page PNG: %v (%v)", st, err)
	}
}
