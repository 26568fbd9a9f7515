package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tmon-project/tmon/reports/query"
)

//go:embed assets
var assets embed.FS

//go:embed templates/*.html
var templates embed.FS

// Pages are the pages of the UI, in menu order: path and title.
var Pages = []struct{ Path, Name string }{
	{"/", "Overview"},
	{"/pair", "Hop pair"},
	{"/path", "Path"},
	{"/events", "Events"},
	{"/probes", "Probes"},
	{"/packets", "Packets"},
}

// Server serves the report pages from a database. It only reads.
type Server struct {
	db   *query.DB
	now  func() time.Time
	log  *slog.Logger
	tmpl *template.Template
	mux  *http.ServeMux
}

// New returns a server on db; now is the clock of "last hour/day…"
// (time.Now when nil).
func New(db *query.DB, now func() time.Time, log *slog.Logger) *Server {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{db: db, now: now, log: log}
	s.tmpl = template.Must(template.New("").Funcs(funcs).ParseFS(templates, "templates/*.html"))
	s.mux = http.NewServeMux()
	sub, _ := fs.Sub(assets, "assets")
	s.mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(sub)))
	for _, p := range Pages {
		path := p.Path
		if path == "/" {
			path = "/{$}"
		}
		s.mux.HandleFunc("GET "+path, s.page(p.Path))
	}
	s.mux.HandleFunc("GET /report", s.page("/report"))
	s.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) page(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sel, err := s.db.Selection(r.Context(), r.URL.Query(), s.now())
		var buf bytes.Buffer
		if err == nil {
			err = s.Render(r.Context(), &buf, path, sel, r.URL.Query(), false)
		}
		if err != nil {
			s.log.Warn("page failed", "url", r.URL.String(), "err", err)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "tmon-report: %v\n", err)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
		s.log.Debug("page", "url", r.URL.String(), "elapsed", time.Since(start))
	}
}

// page is what every template gets.
type page struct {
	Path, Title string
	Sel         query.Selection
	Opt         query.Options
	Self        bool // self-contained: assets inline, links to sections
	Generated   time.Time
	DB          string
	Charts      map[string]template.JS
	Data        any
	Params      url.Values
	Periods     []string
	Menu        []struct{ Path, Name string }
	Extra       map[string]string // hidden fields of the selection form
}

// tableArgs is what the pair table template needs.
type tableArgs struct {
	*page
	ID    string
	Rows  []overviewRow
	Flows bool
}

// Render writes page path for sel. self: one self-contained document with
// the assets inlined (the HTML export and the PDF).
func (s *Server) Render(ctx context.Context, w io.Writer, path string, sel query.Selection, params url.Values, self bool) error {
	opt, err := s.db.Options(ctx, sel)
	if err != nil {
		return err
	}
	p := &page{Path: path, Sel: sel, Opt: opt, Self: self, Generated: s.now().UTC(), DB: s.db.Spec, Charts: map[string]template.JS{}, Params: params, Menu: Pages}
	for _, x := range query.Periods {
		p.Periods = append(p.Periods, x.Name)
	}
	p.Periods = append(p.Periods, "all", "custom")
	var name string
	switch path {
	case "/":
		name, p.Title, err = "overview", "Overview", s.overview(ctx, p)
	case "/pair":
		name, p.Title, err = "pair", "Hop pair", s.pair(ctx, p, "")
	case "/path":
		name, p.Title, err = "path", "Path", s.path(ctx, p)
	case "/events":
		name, p.Title, err = "events", "Events", s.events(ctx, p)
	case "/probes":
		name, p.Title, err = "probes", "Probes", s.probes(ctx, p)
	case "/packets":
		name, p.Title, err = "packets", "Per-packet delays", s.packets(ctx, p)
	case "/report":
		name, p.Title, err = "report", "tmon report", s.report(ctx, p)
	default:
		pp, ok := protoPages[path]
		if !ok {
			return fmt.Errorf("no page %s", path)
		}
		name, p.Title, err = pp.template, pp.title, pp.fill(s, ctx, p)
	}
	if err != nil {
		return err
	}
	return s.tmpl.ExecuteTemplate(w, name, p)
}

// chart adds a chart to the page and returns its id.
func (p *page) chart(c Chart) string {
	b, err := json.Marshal(c) // escapes <, >, &: safe inside <script>
	if err != nil {
		panic(err) // only numbers and strings
	}
	p.Charts[c.ID] = template.JS(b)
	return c.ID
}

type sectionArgs struct {
	*pairData
	Page *page
}

type evArgs struct {
	Page   *page
	Events []query.Event
}

// link is a URL of the UI for a selection.
func link(path string, sel query.Selection) string {
	return path + "?" + sel.Values().Encode()
}

var funcs = template.FuncMap{
	"link": link,
	"ms": func(ns int64) string {
		return fmt.Sprintf("%.3f", float64(ns)/1e6)
	},
	"q": func(q []query.Quantile, i int) string {
		if i >= len(q) {
			return "–"
		}
		return fmt.Sprintf("%.3f", float64(q[i].V)/1e6)
	},
	"qerr": func(q []query.Quantile, i int) string {
		if i >= len(q) {
			return ""
		}
		return fmt.Sprintf("±%.3f", float64(q[i].Err)/1e6)
	},
	"qv": func(q []query.Quantile, i int) int64 {
		if i >= len(q) {
			return -1
		}
		return q[i].V
	},
	"pct":  func(x float64) string { return fmt.Sprintf("%.3f", 100*x) },
	"utc":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"join": strings.Join,
	// Assets inlined in the self-contained document: the files hold no
	// "</script" or "</style".
	"assetjs":  func(name string) template.JS { return template.JS(asset(name)) },
	"assetcss": func(name string) template.CSS { return template.CSS(asset(name)) },
	"chartjs":  func(p *page, id string) template.JS { return p.Charts[id] },
	"set": func(sel query.Selection, kv ...string) query.Selection {
		for i := 0; i+1 < len(kv); i += 2 {
			sel = sel.With(kv[i], kv[i+1])
		}
		return sel
	},
	"pairsel": func(sel query.Selection, class, flow, from, to string) query.Selection {
		sel.Class, sel.Flow, sel.HopFrom, sel.HopTo = class, flow, from, to
		return sel
	},
	"eq": func(a, b string) bool { return a == b },
	"table": func(p *page, rows []overviewRow, id string) tableArgs {
		flows := false
		for _, r := range rows {
			flows = flows || r.Flow != ""
		}
		return tableArgs{page: p, ID: id, Rows: rows, Flows: flows}
	},
	"list": func(r any) []overviewRow {
		switch r := r.(type) {
		case overviewRow:
			return []overviewRow{r}
		case *overviewRow:
			if r != nil {
				return []overviewRow{*r}
			}
		}
		return nil
	},
	"section": func(p *page, d *pairData) sectionArgs { return sectionArgs{pairData: d, Page: p} },
	"evtable": func(p *page, evs []query.Event) evArgs { return evArgs{Page: p, Events: evs} },
	"extra": func(p *page, kv ...string) *page {
		q := *p
		q.Extra = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				q.Extra[kv[i]] = kv[i+1]
			}
		}
		return &q
	},
	"msf": func(ns float64) float64 { return ns / 1e6 },
	"add": func(a, b int) int { return a + b },
}

func asset(name string) string {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		panic(err) // embedded: a missing file is a build mistake
	}
	return string(b)
}
