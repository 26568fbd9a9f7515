package transport

import (
	"net/netip"
	"time"
)

// floodGuard bounds what invalid datagrams cost. Run's goroutine only.
//
// A source address (any port: rotating ports do not escape) that sent more
// than limit invalid datagrams in the current second is muted for the rest
// of it. Past budget invalid datagrams in the second from every source
// together (rotating addresses), only the trusted sources — address and
// port that sent a valid datagram within the last minute, the probes — are
// read. A trusted source is never muted: a forger spoofing a probe's
// address cannot silence it, only make the collector verify its forgeries
// (~1 µs each). Memory is bounded: at most maxFloodSources addresses are
// counted per second and maxFloodSources sources trusted.
type floodGuard struct {
	limit, budget int
	second        int64
	total         int
	counts        map[netip.Addr]int
	good          map[netip.AddrPort]int64 // trusted source → second of its latest valid datagram
}

const (
	maxFloodSources = 4096
	trustSeconds    = 60
)

func (g *floodGuard) muted(a netip.AddrPort, now time.Time) bool {
	if sec := now.Unix(); sec != g.second {
		g.second = sec
		g.total = 0
		clear(g.counts)
		for k, t := range g.good {
			if sec-t > trustSeconds {
				delete(g.good, k)
			}
		}
		return false
	}
	if _, ok := g.good[a]; ok {
		return false
	}
	return g.total > g.budget || g.counts[a.Addr()] > g.limit
}

func (g *floodGuard) count(a netip.AddrPort) {
	if !a.IsValid() {
		return
	}
	g.total++
	if n, ok := g.counts[a.Addr()]; ok || len(g.counts) < maxFloodSources {
		g.counts[a.Addr()] = n + 1
	}
}

func (g *floodGuard) trust(a netip.AddrPort) {
	if _, ok := g.good[a]; ok || len(g.good) < maxFloodSources {
		g.good[a] = g.second
	}
}
