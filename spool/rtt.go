package spool

import (
	"math/big"
	"strconv"
)

// TypeRTT is the spool type of the round-trip analysis (docs/spool.md,
// rtt_stats): per flow instance, probe interface, kind and interval.
const TypeRTT = "rtt_stats"

// ColsRTT are its columns.
var ColsRTT = []string{"interval_start", "interval_s", "class", "flow", "probe", "iface", "kind",
	"count", "unanswered", "sum_ns", "sumsq_ns2", "min_ns", "max_ns", "hist"}

// RTTRow is one rtt_stats row.
type RTTRow struct {
	Start              int64
	Class              string
	Flow               uint32
	Probe, Iface, Kind string
	Count, Unanswered  uint64
	Sum                int64
	SumSqHi, SumSqLo   uint64
	Min, Max           int64  // written only when Count > 0
	Hist               []byte // sparse histogram text (hist.AppendSparse form)
}

// WriteRTT buffers one rtt_stats row; CutData writes it.
func (w *Writer) WriteRTT(r RTTRow) error {
	b := appendPrefix(nil, strconv.FormatInt(r.Start, 10), strconv.FormatInt(w.interval/1e9, 10), r.Class, r.Flow, r.Probe, r.Iface)
	b = appendText(b, r.Kind)
	b = append(b, '\t')
	b = strconv.AppendUint(b, r.Count, 10)
	b = append(b, '\t')
	b = strconv.AppendUint(b, r.Unanswered, 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, r.Sum, 10)
	b = append(b, '\t')
	sq := new(big.Int).SetUint64(r.SumSqHi)
	sq.Lsh(sq, 64)
	sq.Or(sq, new(big.Int).SetUint64(r.SumSqLo))
	b = sq.Append(b, 10)
	b = append(b, '\t')
	if r.Count > 0 {
		b = strconv.AppendInt(b, r.Min, 10)
		b = append(b, '\t')
		b = strconv.AppendInt(b, r.Max, 10)
	} else {
		b = append(b, '\t')
	}
	b = append(b, '\t')
	b = append(b, r.Hist...)
	return w.bufferData(&w.rtt, w.startOf(r.Start), b)
}
