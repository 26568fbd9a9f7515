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
	"time"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/capture"
	"github.com/tmon-project/tmon/conf"
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
	// Realtime, with Speed 1, replays each packet at the wall-clock time of
	// its stamp (capture.FileConfig.Realtime).
	Realtime bool
	// RingSize is the sieve→analyser ring capacity (power of two); default conf.DefaultSieveRing.
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
		o.RingSize = conf.DefaultSieveRing
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 30 * time.Second
	}
	log = log.With("probe", p.Name)
	if w := cfg.FlowShareWarning(o.RingSize); w != "" {
		// roll.go: the sieves read up to a ring ahead of the analyser
		// before a roll's cut can take effect.
		log.Warn("probe: "+w, "ring", o.RingSize, "maxFlows", cfg.Limits.Resolved().MaxFlows, "probes", len(cfg.Probes))
	}

	// Events before the first epoch (catch-up, opening) wait for it.
	ev := &eventSink{}
	var cw *rollout.Watcher
	var from *conf.Config // the version switched from; nil in the first epoch
	var switchAt int64    // the data time of the last switch
	const restarted = "pipeline restarted at the cut of the data (data time), new session"
	how := restarted
	if o.WatchConfig && cfg.File != "" {
		name := p.Name
		cw = rollout.New(cfg, func(c *conf.Config) bool { _, ok := c.ProbeByName(name); return ok }, ev.event, log)
		// A probe that was down catches up: a version published meanwhile
		// and already in force is the one it starts with.
		if next := catchUp(ctx, cfg, p.Name, cw, log); next != nil {
			from, cfg, switchAt = cfg, next, next.ValidFrom.UnixNano()
			p = &cfg.Probes[mustProbe(cfg, name)]
			how = "caught up at start (the probe was not running at validFrom)"
		}
	}
	var (
		ins   []input
		files *capture.FileSource
		socks []*capture.LiveSource
	)
	if o.Live {
		var err error
		ins, socks, err = openLive(cfg, p, log, ev.event)
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
		src, err := capture.OpenFiles(capture.FileConfig{Paths: o.Files, Speed: o.Speed, Realtime: o.Realtime, Idle: 100 * time.Millisecond, Logger: log})
		if err != nil {
			return res, fmt.Errorf("probe %s: %w", p.Name, err)
		}
		defer src.Close()
		files = src
		ins = []input{{src: src, core: p.Core, name: "files"}}
	}
	// Every input is read through a cut: the switch to a new version of
	// the configuration ends an epoch of the pipeline at validFrom (data
	// time) and the next epoch goes on from there (switch.go).
	opened := ifaceNames(p) // the interfaces of the sockets
	cuts := make([]*cutSource, len(ins))
	for i := range ins {
		cuts[i] = newCut(ins[i].src)
		if from != nil {
			cuts[i].from = switchAt // caught up: the new version's data only
		}
		ins[i].src = cuts[i]
	}
	plan := newCutPlan(cuts)
	roll := "" // the probe.roll event's detail, after a roll
	for {
		r, next, err := runEpoch(ctx, o, cfg, from, &switchAt, how, roll, opened, ins, socks, plan, cw, ev, log)
		res.add(r)
		o.Ready = nil // closed by the first epoch
		how, roll = restarted, ""
		if err != nil || next == nil {
			if files != nil {
				res.Files = files.Stats()
			}
			var skipped uint64
			for _, c := range cuts {
				skipped += c.skipped
			}
			if skipped > 0 {
				log.Warn("rollout: catch-up: packets stamped before the validFrom of the version caught up with were left out (the old version's data, which this probe did not run)", "packets", skipped)
			}
			return res, err
		}
		if next == cfg {
			// A roll (roll.go): the same version, a new session.
			from, roll = nil, rollNote(cfg, r.Analyser.Flows, switchAt)
			continue
		}
		from, cfg = cfg, next
	}
}

// runEpoch runs the pipeline with one version of the configuration until
// the input ends, ctx ends, or the cut of a switch (next is then the
// version to run next).
func runEpoch(ctx context.Context, o Options, cfg *conf.Config, from *conf.Config, switchAt *int64, how, roll string, opened string, ins []input, socks []*capture.LiveSource,
	plan *cutPlan, cw *rollout.Watcher, ev *eventSink, log *slog.Logger) (res Result, next *conf.Config, _ error) {
	switchedAt := *switchAt
	pi, ok := cfg.ProbeByName(o.Name)
	if !ok {
		return res, nil, fmt.Errorf("probe: %q is not a probe of %s", o.Name, cfg.File)
	}
	p := &cfg.Probes[pi]
	switch {
	case !o.Live && len(o.Files) != len(p.Interfaces):
		return res, nil, fmt.Errorf("probe %s: version %q declares %d interfaces (%s) for %d capture files", p.Name, cfg.Version, len(p.Interfaces), ifaceNames(p), len(o.Files))
	case o.Live && ifaceNames(p) != opened:
		// The sockets are the old version's: restarting the probe
		// (systemd) opens the new ones; it catches up at start.
		return res, nil, fmt.Errorf("probe %s: version %q changes the probe's interfaces (%s): the probe stops, to be restarted with it", p.Name, cfg.Version, ifaceNames(p))
	}
	nt := newNotes(log, cfg.Transport.MaxPDUSize)
	ev.set(nt)
	plan.reset()
	svs := make([]*sieve.Sieve, len(ins))
	wms := make([]*watermark, len(ins))
	rgs := make([]*ring.Ring[sieve.Record], len(ins))
	pls := make([]*ring.Ring[sieve.Payload], len(ins)) // FTP control payloads beside the records (sieve/ftp.go)
	for i, in := range ins {
		sv, err := sieve.Compile(cfg)
		if err != nil {
			return res, nil, fmt.Errorf("probe %s: %w", p.Name, err)
		}
		svs[i], wms[i], rgs[i] = sv, &watermark{src: in.src}, ring.New[sieve.Record](o.RingSize)
		pls[i] = ring.New[sieve.Payload](payloadRing)
		sv.SetPayloads(pls[i])
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
		return res, nil, fmt.Errorf("probe %s: %w", p.Name, err)
	}
	out.sender = sender
	plug := analyses(cfg, out)
	an, err := analyse.New(cfg, pi, out, analyse.Config{Analyses: plug})
	if err != nil {
		return res, nil, fmt.Errorf("probe %s: %w", p.Name, err)
	}
	names := make([]string, len(ins))
	for i, in := range ins {
		names[i] = in.name
	}
	g := &gauges{}
	stopMetrics, err := serveMetrics(p.Ops.Metrics, log, metrics(p.Name, cfg.Version, socks, svs, rgs, names, out, sender, g, cw))
	if err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		sender.Close(cctx) // nothing was sent: only the goodbye
		cancel()
		return res, nil, fmt.Errorf("probe %s: %w", p.Name, err)
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
	if from != nil {
		// Beside the measurements: stamped with the instant of the cut.
		detail := switchNote(from, cfg, switchedAt, how)
		out.event(switchedAt, "config.switch", detail)
		log.Info("rollout: switched: "+detail, "kind", "config.switch", "version", cfg.Version,
			"valid_from", time.Unix(0, switchedAt).UTC().Format(time.RFC3339Nano), "late", time.Since(time.Unix(0, switchedAt)))
	}
	if roll != "" {
		out.event(switchedAt, "probe.roll", roll)
		log.Info("probe: rolled: "+roll, "kind", "probe.roll")
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
	// Waited for: it reads the cuts when ctx ends, before the next epoch
	// resets them.
	armDone := make(chan struct{})
	if cw != nil {
		go cw.Run(wctx, time.Second)
		go fetchConfig(wctx, fetcher(cfg, p.Name, cw, log), cfg)
		go func() {
			defer close(armDone)
			armSwitch(wctx, cw, plan, log)
		}()
	} else {
		close(armDone)
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
	shed := newShedder(sender.Backlog, sender.Window(), o.Live || o.Speed > 0, log)
	runErr := analyseLoop(actx, rgs, pls, an, out, wms, nt, shed, newRoller(cfg, plan, log), cfg.Transport.MaxBuildTime)
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
	<-armDone
	an.Close()
	for _, sv := range svs {
		sv.CloseReassembly()
		addSieveStats(&res.Sieve, sv.Stats())
		addReassembly(&res.Reassembly, sv.Reassembly())
	}
	res.Analyser = an.Stats()
	var nextCfg *conf.Config
	switch cut, rolled, at := plan.ended(); {
	case cut && rolled:
		nextCfg, *switchAt = cfg, at
		log.Info("probe: flow ids: input cut at the roll, session ending", "version", cfg.Version, "ids", res.Analyser.Flows,
			"cut", time.Unix(0, at).UTC().Format(time.RFC3339Nano))
	case cut:
		nextCfg, *switchAt = cw.Switch(cw.Held()), at
		log.Info("rollout: switch: input cut at validFrom, version "+cfg.Version+" ending", "version", cfg.Version,
			"next", nextCfg.Version, "cut", time.Unix(0, at).UTC().Format(time.RFC3339Nano))
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
	// What the analyses and the FTP expectations left out to bound their
	// memory is counted, not silent.
	if st := res.Analyser; st.Evicted > 0 {
		out.event(time.Now().UnixNano(), "analysis.bound", fmt.Sprintf("flow instances=%d evicted (table full, %d)=%d aged=%d",
			st.Flows, cfg.Analyses.Resolved().FlowMaxInstances, st.Evicted, st.Aged))
	}
	for _, p := range plug {
		if s, ok := p.(interface{ Summary() string }); ok {
			if d := s.Summary(); d != "" {
				out.event(time.Now().UnixNano(), "analysis.bound", d)
			}
		}
	}
	var fs sieve.FTPStats
	for _, sv := range svs {
		f := sv.FTP()
		fs.Learned, fs.Replaced, fs.Dropped = fs.Learned+f.Learned, fs.Replaced+f.Replaced, fs.Dropped+f.Dropped
	}
	if fs.Replaced > 0 || fs.Dropped > 0 {
		out.event(time.Now().UnixNano(), "analysis.bound", fmt.Sprintf("ftp data connections announced=%d expectations replaced (table full)=%d control payloads not handed on (ring full)=%d",
			fs.Learned, fs.Replaced, fs.Dropped))
	}
	shed.end(out, safe(wms))
	res.Shed = out.shed.Load()
	out.event(time.Now().UnixNano(), "stop", fmt.Sprintf("packets=%d wanted=%d sightings=%d flows=%d%s%s",
		res.Sieve.Packets, res.Sieve.Wanted, res.Analyser.Sightings-res.Shed, res.Analyser.Flows, shedSummary(res.Shed), captureSummary(res.Capture)))
	out.flush(safe(wms))
	res.PDUs, res.Sightings, res.PDUBytes = out.pdus.Load(), out.sightings.Load(), out.sightBytes.Load()

	g.draining.Store(true)
	if nextCfg != nil {
		ev.set(nil) // events from now on are the next epoch's
	}
	dctx, cancel := context.WithTimeout(context.Background(), o.DrainTimeout)
	if nextCfg != nil {
		cancel()
		dctx, cancel = switchDrain(sender, o.DrainTimeout, min(2*cfg.Transport.Heartbeat, 2*time.Second))
	}
	defer cancel()
	closeSession := sender.Close
	if nextCfg == cfg {
		closeSession = sender.Continue // a roll: the collectors wait for the next session
	}
	ts, err := closeSession(dctx)
	res.Transport = ts
	switch {
	case err != nil && runErr == nil && nextCfg != nil:
		// A switch goes on: what no collector acked is reported, as at
		// the end of a run, and the new version's session starts.
		log.Warn("rollout: switch: the old version's session ended with PDUs no collector acknowledged", "err", err)
		ev.event("config.switch_drain", fmt.Sprintf("version %q's session ended with PDUs no collector acknowledged: %v", cfg.Version, err))
	case err != nil && runErr == nil:
		runErr = fmt.Errorf("probe %s: waiting for collector acks: %w", p.Name, err)
	}
	if out.err != nil && runErr == nil {
		runErr = out.err
	}
	return res, nextCfg, runErr
}

// payloadRing is the size of the ring of FTP control payloads beside each
// sieve's ring (1 KiB each): control segments are few.
const payloadRing = 256

func mustProbe(cfg *conf.Config, name string) int {
	i, _ := cfg.ProbeByName(name)
	return i
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
