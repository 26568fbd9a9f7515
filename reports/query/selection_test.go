package query

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// cover tiles [from, to) exactly, with whole days and hours from the
// coarser tables.
func TestCover(t *testing.T) {
	d := func(s string) time.Time {
		x, err := time.Parse("2006-01-02T15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, c := range []struct {
		from, to string
		want     string // level:from-to … (hours since the from day's midnight, minutes where needed)
	}{
		{"2026-06-01T10:17", "2026-06-03T05:02", "1m 10:17-11:00,1h 11:00-00:00,1d 00:00-00:00,1h 00:00-05:00,1m 05:00-05:02"},
		{"2026-06-01T10:17", "2026-06-01T10:40", "1m 10:17-10:40"},
		{"2026-06-01T00:00", "2026-06-02T00:00", "1d 00:00-00:00"},
		{"2026-06-01T10:00", "2026-06-01T13:00", "1h 10:00-13:00"},
	} {
		var got []string
		var at time.Time
		for i, sp := range cover(d(c.from), d(c.to)) {
			a, b := time.Unix(0, sp.from).UTC(), time.Unix(0, sp.to).UTC()
			if i > 0 && !a.Equal(at) {
				t.Errorf("%s–%s: gap or overlap at %v", c.from, c.to, a)
			}
			at = b
			got = append(got, sp.level.Suffix+" "+a.Format("15:04")+"-"+b.Format("15:04"))
		}
		if g := join(got); g != c.want {
			t.Errorf("%s–%s: %s, want %s", c.from, c.to, g, c.want)
		}
		if !at.Equal(d(c.to)) {
			t.Errorf("%s–%s: ends at %v", c.from, c.to, at)
		}
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// A selection survives its URL, and the resolution follows the period.
func TestSelectionURL(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 31, 20, 0, time.UTC)
	for _, c := range []struct {
		q   string
		res string
	}{
		{"period=hour", "1m"},
		{"period=day&class=site&pair=A%3EB", "1m"},
		{"period=week&collector=c2", "1h"},
		{"period=month", "1h"},
		{"period=year&class=site&flow=ip.src%3D10.1.0.1", "1d"},
		{"period=custom&from=2026-06-01&to=2026-06-01T12:30", "1m"},
	} {
		v, _ := parseQuery(c.q)
		s, err := Parse(v, now)
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		if s.Resolution().Suffix != c.res {
			t.Errorf("%s: resolution %s, want %s", c.q, s.Resolution().Suffix, c.res)
		}
		// The period as shown on every page: in UTC, said so.
		if want := s.From.UTC().Format("2006-01-02 15:04") + " – " + s.To.UTC().Format("2006-01-02 15:04") + " UTC"; !strings.HasPrefix(s.Label(), want) {
			t.Errorf("%s: label %q, want it to start %q", c.q, s.Label(), want)
		}
		back, err := Parse(s.Values(), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if back != s {
			t.Errorf("%s: %+v came back from its URL as %+v", c.q, s, back)
		}
	}
	for _, bad := range []string{"period=fortnight", "period=custom&from=2026-06-02&to=2026-06-01", "flow=x", "hop_from=A"} {
		v, _ := parseQuery(bad)
		if _, err := Parse(v, now); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func parseQuery(q string) (map[string][]string, error) {
	v, err := url.ParseQuery(q)
	return v, err
}
