// Package delayline is test tooling, outside tmon's data flow: a network
// emulator for kernels without netem. It sits in the middle of a lab path
// (internal/netlab's router namespace R), reads IP packets from a TUN
// device, holds each for a delay drawn from a configured distribution,
// drops, duplicates or reorders some, and writes them back to the TUN at
// their due time. Routing in R (policy routing on the input interface, see
// netlab.NewPath) sends A's traffic into the TUN and forwards what comes
// back out towards B.
//
// It records what it did to each packet (arrival, departure or `dropped`,
// the delay it meant to apply, and the packet's identity) so that tests can
// compare what tmon measured with what the path did. Its own times are
// user-space clock readings: the delay it applies is exact only to its
// scheduling error (tens of µs typically, ms under load), which is why the
// tests' exact truth is the difference of two kernel capture timestamps and
// this record is the explanation of it.
//
// Timing: pending packets wait in a heap ordered by due time. The writer
// sleeps until shortly before the earliest is due, then spins on the clock,
// because a Go timer alone wakes up late by up to a scheduler tick.
package delayline

import (
	"bufio"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// Config is the emulated path's behaviour.
type Config struct {
	// Delay is the mean delay; each packet gets Delay + U(-Jitter, +Jitter).
	Delay, Jitter time.Duration
	// Loss is the probability that a packet is dropped.
	Loss float64
	// Duplicate is the probability that a packet is written twice (the
	// copy DupGap after the original; default 100µs).
	Duplicate float64
	DupGap    time.Duration
	// Reorder is the probability that a packet is held ReorderExtra longer
	// than its drawn delay (default 5 ms), so that later packets pass it.
	// Jitter larger than the packet spacing reorders on its own.
	Reorder      float64
	ReorderExtra time.Duration
	// Seed makes the random choices repeatable; 0 picks one from the clock.
	Seed uint64
	// Spin is how long before a due time the writer stops sleeping and
	// spins on the clock (default 200µs; 0 keeps the default, negative
	// never spins).
	Spin time.Duration
	// Record, when set, receives one TSV line per packet (see RecordHeader).
	Record io.Writer
	// Now returns the time in ns since the Unix epoch (default: the wall
	// clock, the clock the kernel stamps captured packets with).
	Now func() int64
}

// RecordHeader is the first line of the record. One line per packet read
// (and one more per duplicate written):
//
//	arrival_ns    when the delay line read the packet (ns since the epoch)
//	departure_ns  when it wrote it back, or "dropped"
//	applied_ns    the delay it meant to apply (due − arrival), "-" if dropped
//	late_ns       departure − due: the scheduling error, "-" if dropped
//	action        sent, dropped, dup (the second copy), reordered (held longer)
//	proto ip_id sport dport seq   from the packet (seq: UDP test payload's
//	              sequence number or -1, TCP sequence number)
//	key           the packet's identity across hops (Info.Key), hex
const RecordHeader = "arrival_ns\tdeparture_ns\tapplied_ns\tlate_ns\taction\tproto\tip_id\tsport\tdport\tseq\tkey\n"

// Device is where packets come from and go back to: a TUN device, or a
// test double.
type Device interface {
	// ReadPacket reads one IP packet into buf. It returns an error once the
	// device is closed.
	ReadPacket(buf []byte) (int, error)
	WritePacket(p []byte) error
}

// Stats count what the line did.
type Stats struct {
	Read, Sent, Dropped, Duplicated, Reordered uint64
	WriteErrors                                uint64
	// MaxLate is the worst scheduling error (departure − due).
	MaxLate time.Duration
}

// Line is a running delay line.
type Line struct {
	cfg  Config
	dev  Device
	rng  *rand.Rand
	mu   sync.Mutex
	q    pending
	seq  uint64
	wake chan struct{}
	st   Stats
	rec  *bufio.Writer
}

type item struct {
	due, arrival, applied int64
	seq                   uint64 // arrival order: equal due times leave in order
	action                string
	pkt                   []byte
}

type pending []*item

func (q pending) Len() int { return len(q) }
func (q pending) Less(i, j int) bool {
	if q[i].due != q[j].due {
		return q[i].due < q[j].due
	}
	return q[i].seq < q[j].seq
}
func (q pending) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pending) Push(x any)   { *q = append(*q, x.(*item)) }
func (q *pending) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return it
}

// New returns a delay line on dev.
func New(cfg Config, dev Device) (*Line, error) {
	if cfg.Jitter < 0 || cfg.Delay < cfg.Jitter {
		return nil, fmt.Errorf("delayline: delay %v ± jitter %v: need 0 ≤ jitter ≤ delay", cfg.Delay, cfg.Jitter)
	}
	for name, p := range map[string]float64{"loss": cfg.Loss, "duplicate": cfg.Duplicate, "reorder": cfg.Reorder} {
		if p < 0 || p > 1 {
			return nil, fmt.Errorf("delayline: %s probability %v outside [0, 1]", name, p)
		}
	}
	if cfg.DupGap == 0 {
		cfg.DupGap = 100 * time.Microsecond
	}
	if cfg.ReorderExtra == 0 {
		cfg.ReorderExtra = 5 * time.Millisecond
	}
	if cfg.Spin == 0 {
		cfg.Spin = 200 * time.Microsecond
	}
	if cfg.Now == nil {
		cfg.Now = func() int64 { return time.Now().UnixNano() }
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	l := &Line{cfg: cfg, dev: dev, rng: rand.New(rand.NewPCG(cfg.Seed, 0x746d6f6e)), wake: make(chan struct{}, 1)}
	if cfg.Record != nil {
		l.rec = bufio.NewWriterSize(cfg.Record, 1<<16)
		if _, err := l.rec.WriteString(RecordHeader); err != nil {
			return nil, fmt.Errorf("delayline: record: %w", err)
		}
	}
	return l, nil
}

// Run moves packets until ctx ends or the device fails, then writes what
// is still pending (early: the record says so through late_ns < 0) and
// flushes the record. Closing the device is the caller's business; a
// device that is closed makes Run return.
func (l *Line) Run(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readErr := make(chan error, 1)
	go func() {
		readErr <- l.readLoop()
		cancel()
	}()
	werr := l.writeLoop(wctx)
	var rerr error
	select {
	case rerr = <-readErr:
		if ctx.Err() != nil {
			rerr = nil // the device closed as the caller stopped us
		}
	default:
		// The reader is blocked in the device; the caller's Close ends it.
	}
	l.mu.Lock()
	for l.q.Len() > 0 {
		l.send(heap.Pop(&l.q).(*item))
	}
	var ferr error
	if l.rec != nil {
		ferr = l.rec.Flush()
	}
	l.mu.Unlock()
	if ferr != nil {
		ferr = fmt.Errorf("delayline: record: %w", ferr)
	}
	return errors.Join(werr, rerr, ferr)
}

// Stats returns the counts so far.
func (l *Line) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

func (l *Line) readLoop() error {
	buf := make([]byte, 65536)
	for {
		n, err := l.dev.ReadPacket(buf)
		if err != nil {
			return fmt.Errorf("delayline: read: %w", err)
		}
		now := l.cfg.Now()
		pkt := append([]byte(nil), buf[:n]...)
		l.mu.Lock()
		l.st.Read++
		l.schedule(now, pkt)
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// schedule draws the packet's fate; l.mu is held.
func (l *Line) schedule(now int64, pkt []byte) {
	l.seq++
	if l.cfg.Loss > 0 && l.rng.Float64() < l.cfg.Loss {
		// Dropped packets go through the heap too (due now), so that the
		// record is written by one goroutine in departure order.
		heap.Push(&l.q, &item{due: now, arrival: now, seq: l.seq, action: "dropped", pkt: pkt})
		return
	}
	d := int64(l.cfg.Delay)
	if l.cfg.Jitter > 0 {
		d += l.rng.Int64N(2*int64(l.cfg.Jitter)+1) - int64(l.cfg.Jitter)
	}
	action := "sent"
	if l.cfg.Reorder > 0 && l.rng.Float64() < l.cfg.Reorder {
		d += int64(l.cfg.ReorderExtra)
		action = "reordered"
	}
	heap.Push(&l.q, &item{due: now + d, arrival: now, applied: d, seq: l.seq, action: action, pkt: pkt})
	if l.cfg.Duplicate > 0 && l.rng.Float64() < l.cfg.Duplicate {
		l.seq++
		dd := d + int64(l.cfg.DupGap)
		heap.Push(&l.q, &item{due: now + dd, arrival: now, applied: dd, seq: l.seq, action: "dup", pkt: pkt})
	}
}

func (l *Line) writeLoop(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		l.mu.Lock()
		var next *item
		if l.q.Len() > 0 {
			next = l.q[0]
		}
		l.mu.Unlock()
		if next == nil {
			select {
			case <-l.wake:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		wait := time.Duration(next.due - l.cfg.Now())
		if wait > l.cfg.Spin {
			// Sleep, but wake for a newcomer: it may be due earlier.
			timer.Reset(wait - max(l.cfg.Spin, 0))
			select {
			case <-timer.C:
			case <-l.wake:
				if !timer.Stop() {
					<-timer.C
				}
			case <-ctx.Done():
				return nil
			}
			continue
		}
		for l.cfg.Now() < next.due {
			// Spin: the last stretch is shorter than a timer's precision.
		}
		l.mu.Lock()
		// The head may have changed while we spun (an earlier due time
		// arrived): send whatever is due now.
		for l.q.Len() > 0 && l.q[0].due <= l.cfg.Now() {
			l.send(heap.Pop(&l.q).(*item))
		}
		l.mu.Unlock()
	}
}

// send writes (or drops) one packet and records it; l.mu is held. The
// lock is held across the device write: it is a non-blocking TUN write,
// and the reader only needs the lock after a read.
func (l *Line) send(it *item) {
	in, _ := Parse(it.pkt)
	if it.action == "dropped" {
		l.st.Dropped++
		l.record(it.arrival, "dropped", "-", "-", it.action, in)
		return
	}
	err := l.dev.WritePacket(it.pkt)
	dep := l.cfg.Now()
	if err != nil {
		l.st.WriteErrors++
		l.record(it.arrival, "dropped", "-", "-", "write-error", in)
		return
	}
	switch it.action {
	case "dup":
		l.st.Duplicated++
	case "reordered":
		l.st.Reordered++
	}
	l.st.Sent++
	late := time.Duration(dep - it.due)
	l.st.MaxLate = max(l.st.MaxLate, late)
	l.record(it.arrival, fmt.Sprint(dep), fmt.Sprint(it.applied), fmt.Sprint(int64(late)), it.action, in)
}

func (l *Line) record(arrival int64, dep, applied, late, action string, in Info) {
	if l.rec == nil {
		return
	}
	fmt.Fprintf(l.rec, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%016x\n",
		arrival, dep, applied, late, action, in.Proto, in.IPID, in.Sport, in.Dport, in.Seq, in.Key)
}
