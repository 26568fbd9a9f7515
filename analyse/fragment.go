package analyse

import "github.com/tmon-project/tmon/sieve"

// Fragments: only the first fragment of an IP datagram carries the transport
// header, so only it can be classified fully and assigned its flow instance.
// Later fragments are signed and sighted on their own (each crosses the path
// as a packet of its own), under the flow of their first fragment. A later
// fragment that arrives before its first waits in a bounded pending list.

func fkey(rec *sieve.Record) fragKey {
	return fragKey{src: rec.Src, dst: rec.Dst, id: rec.FragID, proto: rec.Proto, iface: rec.Iface}
}

func (a *Analyser) fragment(rec *sieve.Record) {
	a.gc(rec.TS)
	k := fkey(rec)
	if rec.FragOff == 0 {
		fe := a.frags[k]
		if fe == nil {
			fe = a.newEntry()
			a.frags[k] = fe
		}
		fe.classes = rec.Classes
		fe.ts = rec.TS
		a.classify(rec, fe)
		a.release(k, fe)
		return
	}
	fe := a.frags[k]
	if fe == nil {
		if len(a.pending) >= a.maxPend {
			a.stats.FragPendingMax++
			return
		}
		a.stats.FragPending++
		a.pending = append(a.pending, *rec)
		return
	}
	a.later(rec, fe)
}

// later emits a non-first fragment under the flows of its first fragment.
// Only classes that the sieve kept as candidates for this fragment too count.
func (a *Analyser) later(rec *sieve.Record, fe *fragEntry) {
	for m := fe.classes & rec.Classes; m != 0; m &= m - 1 {
		ci := trailingZeros(m)
		a.sight(rec, fe.flows[ci], &a.classes[ci])
	}
}

// release emits the pending fragments of the set k just classified.
func (a *Analyser) release(k fragKey, fe *fragEntry) {
	if len(a.pending) == 0 {
		return
	}
	kept := a.pending[:0]
	for i := range a.pending {
		p := &a.pending[i]
		if fkey(p) == k {
			a.later(p, fe)
			continue
		}
		kept = append(kept, *p)
	}
	a.pending = kept
}

func (a *Analyser) newEntry() *fragEntry {
	if n := len(a.free); n > 0 {
		fe := a.free[n-1]
		a.free = a.free[:n-1]
		return fe
	}
	return new(fragEntry)
}

// gc forgets fragment sets and pending fragments older than the fragment
// timeout, at most once per timeout period of data time.
func (a *Analyser) gc(now int64) {
	if now-a.lastGC < a.fragTTL {
		return
	}
	a.lastGC = now
	for k, fe := range a.frags {
		if now-fe.ts > a.fragTTL {
			delete(a.frags, k)
			a.free = append(a.free, fe)
		}
	}
	kept := a.pending[:0]
	for i := range a.pending {
		if now-a.pending[i].TS > a.fragTTL {
			a.stats.FragOrphans++
			continue
		}
		kept = append(kept, a.pending[i])
	}
	a.pending = kept
}

// Close counts the fragments still waiting as orphans.
func (a *Analyser) Close() {
	a.stats.FragOrphans += uint64(len(a.pending))
	a.pending = a.pending[:0]
}
