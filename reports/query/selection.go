package query

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Level is one of the loader's aggregation levels (tables <type>_<Suffix>).
type Level struct {
	Suffix string
	Step   time.Duration
}

// Levels, finest first.
var (
	Minute = Level{"1m", time.Minute}
	Hour   = Level{"1h", time.Hour}
	Day    = Level{"1d", 24 * time.Hour}
	Levels = []Level{Minute, Hour, Day}
)

// Periods offered by the pages, with their length.
var Periods = []struct {
	Name string
	Len  time.Duration
}{
	{"hour", time.Hour},
	{"day", 24 * time.Hour},
	{"week", 7 * 24 * time.Hour},
	{"month", 30 * 24 * time.Hour},
	{"year", 365 * 24 * time.Hour},
}

// Selection is what every page shows: a period [From, To) in UTC and
// optional filters. It travels in the URL (Values, Parse) so that a page
// can be bookmarked and sent.
type Selection struct {
	Period    string // hour, day, week, month, year or custom
	From, To  time.Time
	Collector string // "": every collector, each figure once
	Class     string
	Flow      string // flow_key; needs Class
	HopFrom   string
	HopTo     string
}

// Resolution is the table of the time charts: the period decides it, so
// that a chart has at most a few thousand points (≤ 2 days: minutes,
// ≤ 62 days: hours, beyond: days).
func (s Selection) Resolution() Level {
	switch d := s.To.Sub(s.From); {
	case d <= 48*time.Hour:
		return Minute
	case d <= 62*24*time.Hour:
		return Hour
	}
	return Day
}

// Pair reports whether a hop pair is selected.
func (s Selection) Pair() bool { return s.HopFrom != "" && s.HopTo != "" }

// Label is the period as people read it, in UTC, said so.
func (s Selection) Label() string {
	return fmt.Sprintf("%s – %s UTC (%s, %s rows)", s.From.UTC().Format("2006-01-02 15:04"), s.To.UTC().Format("2006-01-02 15:04"),
		s.Period, s.Resolution().Suffix)
}

// Values is the selection as URL parameters.
func (s Selection) Values() url.Values {
	v := url.Values{}
	v.Set("period", s.Period)
	switch s.Period {
	case "all":
	case "custom":
		v.Set("from", s.From.UTC().Format(time.RFC3339))
		v.Set("to", s.To.UTC().Format(time.RFC3339))
	default:
		v.Set("to", s.To.UTC().Format(time.RFC3339))
	}
	for k, x := range map[string]string{"collector": s.Collector, "class": s.Class, "flow": s.Flow, "hop_from": s.HopFrom, "hop_to": s.HopTo} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v
}

// With returns a copy with one parameter changed (for links).
func (s Selection) With(key, value string) Selection {
	switch key {
	case "collector":
		s.Collector = value
	case "class":
		s.Class, s.Flow = value, ""
	case "flow":
		s.Flow = value
	case "pair":
		s.HopFrom, s.HopTo, _ = strings.Cut(value, ">")
	}
	return s
}

// Parse reads a selection from URL parameters. period is hour, day, week,
// month, year (ending at to, default now rounded up to the minute) or
// custom (from and to, RFC 3339 or 2006-01-02 or 2006-01-02T15:04, UTC).
func Parse(v url.Values, now time.Time) (Selection, error) {
	s := Selection{
		Period: v.Get("period"), Collector: v.Get("collector"), Class: v.Get("class"), Flow: v.Get("flow"),
		HopFrom: v.Get("hop_from"), HopTo: v.Get("hop_to"),
	}
	// The pages' pair selector sends "FROM>TO".
	if p := v.Get("pair"); p != "" && s.HopFrom == "" {
		s.HopFrom, s.HopTo, _ = strings.Cut(p, ">")
	}
	if s.Period == "" {
		s.Period = "day"
		if v.Get("from") != "" {
			s.Period = "custom"
		}
	}
	s.To = now.UTC().Truncate(time.Minute).Add(time.Minute)
	if t := v.Get("to"); t != "" {
		to, err := parseTime(t)
		if err != nil {
			return s, fmt.Errorf("to: %w", err)
		}
		s.To = to
	}
	if s.Period == "custom" {
		from, err := parseTime(v.Get("from"))
		if err != nil {
			return s, fmt.Errorf("from: %w", err)
		}
		s.From = from
	} else {
		found := false
		for _, p := range Periods {
			if p.Name == s.Period {
				s.From, found = s.To.Add(-p.Len), true
			}
		}
		if !found {
			return s, fmt.Errorf("period %q: want hour, day, week, month, year, all or custom", s.Period)
		}
	}
	if !s.From.Before(s.To) {
		return s, fmt.Errorf("period: from %s is not before to %s", s.From.Format(time.RFC3339), s.To.Format(time.RFC3339))
	}
	if s.Flow != "" && s.Class == "" {
		return s, fmt.Errorf("flow %q: select its class too", s.Flow)
	}
	if (s.HopFrom == "") != (s.HopTo == "") {
		return s, fmt.Errorf("hop pair: give both hop_from and hop_to")
	}
	// Rows start on the resolution's grid: whole minutes, hours or days.
	// A named period keeps its length: its end is rounded up, its start
	// follows (the lengths are whole days).
	length := s.To.Sub(s.From)
	step := s.Resolution().Step
	if r := s.To.Truncate(step); !r.Equal(s.To) {
		s.To = r.Add(step)
	}
	if s.Period == "custom" {
		s.From = s.From.Truncate(step)
	} else {
		s.From = s.To.Add(-length)
	}
	return s, nil
}

func parseTime(t string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if x, err := time.ParseInLocation(layout, t, time.UTC); err == nil {
			return x.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-12-01T10:00:00Z), 2026-12-01T10:00 or 2026-12-01, UTC", t)
}

// span is a range [from, to) read from one level's table.
type span struct {
	level    Level
	from, to int64
}

// cover splits [from, to) (both on the minute grid) into the fewest rows:
// whole days from the day tables, whole hours from the hour tables, the
// rest from the minute tables. Each coarser row is exactly the merge of its
// finer rows (docs/loader.md), so totals read this way equal the minute
// rows' totals, from far fewer rows.
func cover(from, to time.Time) []span {
	var out []span
	var rec func(a, b time.Time, li int)
	rec = func(a, b time.Time, li int) {
		if !a.Before(b) {
			return
		}
		if li < 0 {
			return
		}
		l := Levels[li]
		lo := a.Truncate(l.Step)
		if lo.Before(a) {
			lo = lo.Add(l.Step)
		}
		hi := b.Truncate(l.Step)
		if li == 0 || !lo.Before(hi) {
			if li == 0 {
				out = append(out, span{l, a.UnixNano(), b.UnixNano()})
				return
			}
			rec(a, b, li-1)
			return
		}
		rec(a, lo, li-1)
		out = append(out, span{l, lo.UnixNano(), hi.UnixNano()})
		rec(hi, b, li-1)
	}
	rec(from.UTC(), to.UTC(), len(Levels)-1)
	return out
}

// SelectValues reads the -select flag of tmon-report, KEY=VALUE pairs
// separated by commas (collector, class, flow, pair=FROM>TO, hop_from,
// hop_to), into URL parameters for Parse. A flow key holds spaces and '='
// but no comma.
func SelectValues(spec string) (url.Values, error) {
	v := url.Values{}
	if strings.TrimSpace(spec) == "" {
		return v, nil
	}
	for _, item := range strings.Split(spec, ",") {
		k, x, ok := strings.Cut(strings.TrimSpace(item), "=")
		switch k {
		case "collector", "class", "flow", "pair", "hop_from", "hop_to":
		default:
			ok = false
		}
		if !ok {
			return nil, fmt.Errorf("-select %q: %q is not KEY=VALUE with KEY collector, class, flow, pair (FROM>TO), hop_from or hop_to", spec, item)
		}
		v.Set(k, x)
	}
	return v, nil
}

// Selection reads a selection like Parse, and also period=all: from the
// first to the last minute that has rows (the whole data, as the demo and a
// report of an archive want).
func (d *DB) Selection(ctx context.Context, v url.Values, now time.Time) (Selection, error) {
	if v.Get("period") != "all" {
		return Parse(v, now)
	}
	var lo, hi sql.NullInt64
	if err := d.db.QueryRowContext(ctx, "SELECT MIN(start_ns), MAX(start_ns) FROM owd_stats_1m").Scan(&lo, &hi); err != nil {
		return Selection{}, fmt.Errorf("query: %w", err)
	}
	if !lo.Valid {
		return Selection{}, fmt.Errorf("period all: the database has no rows yet (load a spool with tmon-loader)")
	}
	w := url.Values{}
	for k, x := range v {
		w[k] = x
	}
	w.Set("period", "custom")
	w.Set("from", time.Unix(0, lo.Int64).UTC().Format(time.RFC3339))
	w.Set("to", time.Unix(0, hi.Int64).UTC().Add(time.Minute).Format(time.RFC3339))
	s, err := Parse(w, now)
	s.Period = "all"
	return s, err
}
