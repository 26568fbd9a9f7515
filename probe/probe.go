// Package probe wires one probe process together, in data-flow order:
// capture source → sieve (own pinned goroutine) → ring → analyser → PDU
// builders → transport to every collector. It owns no mechanism of its own;
// each stage lives in its package. cmd/tmon-probe parses flags and calls Run.
package probe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/capture"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/ring"
	"github.com/tmon-project/tmon/sieve"
	"github.com/tmon-project/tmon/transport"
)

// Options configure a probe run.
type Options struct {
	Config *conf.Config
	Name   string // the probe's name in the configuration
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
}

// Result summarises a finished run.
type Result struct {
	Sieve     sieve.Stats
	Analyser  analyse.Stats
	Transport transport.Stats
	Files     []capture.FileStats
	PDUs      uint64 // PDUs built (all types)
	Sightings uint64 // sightings put into PDUs
	PDUBytes  uint64 // bytes of sightings PDUs
}

// Run replays the capture files through the probe until they end (or ctx
// is cancelled), then waits until the collectors acknowledged everything.
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
	if len(o.Files) != len(p.Interfaces) {
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

	sv, err := sieve.Compile(cfg)
	if err != nil {
		return res, fmt.Errorf("probe %s: %w", p.Name, err)
	}
	// A paced replay returns now and then during long gaps so that the
	// sieve notices a shutdown.
	src, err := capture.OpenFiles(capture.FileConfig{Paths: o.Files, Speed: o.Speed, Idle: 100 * time.Millisecond, Logger: log})
	if err != nil {
		return res, fmt.Errorf("probe %s: %w", p.Name, err)
	}
	defer src.Close()
	wm := &watermark{src: src}

	addrs := make([]netip.AddrPort, len(cfg.Collectors))
	for i, c := range cfg.Collectors {
		addrs[i] = c.Address
	}
	out := newOutput(cfg.Transport.MaxPDUSize)
	sender, err := transport.NewSender(cfg.Transport, addrs, p.ID, newSession(), transport.SenderOptions{
		Logger:    log,
		DataClock: out.clock.Load,
	})
	if err != nil {
		return res, fmt.Errorf("probe %s: %w", p.Name, err)
	}
	out.sender = sender
	an, err := analyse.New(cfg, pi, out, analyse.Config{})
	if err != nil {
		return res, fmt.Errorf("probe %s: %w", p.Name, err)
	}
	log.Info("probe starting", "config", cfg.File, "version", cfg.Version, "files", o.Files,
		"collectors", addrs, "speed", o.Speed)
	out.event(time.Now().UnixNano(), "start", fmt.Sprintf("probe %s replaying %d file(s), config %s", p.Name, len(o.Files), cfg.Version))

	rg := ring.New[sieve.Record](o.RingSize)
	sieveErr := make(chan error, 1)
	go func() { sieveErr <- sv.Run(ctx, wm, rg, p.Core, sieve.Block) }()

	runErr := analyseLoop(ctx, rg, an, out, wm, cfg.Transport.MaxBuildTime)
	if err := <-sieveErr; err != nil && runErr == nil {
		runErr = fmt.Errorf("probe %s: sieve: %w", p.Name, err)
	}
	an.Close()
	res.Sieve = sv.Stats()
	res.Analyser = an.Stats()
	res.Files = src.Stats()
	out.event(time.Now().UnixNano(), "stop", fmt.Sprintf("packets=%d wanted=%d sightings=%d flows=%d",
		res.Sieve.Packets, res.Sieve.Wanted, res.Analyser.Sightings, res.Analyser.Flows))
	out.flush(wm.safe())
	res.PDUs, res.Sightings, res.PDUBytes = out.pdus, out.sightings, out.sightBytes

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

// analyseLoop is the analyser goroutine: it drains the ring into the
// analyser, closes PDUs that are full or older than maxBuild, and advances
// the data clock that heartbeats and PDU headers carry.
func analyseLoop(ctx context.Context, rg *ring.Ring[sieve.Record], an *analyse.Analyser, out *output, wm *watermark, maxBuild time.Duration) error {
	batch := make([]sieve.Record, 256)
	for {
		// Read the watermark before draining: every record of a packet
		// read before it is already in the ring.
		w := wm.safe()
		n := rg.PopN(batch)
		for i := 0; i < n; i++ {
			an.Packet(&batch[i])
		}
		if out.err != nil {
			return out.err
		}
		if n > 0 {
			out.maybeFlush(w, maxBuild)
			continue
		}
		// Ring empty: everything before w has been analysed.
		out.idle(w, maxBuild)
		wctx, cancel := context.WithTimeout(ctx, maxBuild/4+time.Millisecond)
		err := rg.Wait(wctx)
		cancel()
		switch {
		case errors.Is(err, ring.ErrClosed):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
	}
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

func newSession() uint32 {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return uint32(time.Now().UnixNano())
	}
	s := binary.BigEndian.Uint32(b[:])
	if s == 0 {
		s = 1
	}
	return s
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
var _ = pdu.TypeSightings
