// Package health lets monitoring systems see a running daemon (probe,
// collector, loader): it serves the daemon's own counters as Prometheus
// metrics (text exposition format) over HTTP. It stands beside the data
// flow, not in it: nothing is counted twice, each scrape reads the counters
// the stages already keep (sieve, capture rings, transport, reconcile,
// spool) through a Collector the daemon's wiring package provides.
//
// Names follow the Prometheus conventions: tmon_<daemon>_<what>_<unit>,
// counters end in _total, times are in seconds (docs/operations.md lists
// them all).
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server serves /metrics for one daemon.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Serve listens on addr (host:port) and serves the metrics of cs, plus
// the Go runtime's and the process's, at /metrics until Close.
func Serve(addr string, log *slog.Logger, cs ...prometheus.Collector) (*Server, error) {
	reg := prometheus.NewRegistry()
	all := append([]prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}, cs...)
	for _, c := range all {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("health: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health: metrics endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogAdapter{log}, ErrorHandling: promhttp.ContinueOnError}))
	s := &Server{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health: metrics endpoint stopped", "err", err)
		}
	}()
	log.Info("metrics endpoint listening", "address", ln.Addr().String())
	return s, nil
}

// Addr is the address the endpoint listens on (with the port chosen when
// addr gave port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the endpoint; a scrape in progress gets a second to finish.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.log.Warn("health: " + fmt.Sprint(v...)) }

// Func is a prometheus.Collector whose metrics a function produces at each
// scrape from the daemon's own counters. It is unchecked (it describes no
// metric in advance): the set of labels (collectors, interfaces, probes)
// follows the configuration.
type Func func(e Emit)

// Describe implements prometheus.Collector: nothing, an unchecked collector.
func (Func) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (f Func) Collect(ch chan<- prometheus.Metric) { f(Emit{ch: ch}) }

// Emit sends the metrics of one scrape.
type Emit struct{ ch chan<- prometheus.Metric }

// Counter emits a counter; labels are name, value pairs.
func (e Emit) Counter(name, help string, v float64, labels ...string) {
	e.emit(prometheus.CounterValue, name, help, v, labels)
}

// Gauge emits a gauge; labels are name, value pairs.
func (e Emit) Gauge(name, help string, v float64, labels ...string) {
	e.emit(prometheus.GaugeValue, name, help, v, labels)
}

func (e Emit) emit(t prometheus.ValueType, name, help string, v float64, labels []string) {
	names := make([]string, 0, len(labels)/2)
	vals := make([]string, 0, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		names = append(names, labels[i])
		vals = append(vals, labels[i+1])
	}
	m, err := prometheus.NewConstMetric(prometheus.NewDesc(name, help, names, nil), t, v, vals...)
	if err != nil {
		e.ch <- prometheus.NewInvalidMetric(prometheus.NewDesc(name, help, names, nil), err)
		return
	}
	e.ch <- m
}
