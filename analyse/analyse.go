// Package analyse is the probe's stateful stage, after the sieve and its ring
// and before the PDU builders: it discovers granular flow instances and
// announces each with a numeric per-probe id (aged out when idle, see
// Analyser), maps non-first IP
// fragments to the flow of their first fragment, and turns packets of
// one-way classes into sightings. Protocol analyses (counters, round trips,
// TCP, FTP) plug in here: each is an Analysis, in a package of its own, that
// sees every record with the flow instances it belongs to, and the data
// clock; the analyser dispatches to them and knows none of them.
//
// IP fragments arrive reassembled (package reassembly, in the sieve): a
// datagram is one record with its full transport header. A fragment that
// could not be reassembled (captured truncated) still comes on its own: a
// non-first one belongs to the classes its IP header allows and to the
// class's flow instance with the transport fields zero.
//
// An Analyser is used by one goroutine. Per packet it does not allocate once
// the flow and fragment tables have grown to the traffic's working set.
package analyse

import (
	"fmt"
	"math/bits"
	"net/netip"
	"time"

	"github.com/tmon-project/tmon/selection"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/sieve"
)

// Output receives what the analyser produces. The probe's PDU layer
// implements it; tests record into slices.
type Output interface {
	// FlowDef announces a new flow instance; it precedes every sighting of it.
	FlowDef(d pdu.FlowDef)
	// Sighting reports one packet of a one-way class seen at one interface.
	Sighting(s pdu.Sighting, resolutionExp uint8, withSize bool)
}

// Stats counts what the analyser did; read them from the analyser's goroutine
// or after it stopped.
type Stats struct {
	Records    uint64 // records received from the sieve
	Sightings  uint64 // one-way sightings produced
	Flows      uint64 // flow instances discovered
	ICMPErrors uint64 // ICMP errors skipped for one-way (they travel backwards)
	Fragments  uint64 // non-first fragments not reassembled (sighted under the class's flow without ports)
	Unselected uint64 // packets of sampled one-way classes left out by the selection (see Selected)
	Aged       uint64 // flow instances forgotten after FlowIdle without a packet
	Evicted    uint64 // flow instances forgotten early, the table full (MaxFlows)
}

// classInfo is the per-class state compiled from the configuration.
type classInfo struct {
	granular flow.Set
	oneWay   bool
	resExp   uint8
	res      int64
	size     bool
	sample   uint32 // 1 in sample packets sighted (conf.OneWay.Sample)
	// selLo, selHi: the inclusive range of mixed signature hashes
	// sighted (conf.OneWay.HashRange); used when sample > 1.
	selLo, selHi uint32
	hop          []bool // by interface index of this probe: interface observes a hop of the class
}

// instKey identifies a flow instance in the analyser's map: the granular
// fields of a record, the others zero, in plain integers and bytes. A
// flow.Key holds netip.Addr values, whose hash goes field by field and was
// a quarter of a counting-only replay; this one is hashed in one go.
type instKey struct {
	src, dst  [16]byte
	flowLabel uint32
	class     uint16
	sport     uint16
	dport     uint16
	vlan      uint16
	iface     uint8
	family    uint8 // IP version, when an address is granular (4 and 6 differ)
	proto     uint8
	dscp      uint8
	icmpType  uint8
	icmpCode  uint8
	ipVersion uint8
}

// newInstKey is the instKey of rec in class class with granular fields g;
// two records have the same one exactly when Key gives them the same
// flow.Key.
func newInstKey(rec *sieve.Record, class uint16, g flow.Set) instKey {
	k := instKey{class: class, iface: rec.Iface}
	if g == 0 {
		return k
	}
	if g.Has(flow.Src) || g.Has(flow.Dst) {
		k.family = rec.IPVersion
		n := 16
		if rec.IPVersion == 4 {
			n = 4
		}
		if g.Has(flow.Src) {
			copy(k.src[:n], rec.Src[:n])
		}
		if g.Has(flow.Dst) {
			copy(k.dst[:n], rec.Dst[:n])
		}
	}
	if g.Has(flow.SrcPort) {
		k.sport = rec.SrcPort
	}
	if g.Has(flow.DstPort) {
		k.dport = rec.DstPort
	}
	if g.Has(flow.VLAN) {
		k.vlan = rec.VLAN
	}
	if g.Has(flow.FlowLabel) {
		k.flowLabel = rec.FlowLabel
	}
	if g.Has(flow.Proto) {
		k.proto = rec.Proto
	}
	if g.Has(flow.DSCP) {
		k.dscp = rec.DSCP
	}
	if g.Has(flow.ICMPType) {
		k.icmpType = rec.ICMPType
	}
	if g.Has(flow.ICMPCode) {
		k.icmpCode = rec.ICMPCode
	}
	if g.Has(flow.IPVersion) {
		k.ipVersion = rec.IPVersion
	}
	return k
}

// Analyser turns sieve records into flow definitions and sightings.
//
// Flow instances age out: one without a packet for FlowIdle (data time)
// is forgotten at the next Advance, and when the table holds MaxFlows
// instances one is forgotten to make room (<analyses flowIdle
// flowMaxInstances>). A forgotten instance that comes back is announced
// again under a new id (ids are never reused: a record in flight keeps its
// meaning); the collector maps both ids to the one collector flow of the
// key, so no figure changes — only a FlowDef more.
type Analyser struct {
	classes []classInfo
	out     Output
	flows   map[instKey]int32 // index into ents
	ents    []flowEnt
	free    []int32 // unused ents
	nextID  uint32
	idle    int64
	max     int
	swept   int64 // data time of the last ageing
	stats   Stats
	plug    []Analysis
	ids     FlowIDs
}

// flowEnt is one flow instance of the table.
type flowEnt struct {
	seen int64 // capture time of its last packet
	id   uint32
}

// Analysis is one protocol analysis plugged into the analyser stage
// (reference §1.14.5): counters, round trips, TCP connections, FTP. Each
// lives in a package of its own and sends its records through its own
// output; adding one touches neither the others, nor the analyser, nor
// the sieve. Methods are called from the analyser's goroutine.
type Analysis interface {
	// Packet sees one record; ids.Of(class) is the flow instance id of
	// each class in rec.Classes (announced by a FlowDef before this call).
	// rec and ids are not retained. It must not allocate in the steady
	// state.
	Packet(rec *sieve.Record, ids *FlowIDs)
	// Advance says that every record captured before now (data time, ns)
	// has been given to Packet: records of intervals that ended by now
	// can be sent, and state idle since before now aged out.
	Advance(now int64)
	// Close sends what is left: the capture ended.
	Close()
}

// FlowIDs holds the flow instance id of a record for each of its classes,
// and the payload the sieve handed on with it (sieve.FlagPayload).
type FlowIDs struct {
	id      [64]uint32
	payload []byte
}

// Payload returns the payload handed on with the record (an FTP control
// segment, sieve/ftp.go), nil when none was. Not retained by the caller.
func (f *FlowIDs) Payload() []byte { return f.payload }

// SetPayload sets the payload (the analyser does; tests of analyses too).
func (f *FlowIDs) SetPayload(p []byte) { f.payload = p }

// Of returns the flow instance id of the record in class ci (valid only
// for the classes of the record).
func (f *FlowIDs) Of(ci int) uint32 { return f.id[ci] }

// Set sets the id of class ci (the analyser does; tests of analyses too).
func (f *FlowIDs) Set(ci int, id uint32) { f.id[ci] = id }

// Config tunes an Analyser; the zero value is usable.
type Config struct {
	// Analyses are the protocol analyses fed after the one-way
	// sightings, in order.
	Analyses []Analysis
}

// New builds the analyser of probe number probe (index into cfg.Probes).
func New(cfg *conf.Config, probe int, out Output, c Config) (*Analyser, error) {
	if probe < 0 || probe >= len(cfg.Probes) {
		return nil, fmt.Errorf("analyse: probe index %d out of range", probe)
	}
	if len(cfg.Classes) > 64 {
		return nil, fmt.Errorf("analyse: %d flow classes, at most 64", len(cfg.Classes))
	}
	an := cfg.Analyses.Resolved()
	a := &Analyser{out: out, flows: make(map[instKey]int32), plug: c.Analyses, idle: int64(an.FlowIdle), max: an.FlowMaxInstances}
	ifaces := len(cfg.Probes[probe].Interfaces)
	for ci := range cfg.Classes {
		cl := &cfg.Classes[ci]
		info := classInfo{granular: cl.Granular, hop: make([]bool, ifaces)}
		if ow := cl.OneWay; ow != nil {
			info.oneWay = true
			info.size = ow.Size
			info.sample = ow.Sample
			info.selLo, info.selHi = ow.HashRange()
			res := ow.Resolution
			if res <= 0 {
				res = time.Nanosecond
			}
			info.res = int64(res)
			for r := int64(1); r < info.res; r *= 10 {
				info.resExp++
			}
			for _, h := range ow.Hops {
				for _, pi := range h.Interfaces {
					if pi.Probe == probe {
						info.hop[pi.Interface] = true
					}
				}
			}
		}
		a.classes = append(a.classes, info)
	}
	return a, nil
}

// Stats returns the counters so far.
func (a *Analyser) Stats() Stats { return a.stats }

// IDs returns how many flow ids the analyser has announced: the next id.
// The collectors hold every id a session announced until it ends (ids are
// never reused), so the probe starts a new session before they run out
// (probe/roll.go).
func (a *Analyser) IDs() uint32 { return a.nextID }

// Packet analyses one record. rec is not retained.
func (a *Analyser) Packet(rec *sieve.Record) { a.PacketPayload(rec, nil) }

// PacketPayload analyses one record with the payload the sieve handed on
// with it (sieve.FlagPayload). Neither is retained.
func (a *Analyser) PacketPayload(rec *sieve.Record, payload []byte) {
	a.ids.payload = payload
	a.stats.Records++
	if rec.Flags&sieve.FlagFragment != 0 && rec.FragOff != 0 {
		a.stats.Fragments++
	}
	for m := rec.Classes; m != 0; m &= m - 1 {
		ci := bits.TrailingZeros64(m)
		info := &a.classes[ci]
		id := a.instance(rec, ci, info)
		a.ids.id[ci] = id
		a.sight(rec, id, info)
	}
	for _, p := range a.plug {
		p.Packet(rec, &a.ids)
	}
	a.ids.payload = nil
}

// Advance tells the analyses that every record captured before now (data
// time) has been analysed.
func (a *Analyser) Advance(now int64) {
	if now-a.swept >= a.idle/4 {
		a.age(now - a.idle)
		a.swept = now
	}
	for _, p := range a.plug {
		p.Advance(now)
	}
}

func (a *Analyser) sight(rec *sieve.Record, id uint32, info *classInfo) {
	if !info.oneWay || int(rec.Iface) >= len(info.hop) || !info.hop[rec.Iface] {
		return
	}
	if rec.Flags&sieve.FlagICMPError != 0 {
		// An ICMP error travels back towards the source: it is not a packet
		// of this one-way path.
		a.stats.ICMPErrors++
		return
	}
	if info.sample > 1 && !selection.SelectedRange(rec.Sig, info.selLo, info.selHi) {
		a.stats.Unselected++
		return
	}
	ts := rec.TS
	if info.res > 1 {
		ts -= floorMod(ts, info.res)
	}
	var size uint32
	if info.size {
		size = rec.Length
	}
	a.stats.Sightings++
	a.out.Sighting(pdu.Sighting{Flow: id, Sig: rec.Sig, TS: ts, Size: size, Span: rec.Span}, info.resExp, info.size)
}

// age forgets the flow instances without a packet since before old.
func (a *Analyser) age(old int64) {
	for k, i := range a.flows {
		if a.ents[i].seen < old {
			delete(a.flows, k)
			a.free = append(a.free, i)
			a.stats.Aged++
		}
	}
}

// evict forgets one flow instance to make room: the map's iteration picks
// it, so under a flood of new instances it is most likely one of them.
func (a *Analyser) evict() {
	for k, i := range a.flows {
		delete(a.flows, k)
		a.free = append(a.free, i)
		a.stats.Evicted++
		return
	}
}

// Len returns the flow instances held.
func (a *Analyser) Len() int { return len(a.flows) }

func floorMod(x, m int64) int64 {
	r := x % m
	if r < 0 {
		r += m
	}
	return r
}

// instance returns the flow id of rec's instance of class ci, announcing it
// when new.
func (a *Analyser) instance(rec *sieve.Record, ci int, info *classInfo) uint32 {
	k := newInstKey(rec, uint16(ci), info.granular)
	if i, ok := a.flows[k]; ok {
		e := &a.ents[i]
		e.seen = max(e.seen, rec.TS)
		return e.id
	}
	if len(a.flows) >= a.max {
		a.evict()
	}
	id := a.nextID
	a.nextID++
	var i int32
	if n := len(a.free); n > 0 {
		i, a.free = a.free[n-1], a.free[:n-1]
	} else {
		i = int32(len(a.ents))
		a.ents = append(a.ents, flowEnt{})
	}
	a.ents[i] = flowEnt{seen: rec.TS, id: id}
	a.flows[k] = i
	a.stats.Flows++
	a.out.FlowDef(pdu.FlowDef{ID: id, Iface: rec.Iface, Key: Key(rec, uint16(ci), info.granular)})
	return id
}

// Key builds the granular flow key of rec in class class: the fields of g,
// the others left zero.
func Key(rec *sieve.Record, class uint16, g flow.Set) flow.Key {
	k := flow.Key{Class: class, Fields: g}
	if g == 0 {
		return k
	}
	if g.Has(flow.Src) {
		k.Src = addr(rec.IPVersion, &rec.Src)
	}
	if g.Has(flow.Dst) {
		k.Dst = addr(rec.IPVersion, &rec.Dst)
	}
	if g.Has(flow.SrcPort) {
		k.SrcPort = rec.SrcPort
	}
	if g.Has(flow.DstPort) {
		k.DstPort = rec.DstPort
	}
	if g.Has(flow.VLAN) {
		k.VLAN = rec.VLAN
	}
	if g.Has(flow.FlowLabel) {
		k.FlowLabel = rec.FlowLabel
	}
	if g.Has(flow.Proto) {
		k.Proto = rec.Proto
	}
	if g.Has(flow.DSCP) {
		k.DSCP = rec.DSCP
	}
	if g.Has(flow.ICMPType) {
		k.ICMPType = rec.ICMPType
	}
	if g.Has(flow.ICMPCode) {
		k.ICMPCode = rec.ICMPCode
	}
	if g.Has(flow.IPVersion) {
		k.IPVersion = rec.IPVersion
	}
	return k
}

func addr(v uint8, b *[16]byte) netip.Addr {
	if v == 4 {
		return netip.AddrFrom4([4]byte{b[0], b[1], b[2], b[3]})
	}
	return netip.AddrFrom16(*b)
}

// Close ends the analysis: the protocol analyses send what they hold.
func (a *Analyser) Close() {
	for _, p := range a.plug {
		p.Close()
	}
}
