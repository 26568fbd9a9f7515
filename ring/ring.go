// Package ring is the lock-free single-producer/single-consumer queue between
// the sieve (producer, one pinned goroutine) and the analyser (consumer): the
// sieve copies a fixed-size record of every wanted packet into the ring and
// never waits on the analyser's locks.
//
// The ring is a power-of-two array of values and two monotonically growing
// indexes, head (next slot to read, written only by the consumer) and tail
// (next slot to write, written only by the producer), each on its own cache
// line so that the two cores do not invalidate each other's lines on every
// operation. Each side also keeps a private cached copy of the other side's
// index and rereads the shared one only when the cache says the ring looks
// full (producer) or empty (consumer).
package ring

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"time"
)

// cacheLine is the padding unit: 64 bytes on amd64 and arm64 cores, 128 bytes
// covers adjacent-line prefetching on recent Intel parts.
const cacheLine = 128

// ErrClosed is returned by Wait when the producer has closed the ring and
// every value pushed before Close has been popped.
var ErrClosed = errors.New("ring: closed")

// Ring is a bounded FIFO of T for exactly one producer goroutine (Push,
// Close) and one consumer goroutine (Pop, PopN, Wait). Len, Cap and Closed
// may be called from anywhere. Values are copied in and out; the ring never
// allocates after New. The zero Ring is not usable: call New.
type Ring[T any] struct {
	_          [cacheLine]byte
	head       atomic.Uint64 // next index to read; written by the consumer only
	_          [cacheLine - 8]byte
	tail       atomic.Uint64 // next index to write; written by the producer only
	_          [cacheLine - 8]byte
	cachedHead uint64 // producer's last view of head
	_          [cacheLine - 8]byte
	cachedTail uint64 // consumer's last view of tail
	_          [cacheLine - 8]byte
	closed     atomic.Bool
	mask       uint64
	buf        []T
	_          [cacheLine]byte
}

// New returns an empty ring holding up to size values. size must be a power
// of two ≥ 2; New panics otherwise (a programming error).
func New[T any](size int) *Ring[T] {
	if size < 2 || size&(size-1) != 0 {
		panic("ring: size must be a power of two >= 2")
	}
	return &Ring[T]{mask: uint64(size - 1), buf: make([]T, size)}
}

// Cap returns the number of slots.
func (r *Ring[T]) Cap() int { return len(r.buf) }

// Len returns the number of values waiting. It is exact only when called by
// the producer or the consumer while the other side is idle.
func (r *Ring[T]) Len() int {
	t := r.tail.Load()
	h := r.head.Load()
	if t < h { // head overtook our stale tail read
		return 0
	}
	return int(t - h)
}

// Push copies *v into the ring and reports whether there was room. It never
// blocks and does not allocate. Producer only; pushing after Close is a
// programming error (the consumer may already have stopped).
func (r *Ring[T]) Push(v *T) bool {
	t := r.tail.Load() // own index: no contention
	if t-r.cachedHead > r.mask {
		r.cachedHead = r.head.Load()
		if t-r.cachedHead > r.mask {
			return false
		}
	}
	r.buf[t&r.mask] = *v
	r.tail.Store(t + 1) // publishes the slot (release)
	return true
}

// Pop copies the oldest value into *v and reports whether there was one. It
// never blocks and does not allocate. Consumer only.
func (r *Ring[T]) Pop(v *T) bool {
	h := r.head.Load()
	if h == r.cachedTail {
		r.cachedTail = r.tail.Load() // acquire: slots below tail are written
		if h == r.cachedTail {
			return false
		}
	}
	*v = r.buf[h&r.mask]
	r.head.Store(h + 1) // hands the slot back to the producer
	return true
}

// PopN copies up to len(dst) of the oldest values into dst and returns how
// many it copied (0 when the ring is empty). One atomic store releases them
// all. Consumer only.
func (r *Ring[T]) PopN(dst []T) int {
	h := r.head.Load()
	avail := r.cachedTail - h
	if avail == 0 || avail < uint64(len(dst)) {
		r.cachedTail = r.tail.Load()
		avail = r.cachedTail - h
	}
	n := uint64(len(dst))
	if avail < n {
		n = avail
	}
	if n == 0 {
		return 0
	}
	start := h & r.mask
	first := uint64(len(r.buf)) - start // slots before the wrap
	if first >= n {
		copy(dst[:n], r.buf[start:start+n])
	} else {
		copy(dst[:first], r.buf[start:])
		copy(dst[first:n], r.buf[:n-first])
	}
	r.head.Store(h + n)
	return int(n)
}

// Close tells the consumer that no value will follow the ones already
// pushed. Producer only; safe to call more than once.
func (r *Ring[T]) Close() { r.closed.Store(true) }

// Closed reports whether Close was called (values may still be waiting).
func (r *Ring[T]) Closed() bool { return r.closed.Load() }

// Backoff tuning of Wait and WaitRoom: spin this many times rereading the
// index, then yield the processor this many times, then sleep starting at
// minSleep and doubling up to maxSleep.
const (
	spins    = 64
	yields   = 64
	minSleep = 20 * time.Microsecond
	maxSleep = time.Millisecond
)

// Wait blocks the consumer until at least one value can be popped (nil), the
// ring is closed and drained (ErrClosed), or ctx is done (ctx.Err()). It
// spins briefly, then yields with runtime.Gosched, then sleeps with an
// exponential backoff from 20 µs to 1 ms: latency stays in microseconds under
// load and an idle consumer costs next to no CPU. Consumer only.
func (r *Ring[T]) Wait(ctx context.Context) error {
	return backoff(ctx, func() (bool, error) {
		if r.tail.Load() != r.head.Load() {
			return true, nil
		}
		if r.closed.Load() {
			// Close happens after the producer's last Push: reread tail.
			if r.tail.Load() != r.head.Load() {
				return true, nil
			}
			return true, ErrClosed
		}
		return false, nil
	})
}

// WaitRoom blocks the producer until at least one slot is free (nil) or ctx
// is done (ctx.Err()), with the same backoff as Wait. Producer only.
func (r *Ring[T]) WaitRoom(ctx context.Context) error {
	return backoff(ctx, func() (bool, error) {
		return r.tail.Load()-r.head.Load() <= r.mask, nil
	})
}

// backoff polls ready with the spin / yield / sleep strategy described at
// Wait until it reports done or ctx is done.
func backoff(ctx context.Context, ready func() (bool, error)) error {
	for i := 0; ; i++ {
		if ok, err := ready(); ok {
			return err
		}
		switch {
		case i < spins:
			// busy poll: the other side is usually a few hundred ns away
		case i < spins+yields:
			if err := ctx.Err(); err != nil {
				return err
			}
			runtime.Gosched()
		default:
			if err := ctx.Err(); err != nil {
				return err
			}
			d := minSleep << min(i-spins-yields, 6)
			if d > maxSleep {
				d = maxSleep
			}
			time.Sleep(d)
		}
	}
}
