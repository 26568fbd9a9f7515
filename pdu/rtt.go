package pdu

// Round-trip record (docs/pdu.md, "Round trips"): the transactions of one
// kind of one flow instance at one interface over one interval
// (analyse/rtt).

// Kinds of transaction.
const (
	RTTEcho      uint8 = 1 // ICMP/ICMPv6 echo request → reply
	RTTDNS       uint8 = 2 // DNS query → response
	RTTNTP       uint8 = 3 // NTP client → server
	RTTSNMP      uint8 = 4 // SNMP request → response
	RTTTCPSyn    uint8 = 5 // TCP SYN → SYN/ACK
	RTTTCPSynAck uint8 = 6 // TCP SYN/ACK → ACK
	RTTTCPTS     uint8 = 7 // TCP timestamp TSval → the first TSecr echoing it (RFC 7323)
	rttKindMax         = RTTTCPTS
)

// RTTKindName names a kind for the spool.
func RTTKindName(k uint8) string {
	switch k {
	case RTTEcho:
		return "echo"
	case RTTDNS:
		return "dns"
	case RTTNTP:
		return "ntp"
	case RTTSNMP:
		return "snmp"
	case RTTTCPSyn:
		return "tcp_syn"
	case RTTTCPSynAck:
		return "tcp_synack"
	case RTTTCPTS:
		return "tcp_ts"
	}
	return "unknown"
}

// Bucket is one bucket of a sparse log-linear histogram (package hist).
type Bucket struct {
	Key   int32
	Count uint64
}

// RTT is the round trips of one kind of one flow instance over one
// interval, in ns. The sum of squares is 128-bit (SumSqHi·2⁶⁴ + SumSqLo).
// A histogram with many buckets is split over several records of the same
// flow, interval and kind: the first carries the statistics, the others
// only buckets (Count 0); records add up downstream.
type RTT struct {
	Flow             uint32
	Start            int64
	Kind             uint8
	Count            uint64 // responses matched
	Unanswered       uint64 // requests without a response within the timeout
	Sum              int64
	SumSqHi, SumSqLo uint64
	Min, Max         int64 // 0 when Count is 0
	Hist             []Bucket
}

// MaxRTTBuckets is the most buckets one record carries.
const MaxRTTBuckets = 64

// AddRTT appends a round-trip record (at most MaxRTTBuckets buckets: the
// caller splits). It returns false, leaving the PDU unchanged, when the
// record does not fit. It does not allocate.
func (b *Builder) AddRTT(r *RTT) bool {
	if len(r.Hist) > MaxRTTBuckets {
		return false
	}
	var w recBuf
	w.uvarint(uint64(r.Flow))
	w.fixed64(r.Start)
	w.byte1(r.Kind)
	w.uvarint(r.Count)
	w.uvarint(r.Unanswered)
	w.i64(r.Sum)
	w.uvarint(r.SumSqHi)
	w.uvarint(r.SumSqLo)
	w.i64(r.Min)
	w.i64(r.Max)
	w.uvarint(uint64(len(r.Hist)))
	for _, h := range r.Hist {
		w.i64(int64(h.Key))
		w.uvarint(h.Count)
	}
	return b.addRecord(TypeRTT, &w)
}

// RTTReader decodes the body of a round-trip PDU. Next reuses the record's
// histogram slice.
type RTTReader struct{ r fieldReader }

// Reset starts decoding body.
func (r *RTTReader) Reset(body []byte) { r.r.reset(body, "rtt") }

// Err returns the error that stopped Next, nil at a clean end.
func (r *RTTReader) Err() error { return r.r.err }

// Next decodes the next record into x and reports whether there was one.
func (r *RTTReader) Next(x *RTT) bool {
	if !r.r.more() {
		return false
	}
	y := RTT{Hist: x.Hist[:0]}
	y.Flow = r.r.u32("flow id")
	y.Start = r.r.fixed64("interval start")
	y.Kind = r.r.byte1("kind")
	y.Count = r.r.uvarint("count")
	y.Unanswered = r.r.uvarint("unanswered")
	y.Sum = r.r.i64("sum")
	y.SumSqHi = r.r.uvarint("sum of squares")
	y.SumSqLo = r.r.uvarint("sum of squares")
	y.Min = r.r.i64("min")
	y.Max = r.r.i64("max")
	n := r.r.uvarint("buckets")
	if r.r.err == nil && n > MaxRTTBuckets {
		r.r.fail("too many buckets")
	}
	var total uint64
	for i := uint64(0); i < n && r.r.err == nil; i++ {
		k := r.r.i64("bucket key")
		c := r.r.uvarint("bucket count")
		if k < -1<<31 || k >= 1<<31 || c == 0 {
			r.r.fail("bad bucket")
		}
		total += c
		y.Hist = append(y.Hist, Bucket{Key: int32(k), Count: c})
	}
	switch {
	case r.r.err != nil:
	case y.Kind == 0 || y.Kind > rttKindMax:
		r.r.fail("unknown kind")
	case y.Count == 0 && (y.Sum != 0 || y.SumSqHi != 0 || y.SumSqLo != 0 || y.Min != 0 || y.Max != 0):
		r.r.fail("statistics without a count")
	case y.Min > y.Max:
		r.r.fail("min above max")
	case y.Count > 0 && total != y.Count && len(y.Hist) < MaxRTTBuckets:
		r.r.fail("histogram does not hold the count")
	}
	if r.r.err != nil {
		return false
	}
	*x = y
	return true
}
