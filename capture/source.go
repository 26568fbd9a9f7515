// Package capture is the first stage of the probe: it delivers raw link-layer
// frames with their capture timestamps to the sieve.
//
// A probe has one or more capture interfaces; interface index i of the probe's
// configuration is the Iface byte of every packet it delivers. Two kinds of
// source fill that role: capture files (pcap with microsecond or nanosecond
// stamps, pcapng), replayed at full speed or paced at their original timing,
// and, in a later step, live AF_PACKET sockets. Both implement [Source].
//
// The hot path does not allocate: data returned by ReadPacket lives in a
// buffer owned by the source and stays valid only until the next call.
package capture

import "errors"

// Source is what the sieve reads packets from: a capture file set or a live
// socket. A Source is read by one goroutine; Clock and Close may be called
// from any goroutine.
type Source interface {
	// ReadPacket returns the next frame: its bytes (as captured, possibly
	// shorter than on the wire), its capture time in nanoseconds since the
	// Unix epoch, the probe interface index it was seen on, and its link
	// type (a LINKTYPE_* value, 1 for Ethernet).
	//
	// data is owned by the Source and is valid only until the next call to
	// ReadPacket (or Next, or Close); a caller that keeps it must copy it.
	// At the end of all input ReadPacket returns io.EOF; after Close it
	// returns ErrClosed.
	ReadPacket() (data []byte, ts int64, iface uint8, linkType uint16, err error)

	// Clock returns the source's data clock in nanoseconds since the Unix
	// epoch: no packet stamped earlier than Clock will be delivered later
	// (except for out-of-order stamps inside one capture). The probe uses it
	// as its watermark to close intervals when traffic is idle. It is 0
	// before the first packet.
	Clock() int64

	// Close releases the source and interrupts a ReadPacket that is waiting
	// (paced replay). It is safe to call more than once.
	Close() error
}

// Packet is one captured frame with its metadata, as filled by
// [FileSource.Next]. Data follows the same lifetime rule as ReadPacket's.
type Packet struct {
	Data     []byte // captured bytes, len(Data) == CapLen
	TS       int64  // capture time, ns since the Unix epoch
	Iface    uint8  // probe interface index (file index for file sources)
	LinkType uint16 // LINKTYPE_* of the capture (1 = Ethernet)
	CapLen   int    // bytes captured
	WireLen  int    // bytes on the wire (≥ CapLen)
}

// LinkTypeEthernet is LINKTYPE_ETHERNET, the link type of almost every
// capture a probe sees.
const LinkTypeEthernet uint16 = 1

// MaxSnaplen bounds the bytes of one captured frame, as tcpdump's
// MAXIMUM_SNAPLEN does: a record claiming more is corrupt, and the bound keeps
// a hostile file from making the reader allocate without limit.
const MaxSnaplen = 262144

// ErrClosed is returned by ReadPacket after Close.
var ErrClosed = errors.New("capture: source closed")

// ErrTruncated marks a capture file that ends in the middle of a record, the
// usual state of a file whose writer was killed. File sources count it in
// [FileStats] and treat the file as ended; it is returned (wrapped) only by
// the per-file reader.
var ErrTruncated = errors.New("truncated record")

// compile-time check that file sources fit the seam live capture will use.
var _ Source = (*FileSource)(nil)
