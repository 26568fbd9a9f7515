// Package prom is the metrics endpoint of package health, on the
// Prometheus client library: a daemon's main imports it for its side
// effect (it registers itself with health), so that the library is linked
// only into the daemons that serve metrics.
package prom

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

	"github.com/tmon-project/tmon/health"
)

func init() {
	health.Register(func(addr string, log *slog.Logger, fs ...health.Func) (health.Server, error) {
		return Serve(addr, log, fs...)
	})
}

// Server serves /metrics for one daemon.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Serve listens on addr (host:port) and serves the metrics of fs, plus
// the Go runtime's and the process's, at /metrics until Close.
func Serve(addr string, log *slog.Logger, fs ...health.Func) (*Server, error) {
	reg := prometheus.NewRegistry()
	all := []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	for _, f := range fs {
		all = append(all, collector(f))
	}
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

// collector is a health.Func as an unchecked prometheus.Collector (it
// describes no metric in advance).
type collector health.Func

// Describe implements prometheus.Collector: nothing, an unchecked collector.
func (collector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (f collector) Collect(ch chan<- prometheus.Metric) {
	f(health.NewEmit(func(k health.Kind, name, help string, v float64, labels []string) {
		t := prometheus.GaugeValue
		if k == health.Counter {
			t = prometheus.CounterValue
		}
		names := make([]string, 0, len(labels)/2)
		vals := make([]string, 0, len(labels)/2)
		for i := 0; i+1 < len(labels); i += 2 {
			names = append(names, labels[i])
			vals = append(vals, labels[i+1])
		}
		m, err := prometheus.NewConstMetric(prometheus.NewDesc(name, help, names, nil), t, v, vals...)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(prometheus.NewDesc(name, help, names, nil), err)
			return
		}
		ch <- m
	}))
}
