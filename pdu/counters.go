package pdu

// Counters record (docs/pdu.md, "Counters"): what one flow instance did at
// one interface in one interval, for every class, one-way or not.

// Counters are the totals of one flow instance at one interface (the flow's
// definition says which) over one interval. Sizes are the IP lengths of
// the packets counted in Packets: their sum is Bytes; SizeSumSq, SizeMin
// and SizeMax complete the statistics (count, sum, sum of squares, min,
// max) that merge without loss. A probe may send several records of one
// flow and interval (when it flushes early to bound its memory): they add
// up.
type Counters struct {
	Flow      uint32 // FlowDef.ID
	Start     int64  // interval start, ns since the epoch, a multiple of the configured interval
	Packets   uint64 // packets (a reassembled datagram once; ICMP errors excluded)
	Bytes     uint64 // sum of their IP lengths
	Fragments uint64 // IP fragments the packets were made of (reassembled datagrams), or that could not be reassembled
	// ICMPErrors: ICMP error messages quoting a packet of the flow (the
	// flow caused them); not in Packets.
	ICMPErrors uint64
	SizeSumSq  uint64 // sum of the squared IP lengths
	SizeMin    uint32 // 0 when Packets is 0
	SizeMax    uint32
}

// AddCounters appends a counters record. It returns false, leaving the
// PDU unchanged, when the record does not fit. It does not allocate.
func (b *Builder) AddCounters(c Counters) bool {
	var w recBuf
	w.uvarint(uint64(c.Flow))
	w.fixed64(c.Start)
	w.uvarint(c.Packets)
	w.uvarint(c.Bytes)
	w.uvarint(c.Fragments)
	w.uvarint(c.ICMPErrors)
	w.uvarint(c.SizeSumSq)
	w.uvarint(uint64(c.SizeMin))
	w.uvarint(uint64(c.SizeMax))
	return b.addRecord(TypeCounters, &w)
}

// CountersReader decodes the body of a counters PDU, like SightingReader.
// It does not allocate.
type CountersReader struct{ r fieldReader }

// Reset starts decoding body.
func (r *CountersReader) Reset(body []byte) { r.r.reset(body, "counters") }

// Err returns the error that stopped Next, nil at a clean end.
func (r *CountersReader) Err() error { return r.r.err }

// Next decodes the next record into c and reports whether there was one.
func (r *CountersReader) Next(c *Counters) bool {
	if !r.r.more() {
		return false
	}
	x := Counters{
		Flow:       r.r.u32("flow id"),
		Start:      r.r.fixed64("interval start"),
		Packets:    r.r.uvarint("packets"),
		Bytes:      r.r.uvarint("bytes"),
		Fragments:  r.r.uvarint("fragments"),
		ICMPErrors: r.r.uvarint("ICMP errors"),
		SizeSumSq:  r.r.uvarint("size sum of squares"),
		SizeMin:    r.r.u32("size min"),
		SizeMax:    r.r.u32("size max"),
	}
	switch {
	case r.r.err != nil:
	case x.Fragments > 255*x.Packets:
		r.r.fail("more fragments than packets can hold")
	case x.Packets == 0 && (x.Bytes != 0 || x.SizeSumSq != 0 || x.SizeMin != 0 || x.SizeMax != 0):
		r.r.fail("sizes without packets")
	case x.SizeMin > x.SizeMax:
		r.r.fail("size min above max")
	}
	if r.r.err != nil {
		return false
	}
	*c = x
	return true
}
