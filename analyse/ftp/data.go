package ftp

import (
	"github.com/tmon-project/tmon/sieve"
)

// The data connections: expected from a PORT/PASV (or EPRT/EPSV) reply,
// opened when their first packet comes, their bytes counted by sequence.

// expect notes a data connection announced by the client (active) or the
// server (passive) of session i: the announcing side listens.
func (a *Analysis) expect(i int32, active bool, port uint16) {
	ss := &a.ss[i]
	cl, sv := &ss.key.a, &ss.key.b
	if !ss.clientA {
		cl, sv = sv, cl
	}
	k := expKey{listen: *sv, peer: *cl, port: port, iface: ss.key.iface, class: ss.key.class}
	if active {
		k.listen, k.peer = *cl, *sv
	}
	// One announcement waits per session: a newer one replaces it.
	if ss.hasExp {
		delete(a.exp, ss.exp)
	}
	ss.exp, ss.hasExp = k, true
	a.exp[k] = expect{sess: i, gen: ss.gen, passive: !active}
}

// dataPacket follows a packet of an FTP data connection.
func (a *Analysis) dataPacket(rec *sieve.Record, ci int) {
	k, srcA := keyOf(rec, ci)
	j, ok := a.data[k]
	if !ok {
		e, found := a.exp[expKey{listen: rec.Dst, peer: rec.Src, port: rec.DstPort, iface: rec.Iface, class: uint8(ci)}]
		if !found {
			e, found = a.exp[expKey{listen: rec.Src, peer: rec.Dst, port: rec.SrcPort, iface: rec.Iface, class: uint8(ci)}]
		}
		if !found || a.ss[e.sess].gen != e.gen || rec.TCPFlags&fRST != 0 {
			a.Unmatched++
			return
		}
		j = a.openData(k, srcA, e)
	}
	dc := &a.dd[j]
	dc.active = rec.TS
	side := 0
	if srcA != dc.origA {
		side = 1
	}
	syn := rec.TCPFlags&fSYN != 0
	if syn && rec.TCPFlags&0x10 == 0 {
		dc.origA = srcA
		side = 0
	}
	pay := uint64(rec.TCPPayload)
	dc.c[side].add(uint32(rec.Txn>>32), syn, pay)
	if rec.TCPFlags&fFIN != 0 {
		dc.c[side].fin(uint32(rec.Txn>>32) + uint32(pay))
	}
	if pay > 0 {
		if dc.first == 0 {
			dc.first = rec.TS
		}
		dc.last = rec.TS
	}
}

func (a *Analysis) openData(k connKey, srcA bool, e expect) int32 {
	ss := &a.ss[e.sess]
	if old := ss.data; old >= 0 && a.dd[old].gen == ss.gen {
		a.dropData(old) // a newer data connection of the session: the old one is done
	}
	var j int32
	if n := len(a.freeD); n > 0 {
		j = a.freeD[n-1]
		a.freeD = a.freeD[:n-1]
	} else {
		a.dd = append(a.dd, dataConn{})
		j = int32(len(a.dd) - 1)
	}
	a.dd[j] = dataConn{key: k, sess: e.sess, gen: e.gen, passive: e.passive, origA: srcA}
	a.data[k] = j
	ss = &a.ss[e.sess]
	ss.data = j
	if ss.hasExp {
		delete(a.exp, ss.exp) // used
		ss.hasExp = false
	}
	return j
}

func (a *Analysis) dropData(j int32) {
	dc := &a.dd[j]
	if i, ok := a.data[dc.key]; ok && i == j {
		delete(a.data, dc.key)
	}
	dc.gen = 0
	a.freeD = append(a.freeD, j)
}
