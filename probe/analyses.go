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
	an := cfg.Analyses.Resolved()
	return []analyse.Analysis{
		counters.New(cfg.Interval, an.CountersMaxEntries, out),
		rtt.New(rtt.Config{Interval: cfg.Interval, Timeout: an.RTTTimeout, MaxPending: an.RTTMaxPending}, out),
		tcpconn.New(tcpconn.Config{Interval: cfg.Interval, Idle: an.TCPIdle, CloseDelay: an.TCPCloseDelay, MaxConns: an.TCPMaxConns}, out),
		ftp.New(ftp.Config{Interval: cfg.Interval, Idle: an.FTPIdle, MaxSessions: an.FTPMaxSessions}, out),
	}
}
