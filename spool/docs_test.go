package spool

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocumentedColumns checks the column tables of docs/spool.md against
// the columns the writers emit: every file type's section names exactly
// its columns, in their order — the format a loader or a user's script
// relies on. A column added, removed or moved on one side only fails.
//
// A table's first cell names one or more columns, comma-separated; the
// shorthands the document uses are expanded against the code's list:
// "a … b" is every column from a to b, "x_…" every column starting x_, and
// "pXX" in a name stands for each quantile (p50, p90, p99, p999). Rows
// with a shorthand are checked as a set (the quantile columns interleave
// value and error in the file), the others in order.
func TestDocumentedColumns(t *testing.T) {
	doc, err := os.ReadFile("../docs/spool.md")
	if err != nil {
		t.Fatal(err)
	}
	types := map[string][]string{
		TypeFlows: ColsFlows, TypeEvents: ColsEvents, TypeStats: ColsStats, TypeHist: ColsHist,
		TypePacket: ColsPacket, TypeIncomplete: ColsIncomplete, TypeAccounting: ColsAccounting,
		TypeMetrics: ColsMetrics, TypeCounters: ColsCounters, TypeRTT: ColsRTT,
		TypeTCPConn: ColsTCPConn, TypeFTP: ColsFTP,
	}
	sections := documentedTables(string(doc))
	for typ, cols := range types {
		rows, ok := sections[typ]
		if !ok {
			t.Errorf("docs/spool.md has no \"### `%s`\" section with a column table", typ)
			continue
		}
		var inOrder, all []string
		for _, cell := range rows {
			for _, name := range strings.Split(cell, ",") {
				name = strings.TrimSpace(name)
				exp, short := expandColumn(name, cols)
				if len(exp) == 0 {
					t.Errorf("%s: documented column %q is not written (columns: %v)", typ, name, cols)
				}
				all = append(all, exp...)
				if !short {
					inOrder = append(inOrder, exp...)
				}
			}
		}
		for _, c := range cols {
			if !slices.Contains(all, c) {
				t.Errorf("%s: column %q is written but not documented", typ, c)
			}
		}
		// The plainly named columns appear in the file's order.
		at := 0
		for _, c := range inOrder {
			i := slices.Index(cols[at:], c)
			if i < 0 {
				t.Errorf("%s: documented column %q out of the file's order %v", typ, c, cols)
				break
			}
			at += i + 1
		}
	}
}

// documentedTables returns, per "### `type` —" section of the document,
// the first cell of each row of its first table with a "column" header.
func documentedTables(doc string) map[string][]string {
	head := regexp.MustCompile("^### `([a-z_]+)`")
	out := map[string][]string{}
	var typ string
	var inTable bool
	for _, line := range strings.Split(doc, "\n") {
		if m := head.FindStringSubmatch(line); m != nil {
			typ, inTable = m[1], false
			continue
		}
		if strings.HasPrefix(line, "#") {
			typ = ""
			continue
		}
		if typ == "" || !strings.HasPrefix(line, "|") {
			if inTable {
				typ = "" // the section's first table ended
			}
			continue
		}
		cells := strings.Split(line, "|")
		first := strings.TrimSpace(cells[1])
		switch {
		case first == "column":
			inTable = true
		case !inTable || strings.HasPrefix(first, "---"):
		default:
			out[typ] = append(out[typ], first)
		}
	}
	return out
}

// expandColumn returns the columns of cols a documented name stands for,
// and whether it was a shorthand.
func expandColumn(name string, cols []string) ([]string, bool) {
	if a, b, ok := strings.Cut(name, " … "); ok {
		i, j := slices.Index(cols, a), slices.Index(cols, b)
		if i < 0 || j < i {
			return nil, true
		}
		return cols[i : j+1], true
	}
	if p, ok := strings.CutSuffix(name, "…"); ok {
		var out []string
		for _, c := range cols {
			if strings.HasPrefix(c, p) {
				out = append(out, c)
			}
		}
		return out, true
	}
	if strings.Contains(name, "pXX") {
		var out []string
		for _, q := range quantileNames {
			if c := strings.Replace(name, "pXX", q, 1); slices.Contains(cols, c) {
				out = append(out, c)
			}
		}
		return out, true
	}
	if slices.Contains(cols, name) {
		return []string{name}, false
	}
	return nil, false
}
