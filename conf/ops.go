package conf

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Ops are the operational settings of one daemon (a probe or a collector):
// where it serves its health metrics and how much it logs. They change
// nothing in what is measured.
type Ops struct {
	// Metrics is the host:port of the daemon's Prometheus endpoint
	// (<metrics listen>); empty: no endpoint. <metrics/> without listen
	// means DefaultMetricsListen.
	Metrics string
	// LogLevel is debug, info, warn or error (logLevel attribute); default
	// DefaultLogLevel, which empty (a Config built in code) also means. A
	// -log-level flag given on the command line wins.
	LogLevel    string
	MetricsLine int // line of the <metrics> element; 0 when absent
}

// LogLevels are the values of a logLevel attribute.
var LogLevels = []string{"debug", "info", "warn", "error"}

// metrics reads a <metrics listen/> child into o.
func (p *parser) metrics(n *node, o *Ops) {
	a := p.attrs(n, "listen")
	o.MetricsLine = n.line
	o.Metrics = DefaultMetricsListen
	if v, ok := a.vals["listen"]; ok {
		o.Metrics = v
	}
	p.noKids(n)
}

// opsKV returns the attributes of o for the component's start tag.
func opsKV(o Ops) []string {
	if o.LogLevel == "" {
		o.LogLevel = DefaultLogLevel
	}
	return []string{"logLevel", o.LogLevel}
}

// writeMetrics writes the <metrics> child of a component, if any.
func (e *encoder) metrics(depth int, o Ops) {
	if o.Metrics != "" {
		e.open(depth, "metrics", true, "listen", o.Metrics)
	}
}

// ops checks the operational settings of the component in element e.
func (v *validator) ops(line int, e string, o Ops) {
	if !validLogLevel(o.LogLevel) {
		v.addf(line, e, "logLevel=%q: want one of %s", o.LogLevel, strings.Join(LogLevels, ", "))
	}
	if o.Metrics != "" {
		if err := checkListen(o.Metrics); err != nil {
			l := o.MetricsLine
			if l == 0 {
				l = line
			}
			v.addf(l, elem("metrics"), "listen=%q: %v", o.Metrics, err)
		}
	}
}

func validLogLevel(s string) bool {
	if s == "" {
		return true
	}
	for _, l := range LogLevels {
		if s == l {
			return true
		}
	}
	return false
}

// checkListen accepts host:port with a port 1-65535 (the host may be empty
// for every address, a name, or an IP).
func checkListen(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port, e.g. 127.0.0.1:9464")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("port %q: want 1-65535", port)
	}
	return nil
}
