// Package health lets monitoring systems see a running daemon (probe,
// collector, loader): it serves the daemon's own counters as Prometheus
// metrics (text exposition format) over HTTP. It stands beside the data
// flow, not in it: nothing is counted twice, each scrape reads the counters
// the stages already keep (sieve, capture rings, transport, reconcile,
// spool) through a Func the daemon's wiring package provides.
//
// Names follow the Prometheus conventions: tmon_<daemon>_<what>_<unit>,
// counters end in _total, times are in seconds (docs/operations.md lists
// them all).
//
// This package holds what the stages use (Func, Emit) and does not import
// the Prometheus client: the endpoint itself is in health/prom, which a
// daemon's main links in (a blank import, as an SQL driver). So that the
// packages a short-lived command shares with the daemons (tmon owd runs
// the collector's code) do not carry the client's and protobuf's package
// initialisation, about 4 ms of CPU at each start of a process (tmon -h 18 → 14 ms).
package health

import (
	"errors"
	"log/slog"
	"net"
)

// Func produces a daemon's metrics at each scrape from its own counters.
// It declares no metric in advance: the set of labels (collectors,
// interfaces, probes) follows the configuration.
type Func func(e Emit)

// Kind is a metric's type.
type Kind int

// The kinds of metrics a Func emits.
const (
	Counter Kind = iota
	Gauge
)

// Emit sends the metrics of one scrape to the endpoint.
type Emit struct {
	sink func(k Kind, name, help string, v float64, labels []string)
}

// NewEmit returns an Emit that hands each metric to sink; for the endpoint.
func NewEmit(sink func(k Kind, name, help string, v float64, labels []string)) Emit {
	return Emit{sink: sink}
}

// Counter emits a counter; labels are name, value pairs.
func (e Emit) Counter(name, help string, v float64, labels ...string) {
	e.sink(Counter, name, help, v, labels)
}

// Gauge emits a gauge; labels are name, value pairs.
func (e Emit) Gauge(name, help string, v float64, labels ...string) {
	e.sink(Gauge, name, help, v, labels)
}

// Server is a running metrics endpoint.
type Server interface {
	// Addr is the address the endpoint listens on (with the port chosen
	// when addr gave port 0).
	Addr() net.Addr
	// Close stops the endpoint.
	Close() error
}

// ServeFunc starts an endpoint serving fs at /metrics on addr.
type ServeFunc func(addr string, log *slog.Logger, fs ...Func) (Server, error)

var serve ServeFunc

// Register makes f the endpoint Serve starts; health/prom registers itself
// when a daemon's main imports it.
func Register(f ServeFunc) { serve = f }

// ErrNoEndpoint is Serve's error in a program that links no endpoint.
var ErrNoEndpoint = errors.New("health: this program has no metrics endpoint linked in (its main must import tmon/health/prom)")

// Serve listens on addr (host:port) and serves the metrics of fs, plus
// the Go runtime's and the process's, at /metrics until Close.
func Serve(addr string, log *slog.Logger, fs ...Func) (Server, error) {
	if serve == nil {
		return nil, ErrNoEndpoint
	}
	return serve(addr, log, fs...)
}
