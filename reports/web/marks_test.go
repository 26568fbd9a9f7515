package web_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"html"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tmon-project/tmon/reports/internal/fixture"
	"github.com/tmon-project/tmon/reports/query"
	"github.com/tmon-project/tmon/reports/web"
)

// The hop pair page draws the period's events on its time charts where
// they happened: each time chart carries a mark per event of the database
// (at most 200), at the event's time with its kind, inside the chart's
// time range.
func TestEventMarks(t *testing.T) {
	e := setup(t)
	// The collectors' events are stamped with the wall clock, the
	// generated traffic with its own: a copy of the database gets three
	// events during the traffic (and keeps the others).
	path := filepath.Join(t.TempDir(), "tmon.db")
	b, err := os.ReadFile(e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for i, kind := range []string{"clock.unsync", "transport.long_retry", "capture.drops"} {
		at := e.fx.Start.Add(time.Duration(i+1) * time.Minute).Add(17 * time.Second)
		if _, err := raw.Exec("INSERT INTO events (time_ns, file_id, line, collector, source, kind, detail) VALUES (?, 999999, ?, 'c1', 'probe:pa', ?, 'test')",
			at.UnixNano(), i, kind); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	db, err := query.Open("sqlite:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ts := httptest.NewServer(web.New(db, nil, nil))
	defer ts.Close()
	ctx, console := browse(t, e)
	sel := e.sel
	sel.Class, sel.HopFrom, sel.HopTo = fixture.Class, fixture.HopFrom, fixture.HopTo
	evs, err := db.Events(context.Background(), sel, query.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < 3 {
		t.Fatalf("%d events in the period, want the 3 added", len(evs))
	}
	pairURL := ts.URL + "/pair?" + sel.Values().Encode()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(pairURL), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`))); err != nil {
		t.Fatal(err)
	}
	js, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(Object.fromEntries(["delay", "loss", "count"].map(id =>
		[id, {marks: window.tmonCharts[id].def.marks || [], x0: window.tmonCharts[id].def.x[0], x1: window.tmonCharts[id].def.x.at(-1),
		      drawn: !!window.tmonCharts[id].plot}])))`))
	if err != nil {
		t.Fatal(err)
	}
	type mark struct {
		T     float64 `json:"t"`
		Label string  `json:"label"`
	}
	var got map[string]struct {
		Marks []mark  `json:"marks"`
		X0    float64 `json:"x0"`
		X1    float64 `json:"x1"`
		Drawn bool    `json:"drawn"`
	}
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatal(err)
	}
	want := min(len(evs), 200)
	for id, c := range got {
		if !c.Drawn || len(c.Marks) != want {
			t.Errorf("chart %s: %d marks (drawn %v), the database has %d events in the period", id, len(c.Marks), c.Drawn, len(evs))
			continue
		}
		for i, m := range c.Marks {
			at := float64(evs[i].T.UnixNano()) / 1e9
			if math.Abs(m.T-at) > 1e-3 || m.Label != evs[i].Kind {
				t.Errorf("chart %s mark %d: %s at %.3f, the event is %s at %.3f", id, i, m.Label, m.T, evs[i].Kind, at)
			}
			// Within the period the chart shows (its steps start on the
			// resolution's grid: one step of slack).
			if m.T < c.X0-60 || m.T > c.X1+60 {
				t.Errorf("chart %s mark %d at %.0f outside the chart's time range [%.0f, %.0f]", id, i, m.T, c.X0, c.X1)
			}
		}
	}
	// The events page links each event's time to the hop pair's charts
	// around it: a period of about an hour that holds the event.
	resp, err := http.Get(ts.URL + "/events?" + sel.Values().Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	links := regexp.MustCompile(`href="(/pair\?[^"#]+)#chart-delay"`).FindAllStringSubmatch(string(page), -1)
	for _, ev := range evs {
		found := false
		for _, l := range links {
			u, err := url.Parse(html.UnescapeString(l[1]))
			if err != nil {
				t.Fatal(err)
			}
			ls, err := query.Parse(u.Query(), time.Now())
			if err != nil {
				t.Fatalf("%s: %v", l[1], err)
			}
			if !ev.T.Before(ls.From) && ev.T.Before(ls.To) && ls.To.Sub(ls.From) <= 62*time.Minute && ls.Pair() {
				found = true
			}
		}
		if !found {
			t.Errorf("event %s at %s: no link to the pair's charts around it (%d links)", ev.Kind, ev.T, len(links))
		}
	}
	for _, m := range console() {
		if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
			t.Errorf("console %s: %s", m.Type, m)
		}
	}
}
