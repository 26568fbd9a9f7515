// Command tmon-loader loads the collectors' spool files into the database
// (MySQL/MariaDB, or an embedded SQLite file by default), once or as a daemon.
// See docs/loader.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/health"
	"github.com/tmon-project/tmon/loader"

	_ "github.com/tmon-project/tmon/health/prom" // the metrics endpoint
)

const usage = `tmon-loader loads tmon spool files (docs/spool.md) into a database.

Usage:
  tmon-loader -spool DIR [-spool DIR ...] [-db sqlite:PATH | -db mysql:DSN] [options]
  tmon-loader -config tmon.xml [-collector NAME ...] [-db ...] [options]
  tmon-loader -reload DIR [-db ...]

The spools to load are the -spool directories, or else those of the
configuration's collectors (-config: every <collector name spool>, the
collector's name and spool directory as the collector itself uses them,
a relative spool path taken from the working directory, as the collector
does; -collector keeps only the named ones).

Every complete spool file (<spool>/<type>/<type>-<start>.tsv) is loaded exactly
once: its rows and its name, size and sha256 (table loaded_files) are committed
together, then the file is gzipped into <spool>/archive/<YYYYMMDD>/<type>/.
A crash or kill at any moment followed by a rerun gives the same tables as a
clean run. One-way delay statistics and histograms are aggregated at 1 minute,
1 hour and 1 day (an interval longer than a minute counts in the minute of its
start); events and per-packet records are loaded row by row; malformed lines
are logged with file and line and kept in table bad_lines, the rest of the file
is loaded.

Only one loader works on a database at a time (SQLite: flock on PATH.lock;
MySQL: GET_LOCK). Another one exits with status 3, or waits with -wait.
If the database is away, nothing is lost: files stay in the spool and a later
run (or the next daemon cycle) loads them.

Options:
`

const examples = `
Examples:
  tmon-loader -spool spool/c1                           # once, into ./tmon.db
  tmon-loader -spool spool/c1 -every 5m -retention 1m=7d,1h=90d,1d=5y,rec=30d
  tmon-loader -spool c1=/var/spool/tmon -db 'mysql:tmon_load:PW@tcp(db:3306)/tmon'
  tmon-loader -config /etc/tmon/tmon.xml -every 5m     # every collector of the configuration
  tmon-loader -reload spool/c1/archive -db sqlite:rebuilt.db

Exit status: 0 done, 1 error (nothing lost; run again), 2 bad usage,
3 another loader holds the database lock.
`

// listFlag collects a repeatable, comma-separable flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// spoolsFromConfig returns the spool of every collector of the configuration
// file, or of the named ones only.
func spoolsFromConfig(path string, only []string) ([]loader.Spool, error) {
	cfg, err := conf.Load(path)
	if err != nil {
		return nil, err
	}
	var out []loader.Spool
	found := map[string]bool{}
	for _, c := range cfg.Collectors {
		if len(only) > 0 && !slices.Contains(only, c.Name) {
			continue
		}
		found[c.Name] = true
		out = append(out, loader.Spool{Collector: c.Name, Dir: c.Spool})
	}
	for _, n := range only {
		if !found[n] {
			return nil, fmt.Errorf("%s: no <collector name=%q>", path, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no <collector>", path)
	}
	return out, nil
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("tmon-loader", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), examples)
	}
	var spools, reloads listFlag
	fs.Var(&spools, "spool", "spool directory `[NAME=]DIR` of a collector; repeatable or comma list. NAME (the collector, which flow ids are per) defaults to the directory's base name")
	fs.Var(&reloads, "reload", "load the archived files (*.tsv.gz) under `[NAME=]DIR` again, e.g. into an empty database; NAME defaults to the base name, or the parent's for .../NAME/archive. Files are not moved")
	config := fs.String("config", "", "configuration `file` (tmon check): without -spool, load the spool of each of its <collector>s, named as they are")
	var only listFlag
	fs.Var(&only, "collector", "with -config, only the collector `NAME`; repeatable or comma list")
	db := fs.String("db", loader.DefaultDB, "database: sqlite:PATH, or mysql:USER:PASS@tcp(HOST:PORT)/DB (go-sql-driver/mysql DSN)")
	every := fs.Duration("every", 0, "run as a daemon, loading every `period` (e.g. 5m); 0 loads once and exits (cron)")
	wait := fs.Duration("wait", 0, "when another loader holds the database lock, wait up to `duration` for it; 0 exits at once with status 3")
	retention := fs.String("retention", "", "remove rows older than an age per table class, `CLASS=AGE,...` with classes 1m, 1h, 1d (aggregates) and rec (events, per-packet records), ages like 36h, 7d, 2w, 5y; e.g. 1m=7d,1h=90d,1d=5y,rec=30d. MySQL drops whole day partitions; SQLite deletes. Default: keep everything")
	perPacket := fs.Bool("per-packet", true, "load per-packet one-way records (owd_packet, owd_incomplete); with false their files are archived without loading")
	batchFiles := fs.Int("batch-files", 500, "at most this many files per transaction")
	batchRows := fs.Int("batch-rows", 100000, "at most about this many spool rows per transaction")
	verbose := fs.Bool("v", false, "debug logging")
	metrics := fs.String("metrics", "", "serve Prometheus metrics (docs/operations.md) at http://`host:port`/metrics, e.g. 127.0.0.1:9466 (useful with -every)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tmon-loader: unexpected argument %q (see -h)\n", fs.Arg(0))
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := loader.Config{
		DB: *db, Every: *every, LockWait: *wait, PerPacket: *perPacket,
		BatchFiles: *batchFiles, BatchRows: *batchRows, Logger: log,
	}
	var err error
	if cfg.Retention, err = loader.ParseRetention(*retention); err != nil {
		fmt.Fprintf(stderr, "tmon-loader: %v\n", err)
		return 2
	}
	for _, s := range spools {
		sp, err := loader.ParseSpool(s)
		if err != nil {
			fmt.Fprintf(stderr, "tmon-loader: %v\n", err)
			return 2
		}
		cfg.Spools = append(cfg.Spools, sp)
	}
	for _, s := range reloads {
		sp, err := loader.ParseSpool(s)
		if err != nil {
			fmt.Fprintf(stderr, "tmon-loader: %v\n", err)
			return 2
		}
		cfg.Reload = append(cfg.Reload, sp)
	}
	if len(only) > 0 && *config == "" {
		fmt.Fprintln(stderr, "tmon-loader: -collector needs -config (see -h)")
		return 2
	}
	if *config != "" && len(spools) == 0 {
		if cfg.Spools, err = spoolsFromConfig(*config, only); err != nil {
			fmt.Fprintf(stderr, "tmon-loader: %v\n", err)
			return 2
		}
	}
	if len(cfg.Spools)+len(cfg.Reload) == 0 {
		fmt.Fprintln(stderr, "tmon-loader: no -spool, -config or -reload (see -h)")
		return 2
	}

	l, err := loader.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tmon-loader: %v\n", err)
		return 2
	}
	defer l.Close()
	if *metrics != "" {
		hs, err := health.Serve(*metrics, log, l.Metrics())
		if err != nil {
			fmt.Fprintf(stderr, "tmon-loader: %v\n", err)
			return 2
		}
		defer hs.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	err = l.Run(ctx)
	switch {
	case errors.Is(err, loader.ErrLocked):
		log.Error("not loading: another tmon-loader is working on this database (use -wait to wait for it)", "err", err)
		return 3
	case err != nil:
		log.Error("load failed; files not loaded stay in the spool, run again", "err", err, "after", time.Since(start).Round(time.Millisecond))
		return 1
	}
	return 0
}
