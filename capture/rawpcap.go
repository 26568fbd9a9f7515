package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// rawPcap reads the records of a classic pcap file in place: the file is
// read in large chunks straight into one buffer (chunkReader), and each
// record's data is a slice of that buffer, valid until the next call. pcapgo
// instead copies every record through two buffered readers into its packet
// buffer: on a replay at full speed that copying and the time.Time of each
// record were a third of the probe's time. A gzip-compressed file is
// inflated by compress/gzip into the same reader.
type rawPcap struct {
	chunkReader
	order  binary.ByteOrder
	factor int64 // ns per unit of the fraction: 1 or 1000
	link   uint16
}

// newRawPcap reads the file header from c.
func newRawPcap(c chunkReader) (*rawPcap, error) {
	r := &rawPcap{chunkReader: c}
	ok, err := r.fill(pcapFileHeaderLen)
	if err == nil && !ok {
		err = fmt.Errorf("file header cut short: %w", ErrTruncated)
	}
	if err != nil {
		return nil, fmt.Errorf("read file header: %w", err)
	}
	h := r.buf[r.pos : r.pos+pcapFileHeaderLen]
	r.pos += pcapFileHeaderLen
	switch binary.LittleEndian.Uint32(h) {
	case 0xA1B2C3D4:
		r.order, r.factor = binary.LittleEndian, 1000
	case 0xD4C3B2A1:
		r.order, r.factor = binary.BigEndian, 1000
	case 0xA1B23C4D:
		r.order, r.factor = binary.LittleEndian, 1
	case 0x4D3CB2A1:
		r.order, r.factor = binary.BigEndian, 1
	default:
		return nil, fmt.Errorf("read file header: unknown magic %x", h[:4])
	}
	if v := r.order.Uint16(h[4:]); v != 2 {
		return nil, fmt.Errorf("read file header: unknown major version %d", v)
	}
	if v := r.order.Uint16(h[6:]); v != 4 {
		return nil, fmt.Errorf("read file header: unknown minor version %d", v)
	}
	// The header's snap length is ignored, as tcpdump does (writers do not
	// always honour it): MaxSnaplen bounds a record instead.
	r.link = uint16(r.order.Uint32(h[20:]))
	return r, nil
}

// errCutRecord marks a record whose header was read but not all its data.
var errCutRecord = errors.New("record cut short")

// next returns the next record: its data (in the buffer), capture time in
// ns and original length. io.EOF at a clean end; errCutRecord wrapping
// ErrTruncated when the file ends inside a record.
func (r *rawPcap) next() (data []byte, ts int64, wire int, err error) {
	ok, err := r.fill(pcapRecordHeaderLen)
	if err != nil {
		return nil, 0, 0, err
	}
	if !ok {
		if r.end > r.pos || r.cut {
			return nil, 0, 0, fmt.Errorf("%w: %w", errCutRecord, ErrTruncated)
		}
		return nil, 0, 0, io.EOF
	}
	h := r.buf[r.pos : r.pos+pcapRecordHeaderLen]
	ts = int64(r.order.Uint32(h[0:]))*1e9 + int64(r.order.Uint32(h[4:]))*r.factor
	capLen := int(r.order.Uint32(h[8:]))
	wire = int(r.order.Uint32(h[12:]))
	if capLen > MaxSnaplen {
		return nil, 0, 0, fmt.Errorf("capture length exceeds snap length: %d > %d", capLen, MaxSnaplen)
	}
	if capLen > wire {
		return nil, 0, 0, fmt.Errorf("capture length exceeds original packet length: %d > %d", capLen, wire)
	}
	if ok, err = r.fill(pcapRecordHeaderLen + capLen); err != nil {
		return nil, 0, 0, err
	}
	if !ok {
		return nil, 0, 0, fmt.Errorf("%w: %w", errCutRecord, ErrTruncated)
	}
	start := r.pos + pcapRecordHeaderLen
	r.pos = start + capLen
	return r.buf[start:r.pos:r.pos], ts, wire, nil
}
