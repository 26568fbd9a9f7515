package collector

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tmon-project/tmon/internal/killpoint"
	"github.com/tmon-project/tmon/spool"
)

// Durability (docs/transport.md, "Acknowledged means durable"). A PDU is
// acked only once its journal record is on disk: the receiver hands every
// ack to HoldAck, and the syncer goroutine, woken by it, syncs the journal
// and sends every ack held before the sync began — one fsync for all the
// PDUs that arrived while the previous one ran (group commit), so
// throughput does not depend on the disk's fsync latency.
//
// A write error (disk full) stops acknowledgement: the PDU whose record
// failed is kept in memory (it is handled) and written before anything
// else; until that succeeds, new PDUs are refused unhandled (the probe
// retries) and no ack leaves. The first failure raises a
// journal.write_error event (logged, and in the events spool once it can be
// written), the recovery a journal.recovered event.

// errNotDurable refuses a PDU while the journal cannot be written.
var errNotDurable = errors.New("collector: journal cannot be written (disk full?): PDU not taken")

type heldAck struct {
	b  []byte
	to netip.AddrPort
}

// HoldAck keeps the ack of a PDU just handled (or of a duplicate) until
// the journal is synced past it.
func (c *Collector) HoldAck(ack []byte, to netip.AddrPort) {
	if c.j == nil || c.rcv == nil {
		if c.rcv != nil {
			c.rcv.SendAck(ack, to)
		}
		return
	}
	c.ackMu.Lock()
	if n := len(c.held); n < cap(c.held) {
		// The syncer hands back the array of the batch it sent: its
		// buffers are reused (no allocation per PDU).
		c.held = c.held[:n+1]
		h := &c.held[n]
		h.b, h.to = append(h.b[:0], ack...), to
	} else {
		c.held = append(c.held, heldAck{append([]byte(nil), ack...), to})
	}
	c.ackMu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// syncer syncs the journal whenever acks are held, then sends them.
func (c *Collector) syncer(done <-chan struct{}) {
	var batch []heldAck
	for {
		select {
		case <-done:
			return
		case <-c.kick:
		}
		c.ackMu.Lock()
		batch, c.held = c.held, batch[:0]
		c.ackMu.Unlock()
		if len(batch) == 0 {
			continue
		}
		c.mu.Lock()
		err := c.j.flushPending()
		c.journalHealth(err)
		c.mu.Unlock()
		if err == nil {
			c.syncMu.Lock()
			err = c.j.sync()
			c.syncMu.Unlock()
			if err != nil {
				c.mu.Lock()
				c.journalHealth(fmt.Errorf("collector: journal sync: %w", err))
				c.mu.Unlock()
			}
		}
		if err != nil {
			// Not durable: no ack. The probes send the PDUs again; their
			// duplicates are acked once the journal works.
			continue
		}
		killpoint.At("journal.synced")
		for _, a := range batch {
			c.rcv.SendAck(a.b, a.to)
		}
	}
}

// journalHealth raises journal.write_error on the first failure and
// journal.recovered when writes work again. c.mu is held.
func (c *Collector) journalHealth(err error) {
	switch {
	case err != nil && c.jerr == nil:
		c.jerr = err
		c.log.Error("collector: journal write failed: PDUs are no longer acked until it works again", "err", err)
		c.event(time.Now(), "journal.write_error", err.Error()+"; PDUs are not acked until the journal can be written")
	case err == nil && c.jerr != nil:
		c.log.Info("collector: journal writes work again", "after", c.jerr)
		c.event(time.Now(), "journal.recovered", "journal writes work again after: "+c.jerr.Error())
		c.jerr = nil
	}
}

// spoolHealth does the same for spool writes (the interval stays open and
// is written again at the next try, as one set: nothing doubles); err is
// what the caller got, the writer says whether its writes fail. c.mu is
// held.
func (c *Collector) spoolHealth(err error) {
	werr := c.sp.Failing()
	switch {
	case werr != nil && c.serr == nil:
		c.serr = werr
		c.log.Error("collector: spool write failed: retrying every second", "err", werr)
		c.event(time.Now(), "spool.write_error", werr.Error()+"; retrying")
	case werr == nil && c.serr != nil:
		c.log.Info("collector: spool writes work again", "after", c.serr)
		c.event(time.Now(), "spool.recovered", "spool writes work again after: "+c.serr.Error())
		c.serr = nil
	}
	if err != nil && werr == nil {
		c.log.Error("writing spool", "err", err) // not a write error
	} else if err != nil {
		c.log.Debug("collector: spool write failed", "err", err)
	}
}

// CommitSet is the commit point of a set of spool files (spool.Committer):
// a journal record, synced. From then on a restart rolls the set forward
// instead of writing it again.
func (s *journaledSink) CommitSet(set *spool.Set) error {
	if s.j != nil {
		b, err := json.Marshal(set)
		if err != nil {
			return err
		}
		if err := s.j.commit(recCommit, b); err != nil {
			return err
		}
	}
	if set.Interval {
		s.last = max(s.last, set.Start)
	}
	return nil
}
