// Package clock measures the probe's clock against NTP servers. It stands
// beside capture in the probe's data flow: a capture timestamp is only as
// good as the clock that made it, so the probe reports each measurement
// (offset, root distance, stratum) to the collectors in a clock PDU, and
// the collector attaches an error bound to every one-way figure between
// two probes and marks the figures of unsynchronised probes.
//
// The clock is measured, not set: disciplining it is the job of the host's
// NTP or PTP daemon.
package clock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/ntp"
	"github.com/tmon-project/tmon/pdu"
)

// Config configures the measurement.
type Config struct {
	// Servers are queried at each measurement ("host" or "host:port");
	// the answer with the smallest root distance wins.
	Servers []string
	// Period between two measurements; default 64s.
	Period time.Duration
	// Timeout of one query; default 2s.
	Timeout time.Duration
	// AssumeSynced skips measuring: every report says the clock is good
	// (flag Assumed), for probes sharing one kernel clock.
	AssumeSynced bool
	// Query replaces the NTP client in tests; nil: beevik/ntp.
	Query func(server string, timeout time.Duration) (*ntp.Response, error)
}

// ErrNoServer is returned by Measure when no server is configured.
var ErrNoServer = errors.New("clock: no NTP server configured")

// Measure queries every server once and returns the best valid answer as
// a clock record (Synced true), or an unsynchronised record (Synced false)
// and an error saying why no server gave a usable answer.
func Measure(cfg Config) (pdu.Clock, error) {
	now := time.Now().UnixNano()
	if cfg.AssumeSynced {
		return pdu.Clock{TS: now, Synced: true, Assumed: true}, nil
	}
	if len(cfg.Servers) == 0 {
		return pdu.Clock{TS: now}, ErrNoServer
	}
	q := cfg.Query
	if q == nil {
		q = query
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	var (
		best *ntp.Response
		from string
		errs []error
	)
	for _, s := range cfg.Servers {
		r, err := q(s, timeout)
		if err == nil {
			err = r.Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
			continue
		}
		if best == nil || r.RootDistance < best.RootDistance {
			best, from = r, s
		}
	}
	if best == nil {
		return pdu.Clock{TS: now}, fmt.Errorf("clock: no NTP server gave a usable answer: %w", errors.Join(errs...))
	}
	return pdu.Clock{
		TS:           now,
		Offset:       int64(best.ClockOffset),
		RootDistance: int64(best.RootDistance),
		Stratum:      best.Stratum,
		Synced:       true,
		Server:       from,
	}, nil
}

func query(server string, timeout time.Duration) (*ntp.Response, error) {
	return ntp.QueryWithOptions(server, ntp.QueryOptions{Timeout: timeout})
}

// Bound returns the error bound of a clock record in ns: |offset| + root
// distance; 0 for an assumed clock.
func Bound(c pdu.Clock) int64 {
	if c.Assumed {
		return 0
	}
	o := c.Offset
	if o < 0 {
		o = -o
	}
	return o + c.RootDistance
}

// Run measures at once and then every Period until ctx ends, handing each
// result to report (err non-nil: the record is unsynchronised, and why).
// report is called from Run's goroutine.
func Run(ctx context.Context, cfg Config, report func(pdu.Clock, error)) {
	period := cfg.Period
	if period <= 0 {
		period = 64 * time.Second
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		c, err := Measure(cfg)
		if ctx.Err() != nil {
			return
		}
		report(c, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
