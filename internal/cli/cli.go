// Package cli holds what every tmon command does the same way before its
// real work starts: logging setup and loading the shared configuration.
package cli

import (
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
