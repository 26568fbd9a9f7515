// Package rtt is the protocol analysis of two-way transactions seen at one
// probe interface: each response matched to its request, the round-trip
// time as seen from the probe (response capture time − request capture
// time), per flow instance of the request and interval: count, sum, sum of
// squares, min, max and the log-linear histogram of package hist, plus the
// requests left unanswered. It plugs into the analyser stage
// (analyse.Analysis) and sends pdu.RTT records; the collector writes the
// rtt_stats spool type (docs/spool.md).
//
// Transactions (the keys come from the sieve, sieve/service.go):
//
//   - ICMP/ICMPv6 echo: request and reply of one identifier and sequence;
//   - DNS: query and response of one id and question;
//   - NTP: client packet and the server packet whose origin timestamp is
//     the client's transmit timestamp;
//   - SNMP v1/v2c: request and response of one request-id;
//   - TCP handshake, both halves: SYN → SYN/ACK (acknowledging the SYN's
//     sequence number + 1: the server side of the probe) and SYN/ACK →
//     ACK (acknowledging the SYN/ACK: the client side);
//   - TCP timestamps (RFC 7323), both directions of every connection that
//     uses them: a TSval → the first segment echoing it as TSecr
//     (tcpts.go).
//
// A request and its response are matched within one class (its filter
// must select both directions, e.g. l4.sport or l4.dport 53) on the same
// interface, with addresses and ports swapped. A request repeated with
// the same key (a retransmission) replaces the earlier one, which counts
// unanswered: the RTT is of the try that was answered. A request not
// answered within Timeout (data time) counts unanswered in the interval
// of the request. Memory is bounded by MaxPending: when full, the oldest
// request is counted unanswered and forgotten.
package rtt

import (
	"fmt"
	"github.com/tmon-project/tmon/conf"
	"math/bits"
	"time"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/hist"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/sieve"
)

// Output receives the round-trip records.
type Output interface {
	RTT(r *pdu.RTT)
}

// Kinds of transaction in a record (pdu.RTT.Kind).
const (
	KindEcho   = pdu.RTTEcho
	KindDNS    = pdu.RTTDNS
	KindNTP    = pdu.RTTNTP
	KindSNMP   = pdu.RTTSNMP
	KindSYN    = pdu.RTTTCPSyn    // SYN → SYN/ACK
	KindSYNACK = pdu.RTTTCPSynAck // SYN/ACK → ACK
	KindTS     = pdu.RTTTCPTS     // TCP TSval → TSecr (tcpts.go)
)

// Config tunes an Analysis; zero fields take the defaults, those of
// <analyses rttTimeout rttMaxPending> (conf.DefaultAnalyses).
type Config struct {
	Interval   time.Duration // the configuration's interval
	Timeout    time.Duration
	MaxPending int
}

type txnKey struct {
	src, dst   [16]byte // of the request
	txn        uint64
	sport, dpt uint16
	iface      uint8
	class      uint8
	kind       uint8
}

type pending struct {
	ts   int64
	flow uint32
}

type statKey struct {
	start int64
	flow  uint32
	kind  uint8
}

type stat struct {
	n, unanswered uint64
	sum           int64
	sqHi, sqLo    uint64
	min, max      int64
	h             *hist.Hist
}

// Analysis matches transactions of one probe.
type Analysis struct {
	cfg     Config
	iv      int64
	tmo     int64
	out     Output
	pend    map[txnKey]pending
	tsDirs  map[tsDirKey]tsDir // TCP timestamps: per direction (tcpts.go)
	tsSwept int64              // data time of the last ageing of tsDirs
	synAcks int                // SYN/ACKs in pend: pure ACKs look up only while there are
	order   []txnKey           // requests in arrival order (for timeouts); stale keys skipped
	oh      int
	stats   map[statKey]*stat
	free    []*hist.Hist
	oldest  int64
	scratch pdu.RTT
	// Stats
	Matched, Unanswered, Evicted uint64
	// PassedOver: TSvals never echoed while a later one was (tcpts.go);
	// Untracked: TCP directions not followed, their table full.
	PassedOver, Untracked uint64
}

var _ analyse.Analysis = (*Analysis)(nil)

// New returns the analysis sending to out.
func New(cfg Config, out Output) *Analysis {
	d := conf.DefaultAnalyses()
	if cfg.Timeout <= 0 {
		cfg.Timeout = d.RTTTimeout
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = d.RTTMaxPending
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	return &Analysis{cfg: cfg, iv: int64(cfg.Interval), tmo: int64(cfg.Timeout), out: out,
		pend: make(map[txnKey]pending), tsDirs: make(map[tsDirKey]tsDir), stats: make(map[statKey]*stat)}
}

// request/response roles of a record.
func roles(rec *sieve.Record) (reqKind, respKind uint8, reqTxn, respTxn uint64) {
	switch rec.TxnKind {
	case sieve.TxnEchoReq:
		return KindEcho, 0, rec.Txn, 0
	case sieve.TxnEchoReply:
		return 0, KindEcho, 0, rec.Txn
	case sieve.TxnDNSQuery:
		return KindDNS, 0, rec.Txn, 0
	case sieve.TxnDNSReply:
		return 0, KindDNS, 0, rec.Txn
	case sieve.TxnNTPReq:
		return KindNTP, 0, rec.Txn, 0
	case sieve.TxnNTPReply:
		return 0, KindNTP, 0, rec.Txn
	case sieve.TxnSNMPReq:
		return KindSNMP, 0, rec.Txn, 0
	case sieve.TxnSNMPReply:
		return 0, KindSNMP, 0, rec.Txn
	case sieve.TxnTCP:
		seq, ack := uint32(rec.Txn>>32), uint32(rec.Txn)
		const syn, ackf, rst, fin = 0x02, 0x10, 0x04, 0x01
		f := rec.TCPFlags
		switch {
		case f&(syn|ackf|rst|fin) == syn:
			return KindSYN, 0, uint64(seq + 1), 0
		case f&(syn|ackf|rst|fin) == syn|ackf:
			// answers the SYN, and asks for the client's ACK
			return KindSYNACK, KindSYN, uint64(seq + 1), uint64(ack)
		case f&(syn|ackf|rst|fin) == ackf:
			return 0, KindSYNACK, 0, uint64(ack)
		}
	}
	return 0, 0, 0, 0
}

// Packet matches responses and records requests.
func (a *Analysis) Packet(rec *sieve.Record, ids *analyse.FlowIDs) {
	if rec.TxnKind == sieve.TxnNone || rec.Flags&(sieve.FlagICMPError|sieve.FlagNoL4) != 0 {
		return
	}
	if rec.TxnKind == sieve.TxnTCP && rec.TSVal|rec.TSEcr != 0 {
		for m := rec.Classes; m != 0; m &= m - 1 {
			a.tsPacket(rec, bits.TrailingZeros64(m), ids)
		}
	}
	reqKind, respKind, reqTxn, respTxn := roles(rec)
	if reqKind == 0 && respKind == 0 {
		return
	}
	if respKind == KindSYNACK && a.synAcks == 0 {
		return // every pure ACK would look up: only while a SYN/ACK waits
	}
	for m := rec.Classes; m != 0; m &= m - 1 {
		ci := bits.TrailingZeros64(m)
		if respKind != 0 {
			k := txnKey{src: rec.Dst, dst: rec.Src, sport: rec.DstPort, dpt: rec.SrcPort, txn: respTxn,
				iface: rec.Iface, class: uint8(ci), kind: respKind}
			if p, ok := a.pend[k]; ok {
				a.forget(k)
				a.Matched++
				a.add(statKey{a.startOf(p.ts), p.flow, respKind}, rec.TS-p.ts, false)
			}
		}
		if reqKind != 0 {
			k := txnKey{src: rec.Src, dst: rec.Dst, sport: rec.SrcPort, dpt: rec.DstPort, txn: reqTxn,
				iface: rec.Iface, class: uint8(ci), kind: reqKind}
			if old, ok := a.pend[k]; ok {
				a.unanswered(old, reqKind) // a retransmission: the earlier try went unanswered
			} else {
				for len(a.pend) >= a.cfg.MaxPending {
					a.evictOldest()
				}
				a.order = append(a.order, k)
				if reqKind == KindSYNACK {
					a.synAcks++
				}
			}
			a.pend[k] = pending{ts: rec.TS, flow: ids.Of(ci)}
		}
	}
}

// forget removes request k from the pending table.
func (a *Analysis) forget(k txnKey) {
	delete(a.pend, k)
	if k.kind == KindSYNACK {
		a.synAcks--
	}
}

// evictOldest forgets the oldest request still waiting (unanswered).
func (a *Analysis) evictOldest() {
	for a.oh < len(a.order) {
		k := a.order[a.oh]
		a.oh++
		if p, ok := a.pend[k]; ok {
			a.forget(k)
			a.Evicted++
			a.expire(k, p)
			return
		}
	}
}

// expire ends the wait of request k: unanswered, unless a TSval passed
// over (tcpts.go).
func (a *Analysis) expire(k txnKey, p pending) {
	if k.kind == KindTS && a.tsPassedOver(k) {
		a.PassedOver++
		return
	}
	a.unanswered(p, k.kind)
}

func (a *Analysis) unanswered(p pending, kind uint8) {
	a.Unanswered++
	a.add(statKey{a.startOf(p.ts), p.flow, kind}, 0, true)
}

func (a *Analysis) startOf(ts int64) int64 {
	r := ts % a.iv
	if r < 0 {
		r += a.iv
	}
	return ts - r
}

func (a *Analysis) add(k statKey, rtt int64, unanswered bool) {
	s := a.stats[k]
	if s == nil {
		s = &stat{}
		if n := len(a.free); n > 0 {
			s.h = a.free[n-1]
			a.free = a.free[:n-1]
		} else {
			s.h = new(hist.Hist)
		}
		a.stats[k] = s
		if len(a.stats) == 1 || k.start < a.oldest {
			a.oldest = k.start
		}
	}
	if unanswered {
		s.unanswered++
		return
	}
	if s.n == 0 || rtt < s.min {
		s.min = rtt
	}
	if s.n == 0 || rtt > s.max {
		s.max = rtt
	}
	s.n++
	s.sum += rtt
	hi, lo := bits.Mul64(uint64(rtt), uint64(rtt))
	var c uint64
	s.sqLo, c = bits.Add64(s.sqLo, lo, 0)
	s.sqHi += hi + c
	s.h.Add(rtt)
}

// Advance counts the requests older than the timeout unanswered and sends
// the statistics of the intervals that ended and can no longer change:
// those before now − Timeout (a request of an interval may be answered,
// or time out, until then).
func (a *Analysis) Advance(now int64) {
	for a.oh < len(a.order) {
		k := a.order[a.oh]
		p, ok := a.pend[k]
		if ok && p.ts+a.tmo > now {
			break
		}
		a.order[a.oh] = txnKey{}
		a.oh++
		if ok {
			a.forget(k)
			a.expire(k, p)
		}
	}
	if now-a.tsSwept >= a.tmo {
		a.tsAge(now - a.tmo)
		a.tsSwept = now
	}
	if a.oh > 1024 && a.oh > len(a.order)/2 {
		n := copy(a.order, a.order[a.oh:])
		a.order, a.oh = a.order[:n], 0
	}
	a.flush(now - a.tmo)
}

// flush sends the statistics of intervals that ended by w.
func (a *Analysis) flush(w int64) {
	if len(a.stats) == 0 || a.oldest+a.iv > w {
		return
	}
	first := true
	for k, s := range a.stats {
		if k.start+a.iv > w {
			if first || k.start < a.oldest {
				a.oldest, first = k.start, false
			}
			continue
		}
		a.send(k, s)
		delete(a.stats, k)
	}
}

// Close counts every request still waiting unanswered and sends all.
func (a *Analysis) Close() {
	for _, k := range a.order[a.oh:] {
		if p, ok := a.pend[k]; ok {
			a.forget(k)
			a.expire(k, p)
		}
	}
	a.order, a.oh = a.order[:0], 0
	clear(a.tsDirs)
	for k, s := range a.stats {
		a.send(k, s)
		delete(a.stats, k)
	}
}

func (a *Analysis) send(k statKey, s *stat) {
	r := &a.scratch
	*r = pdu.RTT{Flow: k.flow, Start: k.start, Kind: k.kind, Count: s.n, Unanswered: s.unanswered,
		Sum: s.sum, SumSqHi: s.sqHi, SumSqLo: s.sqLo, Min: s.min, Max: s.max, Hist: r.Hist[:0]}
	// The first record carries the statistics and up to MaxRTTBuckets
	// buckets; further buckets follow in records of their own.
	s.h.Each(func(key int32, c uint64) {
		if len(r.Hist) == pdu.MaxRTTBuckets {
			a.out.RTT(r)
			*r = pdu.RTT{Flow: k.flow, Start: k.start, Kind: k.kind, Hist: r.Hist[:0]}
		}
		r.Hist = append(r.Hist, pdu.Bucket{Key: key, Count: c})
	})
	a.out.RTT(r)
	s.h.Reset()
	if len(a.free) < 1024 {
		a.free = append(a.free, s.h)
	}
}

// Pending returns the requests waiting for their response.
func (a *Analysis) Pending() int { return len(a.pend) }

// Config returns the analysis's settings, defaults filled in.
func (a *Analysis) Config() Config { return a.cfg }

// Summary says what the memory bounds cost, for the probe's
// analysis.bound event; "" when nothing.
func (a *Analysis) Summary() string {
	if a.Evicted == 0 && a.Untracked == 0 {
		return ""
	}
	return fmt.Sprintf("round trips matched=%d unanswered=%d evicted (table full, %d)=%d tcp timestamp directions not followed (table full)=%d",
		a.Matched, a.Unanswered, a.cfg.MaxPending, a.Evicted, a.Untracked)
}
