package probe

import (
	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/analyse/counters"
	"github.com/tmon-project/tmon/analyse/ftp"
	"github.com/tmon-project/tmon/analyse/rtt"
	"github.com/tmon-project/tmon/analyse/tcpconn"
	"github.com/tmon-project/tmon/conf"
)

// analyses builds the protocol analyses the analyser dispatches to, each
// sending its records through out. Adding an analysis is adding it here
// (and its record type to out).
func analyses(cfg *conf.Config, out *output) []analyse.Analysis {
	return []analyse.Analysis{
		counters.New(cfg.Interval, 0, out),
		rtt.New(rtt.Config{Interval: cfg.Interval}, out),
		tcpconn.New(tcpconn.Config{Interval: cfg.Interval}, out),
		ftp.New(ftp.Config{Interval: cfg.Interval}, out),
	}
}
