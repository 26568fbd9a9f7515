package transport

import "github.com/tmon-project/tmon/pdu"

// Reason classifies a datagram the Receiver refused.
type Reason int

// Reasons for refusing a datagram.
const (
	ReasonSize      Reason = iota // larger than the max PDU size
	ReasonShort                   // pdu.ErrShort
	ReasonMagic                   // pdu.ErrMagic: not a tmon datagram
	ReasonVersion                 // pdu.ErrVersion
	ReasonLength                  // pdu.ErrLength
	ReasonCRC                     // pdu.ErrCRC
	ReasonType                    // pdu.ErrType
	ReasonMalformed               // pdu.ErrMalformed, in the header or the body, or impossible ids
	ReasonDirection               // an ack sent to a collector
	ReasonWindow                  // seq too far ahead of the session's duplicate window; the probe retries
	ReasonUnknown                 // a probe id not in the configuration
	ReasonAuth                    // no auth trailer, or a MAC that does not verify with the probe's key
	ReasonStale                   // authenticated, but of a session older than the probe's latest, or new data after its bye: a replay
	ReasonFlood                   // dropped unread: the source address sent too many invalid datagrams this second, or every source together did
	NumReasons
)

var reasonNames = [NumReasons]string{"size", "short", "magic", "version", "length", "crc", "type", "malformed", "direction", "window",
	"unknown_probe", "auth", "stale", "flood"}

// String names r for logs and metrics.
func (r Reason) String() string {
	if r < 0 || r >= NumReasons {
		return "unknown"
	}
	return reasonNames[r]
}

func reasonOf(err error) Reason {
	switch err {
	case pdu.ErrShort:
		return ReasonShort
	case pdu.ErrMagic:
		return ReasonMagic
	case pdu.ErrVersion:
		return ReasonVersion
	case pdu.ErrLength:
		return ReasonLength
	case pdu.ErrCRC:
		return ReasonCRC
	case pdu.ErrType:
		return ReasonType
	}
	return ReasonMalformed
}
