// Package pdu is the wire format between probes and collectors: every PDU
// type, its compact encoding and decoding, the CRC that guards it, and acks.
// The probe's analyser fills builders; the transport sends the encoded bytes;
// the collector decodes them for reconciliation and the spool. The byte layout
// is specified in docs/pdu.md.
package pdu

import "github.com/tmon-project/tmon/flow"

// Type is the PDU type carried in every header.
type Type uint8

const (
	TypeAck       Type = 1  // collector → probe: acknowledges one PDU
	TypeHeartbeat Type = 2  // probe → collector when idle; carries the probe clock
	TypeFlowDef   Type = 3  // flow instance definitions
	TypeSightings Type = 4  // one-way sightings
	TypeEvents    Type = 5  // remarkable events
	TypeBye       Type = 6  // probe → collector: clean end of session, nothing more will come
	TypeClock     Type = 7  // probe → collector: the probe's clock against NTP (pdu/clock.go)
	TypeCounters  Type = 8  // per flow instance and interval counters (pdu/counters.go)
	TypeRTT       Type = 9  // round trips per flow instance, kind and interval (pdu/rtt.go)
	TypeTCPConn   Type = 10 // TCP connections (pdu/tcpconn.go)
	TypeFTP       Type = 11 // FTP transfers (pdu/ftp.go)
)

// Data reports whether t is a sequenced, acknowledged data PDU (every type
// a probe sends except heartbeats and the bye, which the transport makes).
func (t Type) Data() bool {
	switch t {
	case TypeFlowDef, TypeSightings, TypeEvents, TypeClock, TypeCounters, TypeRTT, TypeTCPConn, TypeFTP:
		return true
	}
	return false
}

// Header starts every PDU.
type Header struct {
	Type    Type
	Probe   uint16 // probe id from the configuration
	Session uint32 // chosen at probe start; a new value means the probe restarted
	// Seq is the PDU id within the session, from 1, shared by the copies
	// sent to every collector (heartbeat: the last seq assigned; ack: the
	// acked seq).
	Seq uint32
	// Floor is the lowest seq the probe still awaits an ack for from the
	// collector this copy is sent to (the next seq to assign when nothing is
	// outstanding).
	// Every seq below it was acked by that collector or given up by the
	// probe, so the collector's watermark never waits for it. Set by the
	// transport at each send, not by the builder.
	Floor uint32
	// ProbeTime is the probe's data clock (ns since epoch) when the PDU was
	// closed: the probe has reported every sighting captured before it.
	ProbeTime int64
}

// FlowDef announces one flow instance seen on one interface of the probe.
type FlowDef struct {
	ID    uint32   // per probe (and session) numeric id used by sightings
	Iface uint8    // interface index within the probe
	Key   flow.Key // class and granular values
}

// Sighting is one packet seen at one interface: a one-way observation.
type Sighting struct {
	Flow uint32 // FlowDef.ID
	Sig  uint32
	TS   int64  // capture time, ns since epoch (quantised to the class resolution)
	Size uint32 // IP length; 0 when the class does not carry sizes
	// Span: a datagram reassembled from IP fragments, ns from its first
	// fragment to its last (TS); 0 for a packet that came whole.
	Span uint32
}

// Event is a remarkable event (trafMon 1.7).
type Event struct {
	TS     int64  // ns since epoch
	Kind   string // short machine-readable kind, e.g. "capture.drops"
	Detail string // human-readable detail
}
