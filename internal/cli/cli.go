// Package cli holds what every tmon command does the same way before its
// real work starts: logging setup and loading the shared configuration.
package cli

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/tmon-project/tmon/conf"
)

// Logger returns a text slog logger on stderr at the named level
// (debug, info, warn, error).
func Logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// LoadConfig loads and validates the configuration file, with a message
// that says which flag to set when none was given.
func LoadConfig(path string) (*conf.Config, error) {
	if path == "" {
		return nil, fmt.Errorf("no configuration: give -config FILE (see examples/demo.xml)")
	}
	return conf.Load(path)
}

// List is a flag.Value collecting repeated or comma-separated values.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

// Set adds the comma-separated values of s.
func (l *List) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// Daemon binds the flags every tmon daemon takes (-config, -name,
// -log-level) and does what follows Parse the same way for each.
type Daemon struct {
	prog   string
	role   string
	config *string
	name   *string
	level  *string
}

// NewDaemon registers the common flags on the default flag set; role is
// what -name names ("probe", "collector").
func NewDaemon(prog, role string) *Daemon {
	return &Daemon{
		prog:   prog,
		role:   role,
		config: flag.String("config", "", "shared XML configuration `file` (required)"),
		name:   flag.String("name", "", "this "+role+"'s name in the configuration (required)"),
		level:  flag.String("log-level", "", "log level: debug, info, warn, error (default: the logLevel of this "+role+" in the configuration, else "+conf.DefaultLogLevel+")"),
	}
}

// Name is the -name given.
func (d *Daemon) Name() string { return *d.name }

// Setup runs after flag.Parse: it checks -name, loads the configuration
// and makes the logger at the level -log-level gives, else the one the
// configuration gives this daemon; it exits with a message on any error.
func (d *Daemon) Setup() (*conf.Config, *slog.Logger) {
	if *d.level != "" {
		if _, err := Logger(*d.level); err != nil {
			d.Fail(err)
		}
	}
	if *d.name == "" {
		flag.Usage()
		d.Fail(fmt.Errorf("-name is required"))
	}
	cfg, err := LoadConfig(*d.config)
	if err != nil {
		d.Fail(err)
	}
	level := *d.level
	if level == "" {
		level = d.Ops(cfg).LogLevel
	}
	if level == "" {
		level = conf.DefaultLogLevel
	}
	log, err := Logger(level)
	if err != nil {
		d.Fail(err)
	}
	return cfg, log
}

// Ops returns the operational settings the configuration gives this
// daemon (zero when -name names none of its role: the daemon's own run
// reports that).
func (d *Daemon) Ops(cfg *conf.Config) conf.Ops {
	switch d.role {
	case "probe":
		if i, ok := cfg.ProbeByName(*d.name); ok {
			return cfg.Probes[i].Ops
		}
	case "collector":
		if i, ok := cfg.CollectorByName(*d.name); ok {
			return cfg.Collectors[i].Ops
		}
	}
	return conf.Ops{}
}

// Fail prints err prefixed with the program's name and exits with status 1.
func (d *Daemon) Fail(err error) {
	fmt.Fprintln(os.Stderr, d.prog+":", err)
	os.Exit(1)
}
