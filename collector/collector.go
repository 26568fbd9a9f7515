// Package collector wires one collector process together, in data-flow
// order: transport receiver (verify, ack, dedupe) → PDU decoding → flow
// registry (probe flow ids → collector flow ids and hops) → reconcile →
// spool. cmd/tmon-collector parses flags and calls Run.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/tmon-project/tmon/alarm"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/health"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/reconcile"
	"github.com/tmon-project/tmon/rollout"
	"github.com/tmon-project/tmon/spool"
	"github.com/tmon-project/tmon/transport"
)

// Options configure a collector run.
type Options struct {
	Config *conf.Config
	Name   string // the collector's name in the configuration
	Spool  string // spool directory; default the configuration's
	// Silence is how long a probe may stay unheard before the collector
	// reports it unreachable (event probe.unreachable); default max(3
	// heartbeats, min(10s, Patience/2)): said well before the collector
	// stops waiting for the probe's sightings.
	Silence time.Duration
	// Patience is how long the collector keeps waiting for the sightings
	// a silent probe owes before it decides the records without them:
	// the probe retries (long-retry mode) up to the final timeout and then
	// says what it gave up, so the default is 2 × finalTimeout + 3
	// heartbeats. Memory stays bounded by the reconciler's MaxRecords.
	Patience time.Duration
	// NoJournal turns the restart journal off (docs/transport.md): a
	// restart then loses the open intervals.
	NoJournal bool
	// WatchConfig follows new versions of the configuration file
	// (package rollout): validated, reported, held.
	WatchConfig bool
	Logger      *slog.Logger
	// Ready, when set, is closed once the socket listens.
	Ready chan<- struct{}
}

// errUnknownFlow refuses a PDU that refers to a flow whose definition has
// not arrived yet: the probe sends it again, by then after the definition.
var errUnknownFlow = errors.New("sightings of a flow not yet defined")

// Collector is the state of a running collector. Its methods are called
// from the receiver's goroutine and from the ticker, under mu.
type Collector struct {
	mu   sync.Mutex
	cfg  *conf.Config
	self string
	log  *slog.Logger
	// rec is called under mu, or, while rq is set, only by the
	// reconciling goroutine, which rq feeds (recqueue.go).
	rec     *reconcile.Reconciler
	rq      *recQueue
	sbuf    []reconcile.Sighting // a PDU's sightings, while rq is nil
	sp      *spool.Writer
	sink    *journaledSink
	silent  time.Duration
	patient time.Duration
	rcv     *transport.Receiver
	j       *journal
	// compactAt is the journal size that starts a compaction (0: the
	// default, 64 MiB); compactions counts them.
	compactAt   int64
	compactions int

	// replaying: the journal is being replayed at start; collector events
	// are not written again, nor (replayFlows, replayEvents,
	// replayCounters false) the flow, event and counters rows that reached
	// the spool before the restart.
	replaying, replayFlows, replayEvents, replayCounters bool
	// replayAt is the journal record being replayed; dataDone the last
	// record committing a set of a data type (flow_counters, rtt_stats),
	// per type and interval start: a row of an earlier record is in the
	// spool.
	replayAt int
	dataDone map[dataKey]int
	// Durability (durable.go): acks held until the journal is synced past
	// them; syncMu keeps a compaction from closing the file being synced.
	ackMu       sync.Mutex
	held        []heldAck
	kick        chan struct{}
	syncMu      sync.Mutex
	jerr        error               // the journal's write error, nil when it works
	serr        error               // the spool's write error, nil when it works
	unreachable map[int]bool        // probe index → reported unreachable
	sheds       map[int][]shedStart // probe index → its shedding notices, by capture time
	clk         clocks              // probes' latest clock records (own lock)

	limits           conf.Limits // resolved
	trust            trustState
	flowSlots        int64 // probe flow id slots held by every session (Limits.MaxFlows)
	sessionLimitSaid bool  // maxSessions reached: logged once
	flowLimitSaid    bool
	journalLimitSaid bool

	sessions map[sessKey]*session
	latest   map[int]*session // probe index → its current session
	global   map[flow.Key]uint32
	byID     map[uint32]*flowEntry // collector flow id → key, references (ageing.go)
	nextFlow uint32
	// Ageing (ageing.go): flows no session refers to and released
	// sessions, in data-time order; the flows forgotten; the latest
	// sighting time seen.
	idleFlows    []idleFlow
	idleSessions []idleSession
	forgotten    uint64
	maxSeen      int64
	// replayKept: the journal's replay is in the PDUs a compaction kept,
	// whose flows the snapshot holds (a flow they define that it lacks was
	// forgotten).
	replayKept bool
	rw         recWatch         // reconcile events (events.go)
	alarms     *alarm.Watcher   // thresholds; nil when none
	notifier   *alarm.Notifier  // webhook and SNMP trap; nil when none
	cw         *rollout.Watcher // the configuration file's new versions; nil when not watched
	// The switch (switch.go): since is when the version in force took
	// over (0: at start); switchAt, once the next version's validFrom is
	// reached, its instant, and switchTo that version.
	since, switchAt int64
	switchTo        *conf.Config
	maxTime         int64   // largest probe time seen
	wmBuf           []int64 // advance's per-probe watermarks
	maxTO           int64   // largest one-way timeout + interval: how far "everything" reaches
	started         time.Time
}

type sessKey struct {
	probe   uint16
	session uint32
}

type session struct {
	probe  int // index into Config.Probes
	name   string
	flows  []flowRef // by probe flow id
	wm     int64
	closed bool // said goodbye, and everything before the bye arrived
	// released: its flow ids went back (releaseFlows); it takes no more
	// flows, sightings or records. flows is kept for a while (ageing.go).
	released bool
	bye      uint32 // seq of the bye PDU, once it arrived; 0 before
	// continues: the bye said a new session of the probe follows (a roll
	// to renew its flow ids, probe/roll.go): until it comes, the probe
	// is waited for at this session's watermark.
	continues bool
	id        uint32
	lastHeard time.Time
}

// ended: the probe's data is complete and nothing more of it will come.
func (s *session) ended() bool { return s.closed && !s.continues }

// flowRef is what a probe's flow id means at the collector.
type flowRef struct {
	defined bool
	oneWay  bool   // belongs to a one-way class at a hop of its path
	id      uint32 // collector flow id
	hop     uint8
	iface   uint8 // interface index in the probe
}

// Run listens on the collector's address and collects until ctx ends,
// switching to each new version of the configuration at its validFrom
// (switch.go).
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg := o.Config
	ci, ok := cfg.CollectorByName(o.Name)
	if !ok {
		return fmt.Errorf("collector: %q is not a collector of %s", o.Name, cfg.File)
	}
	spoolDir := o.Spool
	if spoolDir == "" {
		spoolDir = cfg.Collectors[ci].Spool
	}
	v := &versions{heard: rollout.NewHeard()}
	if o.WatchConfig && cfg.File != "" {
		o.Config = startVersion(cfg, spoolDir, log.With("collector", o.Name))
		name := o.Name
		v.cw = rollout.New(o.Config, func(n *conf.Config) bool { _, ok := n.CollectorByName(name); return ok }, v.event, log.With("collector", o.Name))
	}
	for {
		next, err := runVersion(ctx, o, v)
		if err != nil || next == nil {
			return err
		}
		v.from, v.at = o.Config, v.cur.switchAt
		o.Config = next
		o.Ready = nil // closed by the first version
	}
}

// runVersion runs the collector with one version of the configuration
// until ctx ends or the switch to the next version, which it returns.
func runVersion(ctx context.Context, o Options, v *versions) (*conf.Config, error) {
	cfg := o.Config
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	ci, ok := cfg.CollectorByName(o.Name)
	if !ok {
		return nil, fmt.Errorf("collector: %q is not a collector of %s", o.Name, cfg.File)
	}
	me := cfg.Collectors[ci]
	if o.Spool == "" {
		o.Spool = me.Spool
	}
	log = log.With("collector", me.Name)
	c, err := New(cfg, me.Name, o.Spool, log)
	if err != nil {
		return nil, err
	}
	c.patient = o.Patience
	if c.patient == 0 {
		c.patient = 2*cfg.Transport.FinalTimeout + 3*cfg.Transport.Heartbeat
	}
	c.silent = o.Silence
	if c.silent == 0 {
		c.silent = max(3*cfg.Transport.Heartbeat, min(10*time.Second, c.patient/2))
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(me.Address))
	if err != nil {
		return nil, fmt.Errorf("collector %s: listen on %s: %w", me.Name, me.Address, err)
	}
	defer conn.Close()
	if err := cfg.CheckAuth(); err != nil {
		return nil, fmt.Errorf("collector %s: %w", me.Name, err)
	}
	ropt := transport.ReceiverOptions{Logger: log, Keys: probeKeys(cfg), MaxSessions: c.limits.MaxSessions, Known: func(id uint16) bool {
		_, ok := cfg.ProbeByID(id)
		return ok
	}}
	if ropt.Keys == nil {
		log.Warn("collector: INSECURE: <transport insecure=\"true\">: PDUs are not authenticated; anyone who can reach " + me.Address.String() + " can forge observations, heartbeats and replays")
	}
	rcv, err := transport.NewReceiver(conn, cfg.Transport, ropt)
	if err != nil {
		return nil, fmt.Errorf("collector %s: %w", me.Name, err)
	}
	c.rcv = rcv
	c.cw = v.cw
	c.since = v.at
	c.notifier = alarm.NewNotifier(cfg.Alarms, log)
	defer func() {
		nctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c.notifier.Close(nctx)
		cancel()
	}()
	if !o.NoJournal {
		if err := c.openJournal(o.Spool); err != nil {
			return nil, fmt.Errorf("collector %s: %w", me.Name, err)
		}
	}
	if err := c.restoreSessions(o.Spool); err != nil {
		return nil, fmt.Errorf("collector %s: %w", me.Name, err)
	}
	c.rw.last = c.rec.Counters() // reported before the restart
	if me.Ops.Metrics != "" {
		// After the journal's replay, which runs without the lock.
		hs, err := health.Serve(me.Ops.Metrics, log, c.metrics())
		if err != nil {
			if c.j != nil {
				c.j.close()
			}
			return nil, fmt.Errorf("collector %s: %w", me.Name, err)
		}
		defer hs.Close()
	}
	if c.cw != nil {
		stopRollout, err := c.startRollout(ctx, me, o.Spool, v.heard)
		if err != nil {
			if c.j != nil {
				c.j.close()
			}
			return nil, fmt.Errorf("collector %s: %w", me.Name, err)
		}
		defer stopRollout()
	}
	v.set(c)
	if v.from != nil {
		c.switched(v.from, v.at)
	}
	log.Info("collector listening", "address", me.Address, "spool", o.Spool, "config", cfg.File, "version", cfg.Version)
	c.event(time.Now(), "start", fmt.Sprintf("collector %s listening on %s, config %s", me.Name, me.Address, cfg.Version))
	if ropt.Keys == nil {
		c.event(time.Now(), "transport.insecure", "no probe keys (<transport insecure=\"true\">): PDUs are not authenticated")
	}
	if o.Ready != nil {
		close(o.Ready)
	}

	// From here on the reconciler has its own goroutine (recqueue.go);
	// Close and closeSwitch end it.
	c.mu.Lock()
	c.startReconciling()
	c.mu.Unlock()
	syncDone, stopSync := make(chan struct{}), make(chan struct{})
	if c.j != nil {
		go func() {
			defer close(syncDone)
			c.syncer(stopSync)
		}()
	} else {
		close(syncDone)
	}
	tctx, stopTick := context.WithCancel(ctx)
	if c.cw != nil {
		go c.cw.Run(tctx, time.Second)
	}
	tickDone := make(chan struct{})
	go func() {
		defer close(tickDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-tctx.Done():
				return
			case now := <-t.C:
				c.tick(now)
				c.trustTick(now)
			}
		}
	}()
	// The switch stops the receiver once the old version's sessions ended.
	rctx, stopRcv := context.WithCancel(ctx)
	defer stopRcv()
	if c.cw != nil {
		go c.armSwitch(tctx, stopRcv)
	}
	runErr := rcv.Run(rctx, c)
	c.mu.Lock()
	switching := ctx.Err() == nil && c.switchAt != 0
	c.mu.Unlock()
	stopTick()
	<-tickDone
	c.trustTick(time.Now()) // before Close may empty the journal
	close(stopSync)
	<-syncDone
	st := rcv.Stats()
	log.Info("receiver stopped", "delivered", st.Delivered, "duplicates", st.Duplicates,
		"heartbeats", st.Heartbeats, "refused", st.HandlerErrors, "skipped", st.Skipped, "invalid", fmt.Sprint(st.Invalid))
	if !switching {
		if err := c.Close(); err != nil && runErr == nil {
			runErr = err
		}
		return nil, runErr
	}
	if err := c.closeSwitch(o.Spool); err != nil {
		return nil, errors.Join(runErr, err)
	}
	return c.cw.Switch(c.switchTo), nil
}

// New builds a collector writing into spoolDir, without network: tests feed
// it PDUs directly.
func New(cfg *conf.Config, name, spoolDir string, log *slog.Logger) (*Collector, error) {
	sp, err := spool.New(spoolDir, cfg)
	if err != nil {
		return nil, fmt.Errorf("collector %s: %w", name, err)
	}
	sink := &journaledSink{sp: sp, skip: math.MinInt64, last: math.MinInt64}
	lim := cfg.Limits.Resolved()
	rec, err := reconcile.New(cfg, sink, reconcile.Options{MaxRecords: lim.MaxRecords})
	if err != nil {
		return nil, fmt.Errorf("collector %s: %w", name, err)
	}
	c := &Collector{
		cfg: cfg, self: name, log: log, rec: rec, sp: sp, sink: sink, limits: lim,
		silent:      10 * time.Second,
		patient:     2*cfg.Transport.FinalTimeout + 3*cfg.Transport.Heartbeat,
		unreachable: make(map[int]bool),
		sheds:       make(map[int][]shedStart),
		sessions:    make(map[sessKey]*session),
		latest:      make(map[int]*session),
		global:      make(map[flow.Key]uint32),
		byID:        make(map[uint32]*flowEntry),
		started:     time.Now(),
		kick:        make(chan struct{}, 1),
	}
	sp.SetCommitter(sink)
	for i := range cfg.Classes {
		if ow := cfg.Classes[i].OneWay; ow != nil {
			c.maxTO = max(c.maxTO, int64(ow.Timeout))
		}
	}
	c.maxTO += int64(cfg.Interval)
	// Compact well before the journal reaches its limit (which refuses
	// PDUs): at half of it, when that is below the usual threshold.
	c.compactAt = min(defaultCompactAt, lim.MaxJournal/2)
	sp.SetClocks(c.clk.state)
	rec.SetClocks(c.clk.bound)
	c.alarms = alarm.New(cfg, name)
	if c.alarms != nil {
		sink.written = c.thresholds
	}
	return c, nil
}

// WatchIntervals has fn told of every interval once its files are written
// to the spool, on the goroutine that closed it (tmon owd keeps the
// per-packet delays for its summary instead of reading them back). fn
// must not keep iv, which is reused. Call it before the first PDU.
func (c *Collector) WatchIntervals(fn func(iv *reconcile.Interval)) {
	prev := c.sink.written
	c.sink.written = func(iv *reconcile.Interval) {
		if prev != nil {
			prev(iv)
		}
		fn(iv)
	}
}

// SetVolatileSpool makes the spool skip its fsyncs (spool.Writer.SetVolatile):
// for offline analysis, whose spool a rerun rebuilds. Call it before the
// first PDU.
func (c *Collector) SetVolatileSpool() { c.sp.SetVolatile() }

// setGlobal records the collector flow id of a flow instance.
func (c *Collector) setGlobal(k flow.Key, id uint32) {
	c.global[k] = id
	c.byID[id] = &flowEntry{key: k}
}

// HandlePDU takes one verified PDU from the receiver.
// Once handled, the datagram goes into the journal before the receiver
// acks it.
func (c *Collector) HandlePDU(_ netip.AddrPort, f *pdu.Frame) error {
	return c.handle(f)
}
