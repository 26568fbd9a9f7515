package web_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tmon-project/tmon/reports/internal/fixture"
)

// The overview of a class (a row per flow) comes worst first, in the
// order of the query (health, then loss ratio, then p99), and a click on a
// column heading sorts the rows by it, ascending, then descending.
func TestOverviewSortable(t *testing.T) {
	e := setup(t)
	ctx, console := browse(t, e)
	sel := e.sel
	sel.Class = fixture.Class
	rows, err := e.db.Overview(context.Background(), sel)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 2 {
		t.Fatalf("%d rows: nothing to sort", len(rows))
	}
	var want []string
	for _, r := range rows {
		want = append(want, strconv.FormatInt(r.Count, 10))
	}
	url := e.ts.URL + "/?" + sel.Values().Encode()
	// The data-v of the count column of every row, in the page's order.
	const counts = `JSON.stringify(Array.from(document.querySelectorAll("table.sortable")[0].tBodies[0].rows).map(r =>
		r.cells[Array.from(r.closest("table").tHead.rows[0].cells).findIndex(c => c.textContent === "count")].dataset.v))`
	const click = `Array.from(document.querySelectorAll("table.sortable")[0].tHead.rows[0].cells).find(c => c.textContent === "count").click()`
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`))); err != nil {
		t.Fatal(err)
	}
	read := func() []string {
		js, err := chromedp.Run(ctx, chromedp.Evaluate[string](counts))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		if err := json.Unmarshal([]byte(js), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := read(); !slices.Equal(got, want) {
		t.Errorf("the page's rows (counts) %v, the query's (worst first) %v", got, want)
	}
	num := func(v []string) []int {
		out := make([]int, len(v))
		for i, x := range v {
			out[i], _ = strconv.Atoi(x)
		}
		return out
	}
	for _, dir := range []string{"ascending", "descending"} {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](click)); err != nil {
			t.Fatal(err)
		}
		got := num(read())
		sorted := slices.Sorted(slices.Values(got))
		if dir == "descending" {
			slices.Reverse(sorted)
		}
		if !slices.Equal(got, sorted) || len(got) != len(want) {
			t.Errorf("after a click (%s): counts %v", dir, got)
		}
	}
	for _, m := range console() {
		if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
			t.Errorf("console %s: %s", m.Type, m)
		}
	}
}
