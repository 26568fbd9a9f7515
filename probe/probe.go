// Package probe wires one probe process together, in data-flow order:
// capture source → sieve (own pinned goroutine) → ring → analyser → PDU
// builders → transport to every collector. It owns no mechanism of its own;
// each stage lives in its package. cmd/tmon-probe parses flags and calls Run.
package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/capture"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/reassembly"
	"github.com/tmon-project/tmon/ring"
	"github.com/tmon-project/tmon/rollout"
	"github.com/tmon-project/tmon/sieve"
	"github.com/tmon-project/tmon/transport"
)

// Options configure a probe run.
type Options struct {
	Config *conf.Config
	Name   string // the probe's name in the configuration
	// Live captures on the probe's configured interfaces (AF_PACKET) until
	// ctx is cancelled; Files must then be empty.
	Live bool
	// Files are capture files to replay, one per configured interface, in
	// the configuration's interface order.
	Files []string
	// Speed paces the replay: 0 as fast as possible, 1 original timing.
	Speed float64
	// RingSize is the sieve→analyser ring capacity (power of two); default 65536.
	RingSize int
	// DrainTimeout bounds the wait for the collectors' acks at the end; default 30s.
	DrainTimeout time.Duration
	Logger       *slog.Logger
	// Ready, when set, is closed once the sieve goroutines run: from then
	// on live packets are captured (the lab tests start traffic on it).
	Ready chan<- struct{}
	// WatchConfig follows new versions of the configuration file
	// (package rollout): validated, reported, held.
	WatchConfig bool
}

// Result summarises a finished run.
type Result struct {
	Sieve sieve.Stats
	// Reassembly: what became of the IP fragments (package reassembly).
	Reassembly reassembly.Stats
	Analyser   analyse.Stats
	Transport  transport.Stats
	Files      []capture.FileStats
	Capture    []capture.LiveStats // live: kernel ring counters per socket
	PDUs       uint64              // PDUs built (all types)
	Sightings  uint64              // sightings put into PDUs
	PDUBytes   uint64              // bytes of sightings PDUs
}

// Run replays the capture files through the probe until they end (or ctx
// is cancelled), then waits until the collectors acknowledged everything.
// In Live mode it captures until ctx is cancelled (SIGINT/SIGTERM), then
// analyses what the sieves had passed on, flushes, waits for the acks
// (DrainTimeout) and says goodbye; the cancellation is the normal end, not
// an error.
func Run(ctx context.Context, o Options) (Result, error) {
	var res Result
	cfg := o.Config
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	pi, ok := cfg.ProbeByName(o.Name)
	if !ok {
		return res, fmt.Errorf("probe: %q is not a probe of %s", o.Name, cfg.File)
	}
	p := &cfg.Probes[pi]
	if err := cfg.CheckAuth(); err != nil {
		return res, fmt.Errorf("probe %s: %w", p.Name, err)
	}
	switch {
	case o.Live && len(o.Files) > 0:
		return res, fmt.Errorf("probe %s: live capture and capture files are exclusive", p.Name)
	case o.Live:
	case len(o.Files) != len(p.Interfaces):
		return res, fmt.Errorf("probe %s: %d capture files given, the configuration declares %d interfaces (%s): give one file per interface, in that order",
			p.Name, len(o.Files), len(p.Interfaces), ifaceNames(p))
	}
	if o.RingSize == 0 {
		o.RingSize = 1 << 16
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 30 * time.Second
	}
	log = log.With("probe", p.Name)

	nt := newNotes(log, cfg.Transport.MaxPDUSize)
	var (
		ins   []input
		files *capture.FileSource
		socks []*capture.LiveSource
	)
	if o.Live {
		var err error
		ins, socks, err = openLive(cfg, p, log, nt.event)
		if err != nil {
			return res, fmt.Errorf("probe %s: %w", p.Name, err)
		}
		defer func() {
			for _, s := range socks {
				s.Close()
			}
		}()
	} else {
		// A paced replay returns now and then during long gaps so that the
		// sieve notices a shutdown.
		src, err := capture.OpenFiles(capture.FileConfig{Paths: o.Files, Speed: o.Speed, Idle: 100 * time.Millisecond, Logger: log})
		if err != nil {
			return res, fmt.Errorf("probe %s: %w", p.Name, err)
		}
		defer src.Close()
		files = src
		ins = []input{{src: src, core: p.Core, name: "files"}}
	}
	svs := make([]*sieve.Sieve, len(ins))
	wms := make([]*watermark, len(ins))
	rgs := make([]*ring.Ring[sieve.Record], len(ins))
	for i, in := range ins {
		sv, err := sieve.Compile(cfg)
		if err != nil {
			return res, fmt.Errorf("probe %s: %w", p.Name, err)
		}
		svs[i], wms[i], rgs[i] = sv, &watermark{src: in.src}, ring.New[sieve.Record](o.RingSize)
	}

	addrs := make([]netip.AddrPort, len(cfg.Collectors))
	for i, c := range cfg.Collectors {
		addrs[i] = c.Address
	}
	if p.Key == nil {
		log.Warn("probe: INSECURE: <transport insecure=\"true\">: PDUs are not authenticated; anyone on the path can forge or replay them and forge acks")
	}
	out := newOutput(transport.BuildSize(cfg.Transport, p.Key))
	tcfg := cfg.Transport
	if !o.Live && o.Speed == 0 {
		// A full-speed replay is paced by the collectors' acks (the
		// window), not by the live traffic's byte budget.
		tcfg.Bandwidth = 0
	}
	sender, err := transport.NewSender(tcfg, addrs, p.ID, newSession(), transport.SenderOptions{
		Logger:    log,
		DataClock: out.clock.Load,
		Key:       p.Key,
	})
	if err != nil {
		return res, fmt.Errorf("probe %s: %w", p.Name, err)
	}
	out.sender = sender
	an, err := analyse.New(cfg, pi, out, analyse.Config{Analyses: analyses(cfg, out)})
	if err != nil {
		return res, fmt.Errorf("probe %s: %w", p.Name, err)
	}
	names := make([]string, len(ins))
	for i, in := range ins {
		names[i] = in.name
	}
	g := &gauges{}
	var cw *rollout.Watcher
	if o.WatchConfig && cfg.File != "" {
		cw = rollout.New(cfg, func(c *conf.Config) bool { _, ok := c.ProbeByName(p.Name); return ok }, nt.event, log)
	}
	stopMetrics, err := serveMetrics(p.Ops.Metrics, log, metrics(p.Name, cfg.Version, socks, svs, rgs, names, out, sender, g, cw))
	if err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		sender.Close(cctx) // nothing was sent: only the goodbye
		cancel()
		return res, fmt.Errorf("probe %s: %w", p.Name, err)
	}
	defer stopMetrics()
	if o.Live {
		log.Info("probe starting live capture", "config", cfg.File, "version", cfg.Version, "sieves", names, "collectors", addrs)
		out.event(time.Now().UnixNano(), "start", fmt.Sprintf("probe %s capturing live on %s (%d sieve goroutines), config %s", p.Name, ifaceNames(p), len(ins), cfg.Version))
	} else {
		log.Info("probe starting", "config", cfg.File, "version", cfg.Version, "files", o.Files,
			"collectors", addrs, "speed", o.Speed)
		out.event(time.Now().UnixNano(), "start", fmt.Sprintf("probe %s replaying %d file(s), config %s", p.Name, len(o.Files), cfg.Version))
	}

	sieveErr := make(chan error, len(ins))
	for i, in := range ins {
		go func() { sieveErr <- svs[i].Run(ctx, wms[i], rgs[i], in.core, sieve.Block) }()
	}
	if o.Ready != nil {
		close(o.Ready)
	}
	wctx, stopWatch := context.WithCancel(context.Background())
	// Not waited for: a query in flight must not delay the end.
	go watchClock(wctx, cfg.Clock, log, nt, g)
	if cw != nil {
		go cw.Run(wctx, time.Second)
		go fetchConfig(wctx, fetcher(cfg, p.Name, cw, nt), cfg)
	}
	watchDone := make(chan struct{}, 2)
	go func() {
		defer func() { watchDone <- struct{}{} }()
		if len(socks) > 0 {
			watchDrops(wctx, socks, log, nt.event)
		}
	}()
	go func() {
		defer func() { watchDone <- struct{}{} }()
		watchHealth(wctx, sender, socks, svs, names, log, nt.event)
	}()

	// Live: the analyser outlives ctx: it drains what the sieves pushed
	// before they saw the cancellation, and ends when every ring is closed.
	actx := ctx
	if o.Live {
		actx = context.Background()
	}
	runErr := analyseLoop(actx, rgs, an, out, wms, nt, cfg.Transport.MaxBuildTime)
	for range ins {
		err := <-sieveErr
		if o.Live && errors.Is(err, context.Canceled) {
			err = nil
		}
		if err != nil && runErr == nil {
			runErr = fmt.Errorf("probe %s: sieve: %w", p.Name, err)
		}
	}
	stopWatch()
	<-watchDone
	<-watchDone
	an.Close()
	for _, sv := range svs {
		sv.CloseReassembly()
		addSieveStats(&res.Sieve, sv.Stats())
		addReassembly(&res.Reassembly, sv.Reassembly())
	}
	res.Analyser = an.Stats()
	if files != nil {
		res.Files = files.Stats()
	}
	for _, s := range socks {
		st, _ := s.Stats()
		res.Capture = append(res.Capture, st)
	}
	nt.drain(out)
	if r := res.Reassembly; r.Fragments > 0 {
		// Incomplete and overlapping fragment sets are events, with the
		// rest of the figures that account for every fragment.
		out.event(time.Now().UnixNano(), "reassembly", fmt.Sprintf("fragments=%d datagrams=%d incomplete=%d evicted=%d overlap=%d duplicate=%d toomany=%d discarded=%d invalid=%d",
			r.Fragments, r.Datagrams, r.Incomplete, r.Evicted, r.Overlap, r.Duplicate, r.TooMany, r.Discarded, r.Invalid))
	}
	out.event(time.Now().UnixNano(), "stop", fmt.Sprintf("packets=%d wanted=%d sightings=%d flows=%d%s",
		res.Sieve.Packets, res.Sieve.Wanted, res.Analyser.Sightings, res.Analyser.Flows, captureSummary(res.Capture)))
	out.flush(safe(wms))
	res.PDUs, res.Sightings, res.PDUBytes = out.pdus.Load(), out.sightings.Load(), out.sightBytes.Load()

	g.draining.Store(true)
	dctx, cancel := context.WithTimeout(context.Background(), o.DrainTimeout)
	defer cancel()
	ts, err := sender.Close(dctx)
	res.Transport = ts
	if err != nil && runErr == nil {
		runErr = fmt.Errorf("probe %s: waiting for collector acks: %w", p.Name, err)
	}
	if out.err != nil && runErr == nil {
		runErr = out.err
	}
	return res, runErr
}

// analyseLoop is the analyser goroutine: it drains the rings of every
// sieve into the analyser (records of different rings interleave in time:
// the analyser and the PDU deltas take that), closes PDUs that are full or
// older than maxBuild, passes on the helpers' events, and advances the data
// clock that heartbeats and PDU headers carry. It returns nil when every
// ring is closed and drained.
func analyseLoop(ctx context.Context, rgs []*ring.Ring[sieve.Record], an *analyse.Analyser, out *output, wms []*watermark, nt *notes, maxBuild time.Duration) error {
	batch := make([]sieve.Record, 256)
	for {
		// Read the watermark before draining: every record of a packet
		// read before it is already in the ring.
		w := safe(wms)
		n := 0
		for _, rg := range rgs {
			k := rg.PopN(batch)
			for i := 0; i < k; i++ {
				an.Packet(&batch[i])
			}
			if k == len(batch) {
				// The ring may hold more records from before w; a
				// ring is in time order, so they are not earlier
				// than the last one taken.
				w = min(w, batch[k-1].TS)
			}
			n += k
		}
		// Every record captured before w has been analysed: the protocol
		// analyses may send what ended before it.
		an.Advance(w)
		nt.drain(out)
		if out.err != nil {
			return out.err
		}
		// Every packet captured before w has been analysed.
		out.progress(w, maxBuild)
		if n > 0 {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, maxBuild/4+time.Millisecond)
		var err error
		if len(rgs) == 1 {
			err = rgs[0].Wait(wctx)
		} else {
			err = waitAny(wctx, rgs)
		}
		cancel()
		switch {
		case errors.Is(err, ring.ErrClosed):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
	}
}

// waitAny waits until a ring has a record (nil), every ring is closed and
// drained (ring.ErrClosed) or ctx ends, polling with a short sleep: with
// several rings there is no single index to spin on.
func waitAny(ctx context.Context, rgs []*ring.Ring[sieve.Record]) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for d := 20 * time.Microsecond; ; d = min(2*d, time.Millisecond) {
		closed := 0
		for _, rg := range rgs {
			if rg.Len() > 0 {
				return nil
			}
			if rg.Closed() {
				if rg.Len() > 0 {
					return nil
				}
				closed++
			}
		}
		if closed == len(rgs) {
			return ring.ErrClosed
		}
		t.Reset(d)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// safe returns a time before which every packet of every sieve has been
// pushed to its ring.
func safe(wms []*watermark) int64 {
	w := wms[0].safe()
	for _, m := range wms[1:] {
		w = min(w, m.safe())
	}
	return w
}

func addReassembly(d *reassembly.Stats, s reassembly.Stats) {
	d.Fragments += s.Fragments
	d.Datagrams += s.Datagrams
	d.Incomplete += s.Incomplete
	d.Evicted += s.Evicted
	d.Overlap += s.Overlap
	d.Duplicate += s.Duplicate
	d.TooMany += s.TooMany
	d.Discarded += s.Discarded
	d.Invalid += s.Invalid
}

func addSieveStats(d *sieve.Stats, s sieve.Stats) {
	d.Packets += s.Packets
	d.Wanted += s.Wanted
	d.Unwanted += s.Unwanted
	d.NotIP += s.NotIP
	d.UnsupportedLink += s.UnsupportedLink
	d.Truncated += s.Truncated
	d.Malformed += s.Malformed
	d.Fragments += s.Fragments
	d.ICMPErrors += s.ICMPErrors
	d.Short += s.Short
	d.Signed += s.Signed
	d.RingFull += s.RingFull
	d.RingDrops += s.RingDrops
	d.Held += s.Held
}

func captureSummary(st []capture.LiveStats) string {
	if len(st) == 0 {
		return ""
	}
	var t capture.LiveStats
	for _, s := range st {
		t.Packets += s.Packets
		t.Drops += s.Drops
		t.Freezes += s.Freezes
	}
	return fmt.Sprintf(" kernel_packets=%d kernel_drops=%d ring_freezes=%d", t.Packets, t.Drops, t.Freezes)
}

// watermark wraps the capture source to know which packets the sieve has
// finished with: when it asks for packet n+1, packet n has been pushed.
type watermark struct {
	src  capture.Source
	last atomic.Int64 // time of the last packet fully handled by the sieve
	prev int64        // time of the packet being handled (sieve goroutine only)
}

func (w *watermark) ReadPacket() ([]byte, int64, uint8, uint16, error) {
	if w.prev != 0 {
		w.last.Store(w.prev)
	}
	data, ts, iface, lt, err := w.src.ReadPacket()
	if err != nil {
		// End of input, or an idle gap of a paced replay: no packet
		// stamped before the source's clock can come any more.
		if c := w.src.Clock(); c > w.last.Load() {
			w.last.Store(c)
		}
		return data, ts, iface, lt, err
	}
	w.prev = ts
	return data, ts, iface, lt, nil
}

// safe returns a time before which every packet has left the sieve.
func (w *watermark) safe() int64 { return w.last.Load() }

// processStart is when this process started (near enough).
var processStart = time.Now()

// lastSession is the latest session of this process.
var lastSession atomic.Uint32

// newSession returns the session id: the start time in milliseconds
// (transport.SessionID), so that sessions grow from one run to the next
// and a collector refuses a replayed older session. A previous process of
// this probe ended before this one started, so its sessions are at most
// the millisecond this process started in: a session is taken from a later
// one (by the time the configuration is read, it has passed; otherwise the
// wait is below a millisecond). Within a process, sessions grow by at
// least one.
func newSession() uint32 {
	if wait := time.Until(processStart.Truncate(time.Millisecond).Add(time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	for {
		last := lastSession.Load()
		s := transport.SessionID(time.Now())
		if last != 0 && int32(s-last) <= 0 {
			s = last + 1
		}
		if lastSession.CompareAndSwap(last, s) {
			return s
		}
	}
}

func ifaceNames(p *conf.Probe) string {
	s := ""
	for i, in := range p.Interfaces {
		if i > 0 {
			s += ", "
		}
		s += in.Name
	}
	return s
}

var _ analyse.Output = (*output)(nil)
