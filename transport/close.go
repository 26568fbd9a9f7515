package transport

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tmon-project/tmon/pdu"
)

// Close stops taking PDUs, waits until every collector has acked or given
// up everything (or ctx ends), then sends a Bye to every collector and
// waits for its acks (or ctx), stops and returns the final counters.
//
// When ctx ends first, collectors are redundant: if at least one acked
// everything, the others only missed what it holds, so Close says in the
// log which collector missed which seqs, gives the complete ones their Bye
// (acked, within ByeGrace), sends the others one Bye without waiting, and
// returns no error. When none acked everything, the Bye is still sent once
// to each, and the error is ctx's.
func (s *Sender) Close(ctx context.Context) (Stats, error) {
	return s.close(ctx, false)
}

// Continue closes as Close does, with a Bye that tells the collectors a new
// session of the probe follows at once (pdu.ByeContinues): they keep
// waiting for the probe's data instead of taking it for ended.
func (s *Sender) Continue(ctx context.Context) (Stats, error) {
	return s.close(ctx, true)
}

func (s *Sender) close(ctx context.Context, continues bool) (Stats, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.Stats(), ErrClosed
	}
	s.closed, s.continues = true, continues
	s.mu.Unlock()

	err := s.drain(ctx)
	if err != nil {
		if done := s.complete(); len(done) > 0 {
			return s.closeRedundant(done)
		}
	}
	s.mu.Lock()
	byeSeq := s.nextSeq // the Bye's seq, whether it goes through the queues or not
	s.bye = true
	s.mu.Unlock()
	if err == nil {
		h := pdu.Header{Type: pdu.TypeBye, ProbeTime: s.clock()}
		s.mu.Lock()
		_, err = s.submit(pdu.AppendBye(nil, h, s.continues), h)
		s.mu.Unlock()
		if err == nil {
			err = s.drain(ctx)
		}
	}
	if err != nil {
		// Best effort: one Bye to every collector, in its next slot.
		for _, p := range s.peers {
			p.sendByeNow(byeSeq)
		}
	}
	close(s.stop)
	for _, p := range s.peers {
		p.conn.Close() // unblocks readAcks
	}
	s.wg.Wait()
	st := s.Stats()
	for _, c := range st.Collectors {
		s.log.Info("transport: sender closed", "collector", c.Collector, "sent", c.Sent, "retried", c.Retried,
			"acked", c.Acked, "given_up", c.GivenUp, "pending", c.Pending)
	}
	return st, err
}

// ByeGrace bounds the wait for the Bye's ack from the collectors that
// acked everything, once the drain ended with others still owing acks.
const ByeGrace = 5 * time.Second

// complete returns the collectors that have nothing outstanding.
func (s *Sender) complete() []*peer {
	var out []*peer
	for _, p := range s.peers {
		p.mu.Lock()
		if len(p.pending)+p.queue.len() == 0 {
			out = append(out, p)
		}
		p.mu.Unlock()
	}
	return out
}

// closeRedundant ends the session when the collectors done acked
// everything and the others did not (see Close).
func (s *Sender) closeRedundant(done []*peer) (Stats, error) {
	for _, p := range s.peers {
		if slices.Contains(done, p) {
			continue
		}
		p.mu.Lock()
		first, last := uint32(0), uint32(0)
		for _, e := range p.pending {
			if first == 0 || e.Seq < first {
				first = e.Seq
			}
			last = max(last, e.Seq)
		}
		n := len(p.pending) + p.queue.len()
		p.mu.Unlock()
		names := make([]string, len(done))
		for i, d := range done {
			names[i] = d.addr.String()
		}
		p.log.Warn("transport: redundant collector missed PDUs; the others hold every one", "missed", n,
			"seqs", fmt.Sprintf("%d-%d", first, last), "complete", names)
	}
	s.mu.Lock()
	byeSeq := s.nextSeq
	s.bye = true
	h := pdu.Header{Type: pdu.TypeBye, ProbeTime: s.clock()}
	b := pdu.AppendBye(nil, h, s.continues)
	var err error
	if s.nextSeq == math.MaxUint32 {
		err = ErrSeqExhausted
	} else {
		// To the complete collectors only; the others get it once below.
		s.nextSeq++
		pk := s.pool.get()
		pk.buf = append(pk.buf[:0], b...)
		pk.refs.Store(int32(len(done)))
		for _, p := range done {
			p.enqueue(pk, byeSeq, h, time.Now(), nil)
		}
	}
	s.mu.Unlock()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), ByeGrace)
		err = s.drainPeers(ctx, done)
		cancel()
	}
	for _, p := range s.peers {
		if err != nil || !slices.Contains(done, p) {
			p.sendByeNow(byeSeq)
		}
	}
	close(s.stop)
	for _, p := range s.peers {
		p.conn.Close()
	}
	s.wg.Wait()
	st := s.Stats()
	for _, c := range st.Collectors {
		s.log.Info("transport: sender closed", "collector", c.Collector, "sent", c.Sent, "retried", c.Retried,
			"acked", c.Acked, "given_up", c.GivenUp, "pending", c.Pending)
	}
	if err != nil {
		return st, fmt.Errorf("transport: bye to the complete collectors: %w", err)
	}
	return st, nil
}

// drain waits until no collector has anything outstanding.
func (s *Sender) drain(ctx context.Context) error { return s.drainPeers(ctx, s.peers) }

// drainPeers waits until none of peers has anything outstanding.
func (s *Sender) drainPeers(ctx context.Context, peers []*peer) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		idle := true
		for _, p := range peers {
			p.mu.Lock()
			if len(p.pending)+p.queue.len() > 0 {
				idle = false
			}
			p.mu.Unlock()
		}
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
