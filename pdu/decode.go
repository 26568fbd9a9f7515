package pdu

import "fmt"

// Visitor receives the records of a PDU from Decode. The pointers are valid
// only during the call. A non-nil error stops decoding and is returned.
type Visitor interface {
	FlowDef(*FlowDef) error
	Sighting(*Sighting) error
	Event(*Event) error
}

// Validate checks the body of f for its type without delivering anything:
// a receiver calls it before acking so that a malformed PDU is counted and
// dropped, never half-delivered. It does not allocate when the body is
// valid. Its loops repeat Decode's on purpose: a record handed to a Visitor
// (an interface) escapes to the heap, so one loop serving both would make
// Validate allocate on every PDU.
func Validate(f *Frame) error {
	switch f.Header.Type {
	case TypeSightings:
		var r SightingReader
		var s Sighting
		r.Reset(f.Body)
		for r.Next(&s) {
		}
		return r.Err()
	case TypeFlowDef:
		var r FlowDefReader
		var d FlowDef
		r.Reset(f.Body)
		for r.Next(&d) {
		}
		return r.Err()
	case TypeEvents:
		var r EventReader
		r.Reset(f.Body)
		for {
			if _, _, _, ok := r.NextRaw(); !ok {
				break
			}
		}
		return r.Err()
	case TypeClock:
		var r ClockReader
		var c Clock
		r.Reset(f.Body)
		for r.Next(&c) {
		}
		return r.Err()
	case TypeCounters:
		var r CountersReader
		var c Counters
		r.Reset(f.Body)
		for r.Next(&c) {
		}
		return r.Err()
	case TypeRTT:
		var r RTTReader
		var x RTT
		var buf [MaxRTTBuckets]Bucket
		x.Hist = buf[:0]
		r.Reset(f.Body)
		for r.Next(&x) {
		}
		return r.Err()
	case TypeTCPConn:
		var r TCPConnReader
		var x TCPConn
		r.Reset(f.Body)
		for r.Next(&x) {
		}
		return r.Err()
	case TypeFTP:
		var r FTPReader
		var x FTPTransfer
		r.Reset(f.Body)
		for r.Next(&x) {
		}
		return r.Err()
	case TypeAck:
		_, _, err := f.Ack()
		if err != nil {
			return fmt.Errorf("pdu: decode ack: %w", err)
		}
		return nil
	case TypeBye:
		// Empty, or one flags byte with only known flags.
		if len(f.Body) > 1 || len(f.Body) == 1 && f.Body[0]&^ByeContinues != 0 {
			return fmt.Errorf("pdu: decode bye: body %x: %w", f.Body, ErrMalformed)
		}
		return nil
	case TypeHeartbeat:
		if len(f.Body) != 0 {
			return fmt.Errorf("pdu: decode %v: non-empty body: %w", f.Header.Type, ErrMalformed)
		}
		return nil
	}
	return ErrType
}

// Decode parses b, validates its whole body, and only then hands every
// record to v. It returns the header. Sightings and flow definitions are
// decoded without allocation.
func Decode(b []byte, v Visitor) (Header, error) {
	f, err := Parse(b)
	if err != nil {
		return f.Header, err
	}
	if err := Validate(&f); err != nil {
		return f.Header, err
	}
	switch f.Header.Type {
	case TypeSightings:
		var r SightingReader
		var s Sighting
		r.Reset(f.Body)
		for r.Next(&s) {
			if err := v.Sighting(&s); err != nil {
				return f.Header, err
			}
		}
	case TypeFlowDef:
		var r FlowDefReader
		var d FlowDef
		r.Reset(f.Body)
		for r.Next(&d) {
			if err := v.FlowDef(&d); err != nil {
				return f.Header, err
			}
		}
	case TypeEvents:
		var r EventReader
		var e Event
		r.Reset(f.Body)
		for r.Next(&e) {
			if err := v.Event(&e); err != nil {
				return f.Header, err
			}
		}
	}
	return f.Header, nil
}
