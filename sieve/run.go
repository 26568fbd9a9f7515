package sieve

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"sync/atomic"

	"github.com/tmon-project/tmon/ring"
)

// Source is what Run reads frames from (capture.Source satisfies it). It is
// read by the sieve goroutine only.
//
// ReadPacket returns the next frame as captured, its capture time in ns
// since the Unix epoch, the probe interface index and the pcap LINKTYPE_*
// value. data stays valid until the next call. io.EOF ends the input. A live
// source should return now and then even without traffic, with nil data and
// a nil error or with an error whose Timeout method reports true, so that
// Run can notice ctx being cancelled; those are not counted as packets.
type Source interface {
	ReadPacket() (data []byte, ts int64, iface uint8, linkType uint16, err error)
}

// FullPolicy says what Run does when the ring to the analyser is full.
type FullPolicy uint8

const (
	// Block waits (spin, yield, then sleep with backoff) until the analyser
	// makes room: lossless, the policy for file replay. Every wait counts
	// once in Stats.RingFull; on live capture the backlog then builds up in
	// the kernel ring, whose drops the capture stage reports.
	Block FullPolicy = iota
	// Drop discards the record and counts it in Stats.RingDrops (and
	// RingFull): the sieve never stalls. For live capture when the kernel
	// ring must be kept drained.
	Drop
)

// publishEvery is how many packets Run handles between two updates of the
// counters LiveStats reads.
const publishEvery = 4096

// Run is the sieve goroutine's loop: it reads frames from src, passes each
// through Packet and pushes the records of wanted packets to out, until src
// returns io.EOF (Run returns nil), another error (returned, wrapped) or ctx
// is cancelled (ctx.Err()). It closes out when it returns, so the analyser's
// ring.Wait ends with ring.ErrClosed after the last record.
//
// Run locks its goroutine to an OS thread; when core ≥ 0 it pins that thread
// to the CPU core with sched_setaffinity (a failure is logged as a warning
// and Run continues unpinned) and restores the thread's previous affinity
// before it returns. Call it on a goroutine of its own; it must be the only
// producer of out.
func (s *Sieve) Run(ctx context.Context, src Source, out *ring.Ring[Record], core int, full FullPolicy) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if core >= 0 {
		restore, err := pin(core)
		if err != nil {
			slog.Warn("sieve: cannot pin to core; running unpinned", "core", core, "err", err)
		} else {
			defer restore()
		}
	}
	defer out.Close()
	defer s.publish()

	var rec Record
	done := ctx.Done()
	for n := 0; ; n++ {
		if n%publishEvery == 0 {
			s.publish()
			select {
			case <-done:
				return ctx.Err()
			default:
			}
		}
		data, ts, iface, lt, err := src.ReadPacket()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			var to interface{ Timeout() bool }
			if errors.As(err, &to) && to.Timeout() {
				n = -1 // check ctx and publish at once
				continue
			}
			return err
		}
		if data == nil {
			n = -1
			continue
		}
		if ok, _ := s.Packet(data, ts, iface, lt, &rec); !ok {
			continue
		}
		if rec.Flags&FlagPayload != 0 {
			keep, err := s.handOn(ctx, out, &rec, full)
			if err != nil {
				return err
			}
			if !keep {
				continue
			}
		}
		if out.Push(&rec) {
			continue
		}
		s.st.RingFull++
		if full == Drop {
			s.st.RingDrops++
			continue
		}
		s.publish()
		for !out.Push(&rec) {
			if err := out.WaitRoom(ctx); err != nil {
				return err
			}
		}
	}
}

// handOn pushes the payload of rec to the payload ring, with room for rec
// in out, so that the analyser finds each payload right after popping
// its record. It reports false when rec is dropped (Drop policy, out
// full); a payload that does not fit is not handed on (the flag cleared,
// counted), the record still is.
func (s *Sieve) handOn(ctx context.Context, out *ring.Ring[Record], rec *Record, full FullPolicy) (bool, error) {
	if s.payloads == nil {
		rec.Flags &^= FlagPayload
		return true, nil
	}
	for out.Len() >= out.Cap() {
		if full == Drop {
			s.st.RingFull++
			s.st.RingDrops++
			return false, nil
		}
		s.publish()
		if err := out.WaitRoom(ctx); err != nil {
			return false, err
		}
	}
	p := &s.hand
	p.N = uint16(copy(p.B[:], s.pay[:s.payN]))
	for !s.payloads.Push(p) {
		if full == Drop {
			s.payDrops++
			rec.Flags &^= FlagPayload
			return true, nil
		}
		if err := s.payloads.WaitRoom(ctx); err != nil {
			return false, err
		}
	}
	return true, nil
}

// published is the copy of Stats that other goroutines read.
type published struct {
	c [14]atomic.Uint64
}

func (s *Sieve) publish() {
	st := &s.st
	v := [14]uint64{st.Packets, st.Wanted, st.Unwanted, st.NotIP, st.UnsupportedLink, st.Truncated,
		st.Malformed, st.Fragments, st.ICMPErrors, st.Short, st.Signed, st.RingFull, st.RingDrops, st.Held}
	for i := range v {
		s.pub.c[i].Store(v[i])
	}
}

// LiveStats returns the counters as last published by Run (every few
// thousand packets, whenever the source is idle, when the ring is full and at
// the end). It is safe to call from any goroutine while Run runs.
func (s *Sieve) LiveStats() Stats {
	var v [14]uint64
	for i := range v {
		v[i] = s.pub.c[i].Load()
	}
	return Stats{Packets: v[0], Wanted: v[1], Unwanted: v[2], NotIP: v[3], UnsupportedLink: v[4],
		Truncated: v[5], Malformed: v[6], Fragments: v[7], ICMPErrors: v[8], Short: v[9], Signed: v[10],
		RingFull: v[11], RingDrops: v[12], Held: v[13]}
}
