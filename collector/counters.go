package collector

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/spool"
)

// recordReader is what the readers of the analyses' PDUs have in common.
type recordReader[T any] interface {
	Reset(body []byte)
	Next(x *T) bool
	Err() error
}

// writeRecords writes the records of one analysis PDU (counters, round
// trips, TCP connections, FTP transfers) to the spool, one row each through
// write. Like sightings, a PDU naming a flow not yet defined is refused
// whole (the probe sends it again). On a journal replay, rows already in
// the spool before the restart are not written again (replayCounters: up to
// the last point where no row was buffered), nor those of an interval whose
// set of that type was committed after the PDU (inSpool). flow and start
// give a record's probe flow id and interval time.
func writeRecords[T any](c *Collector, s *session, body []byte, r recordReader[T], x *T, typ string,
	flow func(*T) uint32, start func(*T) int64, write func(x *T, fl flowRef, class, iface string) error) error {
	r.Reset(body)
	for r.Next(x) {
		if f := flow(x); int(f) >= len(s.flows) || !s.flows[f].defined {
			return errUnknownFlow
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("collector: probe %s: %w", s.name, err)
	}
	if c.replaying && !c.replayCounters {
		return nil
	}
	r.Reset(body)
	for r.Next(x) {
		if c.inSpool(typ, start(x)) {
			continue
		}
		class, iface, err := c.flowNames(s, flow(x))
		if err != nil {
			return err
		}
		if err := write(x, s.flows[flow(x)], class, iface); err != nil {
			return err
		}
	}
	return nil
}

// counters writes the records of a counters PDU (analyse/counters) to the
// spool's flow_counters rows.
func (c *Collector) counters(s *session, body []byte) error {
	var x pdu.Counters
	return writeRecords(c, s, body, &pdu.CountersReader{}, &x, spool.TypeCounters,
		func(x *pdu.Counters) uint32 { return x.Flow }, func(x *pdu.Counters) int64 { return x.Start },
		func(x *pdu.Counters, fl flowRef, class, iface string) error {
			return c.sp.WriteCounters(spool.CounterRow{
				Start: x.Start, Class: class, Flow: fl.id, Probe: s.name, Iface: iface,
				Packets: x.Packets, Bytes: x.Bytes, Fragments: x.Fragments, ICMPErrors: x.ICMPErrors,
				Sq: x.SizeSumSq, SizeMin: x.SizeMin, SizeMax: x.SizeMax,
			})
		})
}

// flowNames returns the class and interface names of a session's flow,
// as the rows of the analyses' spool types carry them.
func (c *Collector) flowNames(s *session, flow uint32) (class, iface string, err error) {
	fl := s.flows[flow]
	class, ok := c.className(fl.id)
	if !ok {
		return "", "", fmt.Errorf("collector: probe %s: flow %d has no class", s.name, flow)
	}
	iface = fmt.Sprint(fl.iface)
	if p := &c.cfg.Probes[s.probe]; int(fl.iface) < len(p.Interfaces) {
		iface = p.Interfaces[fl.iface].Name
	}
	return class, iface, nil
}

// className returns the class name of a collector flow id.
func (c *Collector) className(id uint32) (string, bool) {
	if e := c.byID[id]; e != nil {
		return c.cfg.Classes[e.key.Class].Name, true
	}
	return "", false
}

// cutData writes the per-interval records of the analyses (counters) of
// the intervals every probe has delivered: up to the smallest watermark of
// the probes still sending. Probes that said goodbye or stayed silent past
// the patience are not waited for; a probe not heard from yet is, for the
// silence limit. Rows arriving later go to a further file of their
// interval (docs/spool.md), so nothing is lost either way.
func (c *Collector) cutData(now time.Time) error {
	w := int64(math.MaxInt64)
	for pi := range c.cfg.Probes {
		s := c.latest[pi]
		switch {
		case s == nil:
			if now.Sub(c.started) < c.silent {
				return nil
			}
		case s.ended(), now.Sub(s.lastHeard) > c.patient:
		default:
			w = min(w, s.wm)
		}
	}
	return c.sp.CutData(w)
}

// rtts writes the records of a round-trip PDU (analyse/rtt) to the
// spool's rtt_stats rows.
func (c *Collector) rtts(s *session, body []byte) error {
	var x pdu.RTT
	var buf [pdu.MaxRTTBuckets]pdu.Bucket
	x.Hist = buf[:0]
	return writeRecords(c, s, body, &pdu.RTTReader{}, &x, spool.TypeRTT,
		func(x *pdu.RTT) uint32 { return x.Flow }, func(x *pdu.RTT) int64 { return x.Start },
		func(x *pdu.RTT, fl flowRef, class, iface string) error {
			slices.SortFunc(x.Hist, func(a, b pdu.Bucket) int { return cmp.Compare(a.Key, b.Key) })
			var h []byte
			for i, b := range x.Hist {
				if i > 0 {
					h = append(h, ',')
				}
				h = strconv.AppendInt(h, int64(b.Key), 10)
				h = append(h, ':')
				h = strconv.AppendUint(h, b.Count, 10)
			}
			return c.sp.WriteRTT(spool.RTTRow{
				Start: x.Start, Class: class, Flow: fl.id, Probe: s.name, Iface: iface, Kind: pdu.RTTKindName(x.Kind),
				Count: x.Count, Unanswered: x.Unanswered, Sum: x.Sum, SumSqHi: x.SumSqHi, SumSqLo: x.SumSqLo,
				Min: x.Min, Max: x.Max, Hist: h,
			})
		})
}

// inSpool reports, during the replay, whether the row of a data type
// (flow_counters, rtt_stats) for the interval of t that the PDU being
// replayed holds is in the spool already: a set of that type and interval
// was committed after the PDU's record.
func (c *Collector) inSpool(typ string, t int64) bool {
	if !c.replaying {
		return false
	}
	iv := int64(c.cfg.Interval)
	return c.replayAt < c.dataDone[dataKey{typ, floorDiv(t, iv) * iv}]
}

// dataKey names the sets of one data type and interval.
type dataKey struct {
	typ   string
	start int64
}
