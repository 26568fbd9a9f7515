package capture

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// FileConfig configures a [FileSource].
type FileConfig struct {
	// Paths are the capture files, one per probe interface: every packet
	// of Paths[i] is delivered with Iface i, including every pcapng
	// interface of that file (each packet keeps its own link type).
	// At least 1, at most 256.
	Paths []string

	// Speed is the replay speed. 0 (the default) reads as fast as the
	// consumer takes packets. A positive value paces the replay at the
	// original timing divided by Speed: the first packet is delivered at
	// once, each next one at start + (ts − ts0) / Speed. 1 is real time,
	// 10 is ten times faster.
	Speed float64

	// Realtime, with Speed 1, delivers each packet at the wall-clock time
	// of its own stamp (a packet already due at once): a capture made for
	// the coming minutes replays as if live, its data time the wall
	// clock's, as in tests of a switch at a given instant.
	Realtime bool

	// Idle, in paced mode, bounds how long one ReadPacket waits for the
	// next packet to be due: after Idle it returns ErrIdle (a timeout
	// error) so that the caller can check for shutdown and read Clock,
	// and the packet is delivered by a later call. 0 waits as long as the
	// capture's gap (Close still interrupts the wait).
	Idle time.Duration

	// Map maps each uncompressed regular file into memory instead of
	// reading it: a packet's bytes are then the page cache's own, not a
	// copy made by read(2). That is not always faster: on a virtual
	// machine that fills its shadow page tables on first touch, reading
	// in cache-sized chunks cost `tmon owd` less (readChunk). Only for
	// files nothing writes while they are read: the mapping has the size
	// the file had at open (a file growing meanwhile is read up to that
	// size), and a file cut shorter under the mapping makes touching the
	// lost pages fault (SIGBUS, a runtime panic under
	// debug.SetPanicOnFault). A file that cannot be mapped is read.
	Map bool

	// Logger receives warnings (a truncated file). nil means slog.Default().
	Logger *slog.Logger
}

// ErrIdle is returned by a paced FileSource whose next packet is not due
// within FileConfig.Idle. Its Timeout method reports true, like a network
// timeout; reading again continues the replay.
var ErrIdle error = idleError{}

type idleError struct{}

func (idleError) Error() string { return "capture: no packet due yet" }
func (idleError) Timeout() bool { return true }

// FileStats counts what one capture file delivered.
type FileStats struct {
	Path      string
	Format    string // FormatPcap, FormatPcapNs, FormatPcapNg or FormatGzip
	Packets   uint64 // records delivered
	Bytes     uint64 // captured bytes delivered
	Truncated bool   // the file ended inside a record, which was dropped
	Behind    uint64 // records stamped before a packet already delivered: not delivered
}

// FileSource replays capture files as a probe's interfaces. It merges the
// files in timestamp order (ties go to the lower interface index; a file
// whose own stamps go backwards is delivered in its order, but a record
// stamped before a packet already delivered is not delivered: the probe has
// reported its clock that far, and the collector would count it late, or a
// partner of it missed. Such records are counted (FileStats.Behind) and
// logged; the rule depends only on the files, so every probe replaying the
// same capture leaves out the same records, at any speed). It is read by one
// goroutine; Clock, Stats and Close may be called from any goroutine.
//
// A file that ends inside a record is counted as truncated (Stats, and a
// warning in the log) and treated as ended. Any other read error stops the
// source: ReadPacket returns it, naming the file, the packet number and the
// offset, from then on.
type FileSource struct {
	files    []*fileReader
	heads    []head
	speed    float64
	realtime bool
	idle     time.Duration
	log      *slog.Logger
	primed   bool  // heads were read once
	last     int   // index of the file whose head was delivered last, or -1
	err      error // sticky: io.EOF, a read error or ErrClosed

	// Pacing: wall times are offsets from base, a monotonic reading.
	base     time.Time
	timer    *time.Timer
	started  atomic.Bool
	ts0      atomic.Int64 // stamp of the first packet delivered
	startOff atomic.Int64 // wall offset at which it was delivered
	clock    atomic.Int64 // highest stamp delivered
	// next bounds the stamp of the next packet to deliver: the head that
	// was not yet due, the last one delivered (the next is not earlier,
	// in a file in time order), MaxInt64 after the last.
	next atomic.Int64

	done      chan struct{}
	closeOnce sync.Once
}

// head is the next packet of one file, waiting for its turn in the merge.
type head struct {
	pkt  Packet
	done bool
}

// OpenFiles opens the capture files of cfg and reads their headers. The files
// stay open until Close.
func OpenFiles(cfg FileConfig) (*FileSource, error) {
	if len(cfg.Paths) == 0 {
		return nil, errors.New("capture: open files: no file given")
	}
	if len(cfg.Paths) > math.MaxUint8+1 {
		return nil, fmt.Errorf("capture: open files: %d files, at most %d interfaces", len(cfg.Paths), math.MaxUint8+1)
	}
	if cfg.Idle < 0 {
		return nil, fmt.Errorf("capture: open files: negative idle %v", cfg.Idle)
	}
	if cfg.Speed < 0 || math.IsNaN(cfg.Speed) || math.IsInf(cfg.Speed, 0) {
		return nil, fmt.Errorf("capture: open files: invalid speed %v (0 for full speed, > 0 for paced)", cfg.Speed)
	}
	if cfg.Realtime && cfg.Speed != 1 {
		return nil, fmt.Errorf("capture: open files: a realtime replay is at speed 1, not %v", cfg.Speed)
	}
	s := &FileSource{
		files: make([]*fileReader, 0, len(cfg.Paths)),
		heads: make([]head, len(cfg.Paths)),
		speed: cfg.Speed, realtime: cfg.Realtime,
		idle: cfg.Idle,
		log:  cfg.Logger,
		last: -1,
		base: time.Now(),
		done: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, p := range cfg.Paths {
		r, err := openFile(p, cfg.Map)
		if err != nil {
			s.Close()
			var pe *fs.PathError
			if errors.As(err, &pe) && pe.Path == p {
				return nil, fmt.Errorf("capture: %w", err) // names the file already
			}
			return nil, fmt.Errorf("capture: open %s: %w", p, err)
		}
		s.files = append(s.files, r)
	}
	return s, nil
}

// ReadPacket implements [Source]. data is valid until the next call to
// ReadPacket, Next or Close.
func (s *FileSource) ReadPacket() (data []byte, ts int64, iface uint8, linkType uint16, err error) {
	var p Packet
	if err := s.Next(&p); err != nil {
		return nil, 0, 0, 0, err
	}
	return p.Data, p.TS, p.Iface, p.LinkType, nil
}

// Next fills p with the next packet in timestamp order, waiting for its time
// in paced mode. p.Data is valid until the next call to ReadPacket, Next or
// Close. It returns io.EOF after the last packet of every file.
func (s *FileSource) Next(p *Packet) error {
	if s.err != nil {
		return s.err
	}
	if s.isClosed() {
		s.err = ErrClosed
		return s.err
	}
	// Refill the head delivered last: that overwrites its file's buffer,
	// which is why data lives only until the next call.
	if !s.primed {
		for i := range s.files {
			if err := s.advance(i); err != nil {
				return s.fail(err)
			}
		}
		s.primed = true
	} else if s.last >= 0 {
		if err := s.advance(s.last); err != nil {
			return s.fail(err)
		}
	}
	best := s.head()
	for best >= 0 && s.heads[best].pkt.TS < s.clock.Load() {
		f := s.files[best]
		if f.behind.Add(1) == 1 {
			s.log.Warn("capture file: record stamped before a packet already delivered; such records are left out and counted",
				"file", f.path, "ts", s.heads[best].pkt.TS, "clock", s.clock.Load())
		}
		if err := s.advance(best); err != nil {
			return s.fail(err)
		}
		best = s.head()
	}
	s.last = -1
	if best < 0 {
		s.next.Store(math.MaxInt64)
		s.err = io.EOF
		return s.err
	}
	s.next.Store(s.heads[best].pkt.TS)
	if s.speed > 0 {
		due, err := s.pace(s.heads[best].pkt.TS)
		if err != nil {
			return s.fail(err)
		}
		if !due {
			return ErrIdle // the head stays for the next call
		}
	}
	s.last = best
	*p = s.heads[best].pkt
	if p.TS > s.clock.Load() {
		s.clock.Store(p.TS)
	}
	return nil
}

// head returns the file whose head packet is the earliest, or -1 when
// every file has ended.
func (s *FileSource) head() int {
	best := -1
	for i := range s.heads {
		if !s.heads[i].done && (best < 0 || s.heads[i].pkt.TS < s.heads[best].pkt.TS) {
			best = i
		}
	}
	return best
}

// advance reads the next packet of file i into its head.
func (s *FileSource) advance(i int) error {
	h := &s.heads[i]
	data, ts, wire, link, err := s.files[i].next()
	switch {
	case err == nil:
		h.pkt = Packet{
			Data:     data,
			TS:       ts,
			Iface:    uint8(i),
			LinkType: link,
			CapLen:   len(data),
			WireLen:  wire,
		}
		return nil
	case err == io.EOF:
		h.done = true
		return nil
	case errors.Is(err, ErrTruncated):
		h.done = true
		s.log.Warn("capture file truncated: last record dropped", "err", err)
		return nil
	}
	return err
}

func (s *FileSource) fail(err error) error {
	if s.isClosed() {
		err = ErrClosed // reading a file closed under us
	} else if err != ErrClosed {
		err = fmt.Errorf("capture: %w", err)
	}
	s.err = err
	return err
}

// pace waits until the wall time at which a packet stamped ts is due. It
// reports false when that is more than s.idle away and it waited s.idle.
func (s *FileSource) pace(ts int64) (bool, error) {
	if !s.started.Load() {
		s.ts0.Store(ts)
		s.startOff.Store(int64(time.Since(s.base)))
		if s.realtime {
			// Due at its stamp: base's wall reading plus the offset.
			s.startOff.Store(ts - s.base.UnixNano())
		}
		s.started.Store(true)
		if !s.realtime {
			return true, nil
		}
	}
	due := time.Duration(s.startOff.Load()) + time.Duration(float64(ts-s.ts0.Load())/s.speed)
	if s.idle > 0 {
		if now := time.Since(s.base); due-now > s.idle {
			return false, s.waitUntil(now + s.idle)
		}
	}
	return true, s.waitUntil(due)
}

// spinWindow is how long before a deadline pacing stops sleeping and spins:
// timers wake up tens of microseconds late, a spin does not.
const spinWindow = 100 * time.Microsecond

// waitUntil returns once time.Since(s.base) ≥ due, or ErrClosed.
func (s *FileSource) waitUntil(due time.Duration) error {
	if d := due - time.Since(s.base) - spinWindow; d > 0 {
		if s.timer == nil {
			s.timer = time.NewTimer(d)
		} else {
			s.timer.Reset(d)
		}
		select {
		case <-s.timer.C:
		case <-s.done:
			s.timer.Stop()
			return ErrClosed
		}
	}
	for time.Since(s.base) < due {
		if s.isClosed() {
			return ErrClosed
		}
	}
	return nil
}

// Clock implements [Source]. At full speed it is the highest stamp delivered
// so far; in paced mode it is the original time that corresponds to the wall
// clock now, ts0 + elapsed × Speed, so it keeps advancing through idle gaps
// of the capture — but never past the next packet to deliver: a replay
// that falls behind the wall clock (a stalled or starved process) would
// otherwise promise that packets it has not read yet will not come.
// Never less than the highest stamp delivered.
func (s *FileSource) Clock() int64 {
	c := s.clock.Load()
	if s.speed > 0 && s.started.Load() {
		elapsed := time.Since(s.base) - time.Duration(s.startOff.Load())
		if now := min(s.ts0.Load()+int64(float64(elapsed)*s.speed), s.next.Load()); now > c {
			c = now
		}
	}
	return c
}

// Stats returns the counters of every file, in interface order.
func (s *FileSource) Stats() []FileStats {
	out := make([]FileStats, len(s.files))
	for i, f := range s.files {
		out[i] = f.stats()
	}
	return out
}

func (s *FileSource) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Close closes the files and makes a waiting or later ReadPacket return
// ErrClosed.
func (s *FileSource) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		close(s.done)
		for _, f := range s.files {
			if err := f.close(); err != nil {
				errs = append(errs, fmt.Errorf("capture: close %s: %w", f.path, err))
			}
		}
	})
	return errors.Join(errs...)
}
