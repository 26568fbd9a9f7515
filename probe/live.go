package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/tmon-project/tmon/capture"
	"github.com/tmon-project/tmon/clock"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
)

// input is one sieve goroutine's source: a capture file set, one live
// socket, or the merged two ports of a tap, with the core it is pinned to.
type input struct {
	src  capture.Source
	core int
	name string // for messages
}

// openLive opens the live capture of every interface of probe p: per
// interface Fanout sockets in one PACKET_FANOUT group (each read by its own
// sieve goroutine), each merged with a socket of the tap's other port when
// the interface has a Pair. It turns offloads off first and reports what it
// did through notes (events for the collector) and the log.
func openLive(cfg *conf.Config, p *conf.Probe, log *slog.Logger, ev func(kind, detail string)) (ins []input, socks []*capture.LiveSource, err error) {
	cc := cfg.Capture.Resolved()
	defer func() {
		if err != nil {
			for _, s := range socks {
				s.Close()
			}
			ins, socks = nil, nil
		}
	}()
	excl := make([]netip.AddrPort, len(cfg.Collectors))
	for i, c := range cfg.Collectors {
		excl[i] = c.Address
	}
	prog, err := capture.PreFilter(excl, 0)
	if err != nil {
		return nil, nil, err
	}
	filter, err := capture.AssembleFilter(prog)
	if err != nil {
		return nil, nil, err
	}
	if len(p.Interfaces) > 256 {
		return nil, nil, fmt.Errorf("%d interfaces: at most 256", len(p.Interfaces))
	}
	for i, in := range p.Interfaces {
		ports := []string{in.Name}
		if in.Pair != "" {
			ports = append(ports, in.Pair)
		}
		if cc.Offload {
			for _, name := range ports {
				r := capture.DisableOffloads(name)
				if r.OK() {
					log.Info("capture: "+r.String(), "iface", name)
				} else {
					log.Warn("capture: "+r.String(), "iface", name)
					ev("capture.offload", r.String())
				}
			}
		}
		n := max(in.Fanout, 1)
		poll := cc.Poll
		if in.Pair != "" {
			// A merge waits on the quiet port while it holds the other
			// port's packet: keep that wait short.
			poll = min(poll, max(cc.Retire, 5*time.Millisecond))
		}
		for k := range n {
			var pair [2]*capture.LiveSource
			for j, name := range ports {
				s, err := capture.OpenLive(capture.LiveConfig{
					Iface: name, Index: uint8(i),
					BlockSize: cc.BlockSize, Blocks: cc.Blocks, Retire: cc.Retire, Poll: poll,
					Filter: filter, Fanout: n > 1, FanoutGroup: fanoutGroup(i, j),
					Timestamps: cc.Timestamps, Logger: log,
				})
				if err != nil {
					return nil, nil, err
				}
				socks = append(socks, s)
				pair[j] = s
				if k == 0 {
					d := fmt.Sprintf("%s: %s timestamps", name, s.TimestampSource())
					if why := s.TimestampFallback(); why != nil {
						d += fmt.Sprintf(" (no hardware stamps: %v)", why)
					}
					d += "; software stamps by " + s.Stamping()
					log.Info("capture: "+d, "iface", name, "fanout", n, "stamping", s.Stamping())
					ev("capture.timestamps", d)
				}
			}
			var src capture.Source = pair[0]
			name := in.Name
			if pair[1] != nil {
				src = capture.NewMerge(pair[0], pair[1], cc.Reorder)
				name += "+" + in.Pair
			}
			core := -1
			if len(in.Cores) > k {
				core = in.Cores[k]
			}
			ins = append(ins, input{src: src, core: core, name: fmt.Sprintf("%s#%d", name, k)})
		}
	}
	if len(ins) == 1 && ins[0].core < 0 {
		ins[0].core = p.Core // one sieve: the probe's core, as for replay
	}
	return ins, socks, nil
}

// fanoutGroup is the PACKET_FANOUT group id of port j of interface i: ids
// are shared by every socket of the network namespace, so the process id
// keeps two probes apart.
func fanoutGroup(i, j int) uint16 {
	return uint16(os.Getpid()<<7) ^ uint16(i<<1|j)
}

// watchDrops reads the kernel ring counters of every socket each second
// until ctx ends and reports drop episodes as events.
func watchDrops(ctx context.Context, socks []*capture.LiveSource, log *slog.Logger, ev func(kind, detail string)) {
	mons := make([]capture.DropMonitor, len(socks))
	for i, s := range socks {
		mons[i].Iface = s.Iface()
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i, s := range socks {
			st, err := s.Stats()
			if err != nil {
				if !errors.Is(err, capture.ErrClosed) {
					log.Warn("capture: reading ring statistics", "err", err)
				}
				continue
			}
			if kind, detail, ok := mons[i].Update(st); ok {
				log.Warn("capture: "+detail, "kind", kind)
				ev(kind, detail)
			}
		}
	}
}

// notes carries events from the probe's helper goroutines (drop watch,
// clock) to the analyser goroutine, the only one that may touch the PDU
// builders. A full queue drops the event with a log line rather than
// stalling a helper.
type notes struct {
	ch     chan pdu.Event
	clocks chan pdu.Clock
	cb     *pdu.Builder // clock PDUs; analyser goroutine only
	log    *slog.Logger
}

func newNotes(log *slog.Logger, maxPDU int) *notes {
	return &notes{ch: make(chan pdu.Event, 256), clocks: make(chan pdu.Clock, 16), cb: pdu.NewBuilder(maxPDU), log: log}
}

func (n *notes) clock(c pdu.Clock) {
	select {
	case n.clocks <- c:
	default:
		n.log.Warn("probe: clock queue full; measurement not sent")
	}
}

func (n *notes) event(kind, detail string) {
	select {
	case n.ch <- pdu.Event{TS: time.Now().UnixNano(), Kind: kind, Detail: detail}:
	default:
		n.log.Warn("probe: event queue full; event not sent", "kind", kind, "detail", detail)
	}
}

// drain moves queued events and clock records into the output; analyser
// goroutine only. A clock record leaves at once in a PDU of its own: it is
// rare, and the collector should know the clock state before it writes the
// figures it qualifies.
func (n *notes) drain(out *output) {
	for {
		select {
		case e := <-n.ch:
			out.event(e.TS, e.Kind, e.Detail)
		case c := <-n.clocks:
			n.cb.Reset()
			n.cb.AddClock(c)
			out.send(n.cb, pdu.TypeClock, out.clock.Load())
		default:
			return
		}
	}
}

// watchClock measures the probe's clock (package clock) until ctx ends,
// sends every measurement to the collectors and turns changes of state
// (synchronised, within the budget) into events and log lines.
func watchClock(ctx context.Context, cc conf.Clock, log *slog.Logger, nt *notes, g *gauges) {
	cc = cc.Resolved()
	state := ""
	clock.Run(ctx, clock.Config{Servers: cc.Servers, Period: cc.Period, AssumeSynced: cc.AssumeSynced}, func(c pdu.Clock, err error) {
		nt.clock(c)
		g.clk.Store(&c)
		g.clkErr.Store(err != nil)
		var kind, detail string
		switch {
		case c.Assumed:
			kind, detail = "clock.assumed", "clock not measured: the configuration says assumeSynced (probes share one kernel clock)"
		case err != nil:
			kind, detail = "clock.unsync", fmt.Sprintf("clock unsynchronised, one-way figures of this probe are marked: %v", err)
		case time.Duration(clock.Bound(c)) > cc.Budget:
			kind, detail = "clock.budget", fmt.Sprintf("clock error bound %v (offset %v, root distance %v, %s stratum %d) exceeds the budget %v",
				time.Duration(clock.Bound(c)), time.Duration(c.Offset), time.Duration(c.RootDistance), c.Server, c.Stratum, cc.Budget)
		default:
			kind, detail = "clock.sync", fmt.Sprintf("clock synchronised: offset %v, root distance %v (%s, stratum %d)",
				time.Duration(c.Offset), time.Duration(c.RootDistance), c.Server, c.Stratum)
		}
		log.Debug("clock measured", "offset", time.Duration(c.Offset), "root_distance", time.Duration(c.RootDistance), "stratum", c.Stratum, "server", c.Server, "err", err)
		if kind == state {
			return
		}
		state = kind
		if kind == "clock.sync" || kind == "clock.assumed" {
			log.Info(detail)
		} else {
			log.Warn(detail)
		}
		nt.event(kind, detail)
	})
}
