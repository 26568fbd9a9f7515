// Command tmon-report shows the figures the loader put in the database: it
// serves the report pages over HTTP, or writes the report as one
// self-contained HTML file or as a paginated PDF (printed by a headless
// chromium). It only reads. See README "Reports".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tmon-project/tmon/internal/cli"
	"github.com/tmon-project/tmon/reports/export"
	"github.com/tmon-project/tmon/reports/query"
	"github.com/tmon-project/tmon/reports/web"
)

const usage = `tmon-report shows tmon's measurements from the loader's database.

Usage:
  tmon-report [-db sqlite:tmon.db | -db mysql:DSN] [-listen 127.0.0.1:8090]   # serve the pages
  tmon-report -html report.html [-period day | -from … -to …] [-select …]
  tmon-report -pdf report.pdf   [-period day | -from … -to …] [-select …]

The database is opened read-only: SQLite in read-only mode, MySQL/MariaDB
through the read-only account (docs/loader.md "Database accounts").
Periods are UTC. -select narrows the report: collector=c1,class=site,pair=A>B
(without a collector, every figure is counted once across redundant
collectors, docs/loader.md "Redundant collectors").

Options:
`

func main() {
	fs := flag.NewFlagSet("tmon-report", flag.ContinueOnError)
	db := fs.String("db", query.DefaultDB, "database: sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB (read-only account)")
	listen := fs.String("listen", "127.0.0.1:8090", "address of the web UI")
	htmlOut := fs.String("html", "", "write the report as one self-contained HTML `file` and exit")
	pdfOut := fs.String("pdf", "", "write the report as a PDF `file` (headless chromium) and exit")
	period := fs.String("period", "", "hour, day, week, month, year (ending at -to, default now), all (the whole data) or custom (-from, -to); default day")
	from := fs.String("from", "", "start, UTC: 2026-12-01, 2026-12-01T10:00 or RFC 3339")
	to := fs.String("to", "", "end, UTC (default now)")
	sel := fs.String("select", "", "collector=NAME,class=NAME,flow=KEY,pair=FROM>TO (each optional)")
	browser := fs.String("chromium", "", "chromium binary for -pdf (default: chromium, chromium-browser or google-chrome on PATH)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "tmon-report: unexpected argument %q\n", fs.Arg(0))
		os.Exit(2)
	}
	log, err := cli.Logger(*level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tmon-report:", err)
		os.Exit(2)
	}
	v, err := query.SelectValues(*sel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tmon-report:", err)
		os.Exit(2)
	}
	for k, x := range map[string]string{"period": *period, "from": *from, "to": *to} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if _, err := query.Parse(v, time.Now()); err != nil && v.Get("period") != "all" {
		fmt.Fprintln(os.Stderr, "tmon-report:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := query.Open(*db)
	if err == nil {
		err = d.Ping(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tmon-report:", err)
		os.Exit(1)
	}
	defer d.Close()
	s, err := d.Selection(ctx, v, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "tmon-report:", err)
		os.Exit(1)
	}
	srv := web.New(d, nil, log)
	switch {
	case *htmlOut != "" || *pdfOut != "":
		if *htmlOut != "" {
			if err := export.WriteHTML(ctx, srv, s, *htmlOut); err != nil {
				fmt.Fprintln(os.Stderr, "tmon-report:", err)
				os.Exit(1)
			}
			log.Info("report written", "file", *htmlOut, "period", s.Label())
		}
		if *pdfOut != "" {
			b, err := export.Chromium(*browser)
			if err == nil {
				err = export.PDF(ctx, srv, s, b, *pdfOut)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "tmon-report:", err)
				os.Exit(1)
			}
			log.Info("report written", "file", *pdfOut, "period", s.Label())
		}
		return
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tmon-report:", err)
		os.Exit(1)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	log.Info("serving the report", "url", "http://"+ln.Addr().String()+"/", "db", d.Spec)
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "tmon-report:", err)
		os.Exit(1)
	}
}
