// Package offline is two-point analysis without a network: it runs the
// probe's stages (capture file replay → sieve → analyser) for every
// capture file and hands the PDUs they make straight to the collector's
// stages (flow registry → reconcile → spool) in the same process, with no
// UDP, transport or journal in between. `tmon owd hop-a.pcap hop-b.pcap`
// is its command. The sieve, signatures, PDU encoding and decoding,
// reconciliation and spool are the daemons' own code, so the figures are
// those a probe per file and a collector would write.
//
// The files are read merged in time order by one sieve (like a probe with
// several interfaces); each record then goes to the analyser of the probe
// whose interface its file stands for, and that probe's PDUs to the
// collector under the probe's id. Every few thousand packets, and at the
// end, the PDUs are closed and every probe's watermark moves to the time of
// the last packet read: every earlier sighting has been delivered, which is
// what a probe's watermark means.
package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/capture"
	"github.com/tmon-project/tmon/collector"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/reconcile"
	"github.com/tmon-project/tmon/sieve"
	"github.com/tmon-project/tmon/transport"
)

// DefaultConfig is the configuration of `tmon owd` without -config: two
// probes a and b with one interface each, hops A and B; one flow class of
// every IP packet, one flow per source, destination and protocol, one-way
// from A to B with per-packet delays. Packets take at most maxTransit
// (10 s) from A to B; a packet not seen at B within timeout (20 s) is lost.
const DefaultConfig = `<tmon version="owd-default" interval="10s">
  <collector name="owd" address="127.0.0.1:47390"/>
  <probe name="a" id="1"><interface name="hop-a" hop="A"/></probe>
  <probe name="b" id="2"><interface name="hop-b" hop="B"/></probe>
  <flowClass name="ip">
    <granular fields="ip.src ip.dst ip.proto"/>
    <oneWay hops="A B" maxTransit="10s" timeout="20s" perPacket="true"/>
  </flowClass>
</tmon>`

// Default parses DefaultConfig.
func Default() (*conf.Config, error) {
	return conf.Parse(strings.NewReader(DefaultConfig), "(tmon owd default)")
}

// Options configure Run.
type Options struct {
	Config *conf.Config
	// Files are the capture files, one per interface of the
	// configuration's probes, in configuration order (probes in order,
	// each probe's interfaces in order): see Inputs.
	Files []string
	// Spool is the directory the spool files are written to.
	Spool string
	// Collector names the configuration's collector whose rules apply
	// (only its name appears in the spool); default the first.
	Collector string
	Logger    *slog.Logger // nil: discard
	// OnInterval, when set, is told of every interval once the spool
	// holds it (collector.WatchIntervals), on the collector's goroutine.
	OnInterval func(iv *reconcile.Interval)
}

// Input is what one capture file stands for: interface Interface of
// probe Probe (indexes into the configuration).
type Input struct {
	Probe, Interface int
}

// Inputs lists the interfaces of cfg's probes in the order Options.Files
// follows.
func Inputs(cfg *conf.Config) []Input {
	var in []Input
	for pi := range cfg.Probes {
		for ii := range cfg.Probes[pi].Interfaces {
			in = append(in, Input{pi, ii})
		}
	}
	return in
}

// Describe says which file goes where, for usage and error messages:
// "a/hop-a (hop A), b/hop-b (hop B)".
func Describe(cfg *conf.Config) string {
	var parts []string
	for _, in := range Inputs(cfg) {
		p := &cfg.Probes[in.Probe]
		s := p.Name + "/" + p.Interfaces[in.Interface].Name
		if h := p.Interfaces[in.Interface].Hop; h != "" {
			s += " (hop " + h + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// Result counts what a run did.
type Result struct {
	Files     []capture.FileStats
	Sieve     sieve.Stats
	Sightings uint64 // sightings handed to the reconciler (all probes)
	PDUs      uint64
	Analyser  analyse.Stats // the probes' analysers' counters, added up
}

// session id of every probe: one session per run.
const session = 1

// watermarkEvery is how many packets are read between two watermarks:
// the reconciler decides what it can then, which bounds its memory.
const watermarkEvery = 8192

// Run reads every file through the probes' stages into the collector's
// and closes the spool when all is decided. ctx cancels it.
func Run(ctx context.Context, o Options) (res Result, err error) {
	cfg := o.Config
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ins := Inputs(cfg)
	if len(o.Files) != len(ins) {
		return res, fmt.Errorf("offline: %d capture files given; %s declares %d interfaces: give one file per interface, in this order: %s",
			len(o.Files), cfg.File, len(ins), Describe(cfg))
	}
	if len(cfg.Collectors) == 0 {
		return res, fmt.Errorf("offline: %s declares no collector", cfg.File)
	}
	name := o.Collector
	if name == "" {
		name = cfg.Collectors[0].Name
	} else if _, ok := cfg.CollectorByName(name); !ok {
		return res, fmt.Errorf("offline: %q is not a collector of %s", name, cfg.File)
	}
	coll, err := collector.New(cfg, name, o.Spool, log)
	if err != nil {
		return res, err
	}
	// The spool is rebuilt by running again: no fsyncs, which were most
	// of the wall time on a busy disk.
	coll.SetVolatileSpool()
	if o.OnInterval != nil {
		coll.WatchIntervals(o.OnInterval)
	}
	// The files are read, not mapped (capture.FileConfig.Map): on a
	// virtual machine with shadow page tables the first touch of each
	// mapped page cost more than read(2)'s copy into a buffer that stays
	// in cache (capture's readChunk).
	src, err := capture.OpenFiles(capture.FileConfig{Paths: o.Files, Logger: log})
	if err != nil {
		coll.Close()
		return res, fmt.Errorf("offline: %w", err)
	}
	defer src.Close()
	sv, err := sieve.Compile(cfg)
	if err != nil {
		coll.Close()
		return res, fmt.Errorf("offline: %w", err)
	}
	// PDUs as large as the format allows: no datagram to fit in a path
	// MTU, and fewer PDUs to hand over. Their bounds change no figure.
	const maxSize = pdu.MaxPDUSize
	// The few control PDUs are small: a builder of the largest size for
	// each was 64 KiB zeroed and faulted in.
	const ctlSize = 4096
	// The collector's side runs on its own goroutine from here on: every
	// way out closes the queue before the collector.
	q := newQueue(coll)
	stop := func() {
		q.close()
		coll.Close()
	}
	abort := func(err error) (Result, error) {
		stop()
		return res, err
	}
	probes := make([]*probe, len(cfg.Probes))
	route := make([]*probe, len(ins)) // by file index
	for i, in := range ins {
		p := probes[in.Probe]
		if p == nil {
			p = &probe{q: q, id: cfg.Probes[in.Probe].ID, defs: pdu.NewBuilder(maxSize), sights: pdu.NewBuilder(maxSize), ctl: pdu.NewBuilder(ctlSize)}
			if p.an, err = analyse.New(cfg, in.Probe, p, analyse.Config{}); err != nil {
				return abort(fmt.Errorf("offline: %w", err))
			}
			probes[in.Probe] = p
		}
		route[i] = p
	}
	ifaceOf := make([]uint8, len(ins))
	for i, in := range ins {
		ifaceOf[i] = uint8(in.Interface)
	}
	// A session for every probe from the start: the collector waits for
	// a probe it has not heard from, and one whose file holds no packet
	// of a class must not be waited for at the end.
	now := time.Now().UnixNano()
	for _, p := range probes {
		if p == nil {
			continue
		}
		if err := p.event(now, "start", "offline analysis (tmon owd)"); err != nil {
			return abort(err)
		}
		// The clocks that stamped the captures are not this host's and
		// cannot be measured now: they are good only when the
		// configuration says so (assumeSynced), as a probe without NTP
		// servers reports.
		c := pdu.Clock{TS: now}
		if cfg.Clock.AssumeSynced {
			c.Synced, c.Assumed = true, true
		}
		p.ctl.AddClock(c)
		if err := p.send(p.ctl, pdu.TypeClock, 0); err != nil {
			return abort(err)
		}
	}

	var rec sieve.Record
	var last int64
	n := 0
	for {
		data, ts, iface, lt, err := src.ReadPacket()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return abort(fmt.Errorf("offline: %w", err))
		}
		if ok, _ := sv.Packet(data, ts, iface, lt, &rec); ok {
			rec.Iface = ifaceOf[iface]
			route[iface].an.Packet(&rec)
		}
		last = max(last, ts)
		if n++; n%watermarkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return abort(err)
			}
			if err := deliver(probes, last); err != nil {
				return abort(err)
			}
		}
	}
	if err := deliver(probes, last); err != nil {
		return abort(err)
	}
	for _, p := range probes {
		if p == nil {
			continue
		}
		if err := p.send(p.ctl, pdu.TypeBye, last); err != nil {
			return abort(err)
		}
		// Every PDU up to the bye has been delivered: the session ends,
		// as the receiver's watermark says for a daemon.
		p.q.watermark(p.id, transport.Watermark{Seq: p.seq, ProbeTime: last})
		res.Sightings += p.sightings
		res.PDUs += p.pdus
		st := p.an.Stats()
		res.Analyser.Records += st.Records
		res.Analyser.Sightings += st.Sightings
		res.Analyser.Flows += st.Flows
		res.Analyser.Aged += st.Aged
		res.Analyser.Evicted += st.Evicted
	}
	res.Files = src.Stats()
	res.Sieve = sv.Stats()
	if err := q.close(); err != nil {
		coll.Close()
		return res, err
	}
	if err := coll.Close(); err != nil {
		return res, fmt.Errorf("offline: %w", err)
	}
	return res, nil
}

// deliver closes every probe's open PDUs and moves its watermark to w.
func deliver(probes []*probe, w int64) error {
	for _, p := range probes {
		if p == nil {
			continue
		}
		p.an.Advance(w)
		if err := p.flush(w); err != nil {
			return err
		}
	}
	var q *queue
	for _, p := range probes {
		if p != nil {
			p.q.watermark(p.id, transport.Watermark{Seq: p.seq, ProbeTime: w})
			q = p.q
		}
	}
	return q.flush()
}

// probe is one configured probe's analyser and PDU builders; its PDUs go
// to the collector as if received.
type probe struct {
	q            *queue
	id           uint16
	an           *analyse.Analyser
	defs, sights *pdu.Builder
	ctl          *pdu.Builder // the start event, clock and bye PDUs
	seq          uint32
	err          error
	// counts
	pdus, sightings uint64
}

var _ analyse.Output = (*probe)(nil)

func (p *probe) FlowDef(d pdu.FlowDef) {
	if !p.defs.AddFlowDef(d) {
		p.fail(p.send(p.defs, pdu.TypeFlowDef, 0))
		p.defs.AddFlowDef(d)
	}
}

func (p *probe) Sighting(s pdu.Sighting, exp uint8, size bool) {
	if p.sights.AddSighting(s.Flow, exp, size, s) {
		return
	}
	// Full: every earlier sighting is in this PDU or an earlier one.
	p.fail(p.flush(s.TS))
	p.sights.AddSighting(s.Flow, exp, size, s)
}

func (p *probe) fail(err error) {
	if err != nil && p.err == nil {
		p.err = err
	}
}

// flush hands over the open flow definitions, then the open sightings,
// stamped with clock.
func (p *probe) flush(clock int64) error {
	if p.err != nil {
		return p.err
	}
	if p.defs.Len() > 0 {
		if err := p.send(p.defs, pdu.TypeFlowDef, clock); err != nil {
			return err
		}
	}
	if p.sights.Len() > 0 {
		p.sightings += uint64(p.sights.Len())
		if err := p.send(p.sights, pdu.TypeSightings, clock); err != nil {
			return err
		}
	}
	return nil
}

func (p *probe) event(ts int64, kind, detail string) error {
	p.ctl.AddEvent(pdu.Event{TS: ts, Kind: kind, Detail: detail})
	return p.send(p.ctl, pdu.TypeEvents, 0)
}

// send finishes b's PDU and queues it for the collector, which takes it as
// it would from the receiver after verifying it.
func (p *probe) send(b *pdu.Builder, t pdu.Type, clock int64) error {
	p.seq++
	p.q.pdu(p.id, t, p.seq, b.Finish(pdu.Header{Type: t, Probe: p.id, Session: session, Seq: p.seq, ProbeTime: clock}))
	b.Reset()
	p.pdus++
	return p.q.err0()
}
