package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"time"
)

// pcapng block types (pcapng spec, section 4) and option codes (4.2, 4.6).
const (
	ngSHB = 0x0A0D0D0A // section header block; its type reads the same in both byte orders
	ngIDB = 0x00000001 // interface description block
	ngPB  = 0x00000002 // obsolete packet block
	ngSPB = 0x00000003 // simple packet block
	ngISB = 0x00000005 // interface statistics block
	ngEPB = 0x00000006 // enhanced packet block

	ngByteOrderMagic = 0x1A2B3C4D

	ngOptEnd      = 0
	ngOptTSResol  = 9  // if_tsresol
	ngOptTSOffset = 14 // if_tsoffset
)

// ngMetaMax bounds a block the reader holds whole (section header,
// interface description, statistics): far more than any writer puts in
// one, and a hostile length cannot make it allocate more.
const ngMetaMax = rawPcapChunk

// zeroTimeNs is the stamp of a simple packet block, which has none: the
// UnixNano of the zero time.Time, which pcapgo gave such packets before
// this reader replaced it (kept so that files read as they did).
var zeroTimeNs = time.Time{}.UnixNano()

// ngReader reads a pcapng file block by block, in place like rawPcap: a
// packet's data is a slice of the chunk buffer, valid until the next call.
//
// It is hand-written on the capture hot path instead of pcapgo's NgReader
// (with a guard in front that checked the framing pcapgo trusts): pcapgo
// copies every packet through two buffered readers, gives each a time.Time,
// and imports gopacket/layers, whose package initialisation fills tables of
// 65 536 entries: ≈ 30 ms of CPU and 1 800 page faults at the start of
// every process that links it, more than all the rest of `tmon owd`'s
// start-up. It reads what pcapgo read, the same way (checked over every
// pcapng file of the corpus by TestCorpusReadsAsBefore): sections in
// either byte order, any number of interfaces each with its own link type,
// if_tsresol (decimal or binary) and if_tsoffset, enhanced, obsolete and
// simple packet blocks; other blocks are skipped. Unlike pcapgo it keeps
// all 16 bits of a link type (pcapgo kept 8), converts binary stamp
// resolutions exactly (see stamp), and it checks every length
// before it trusts it: a block cut by the end of the file is ErrTruncated,
// a corrupt one an error naming its offset, never an allocation beyond
// ngMetaMax or MaxSnaplen.
type ngReader struct {
	chunkReader
	order      binary.ByteOrder
	ifaces     []ngIface // of the current section
	blockStart int64     // offset of the block being read
	scratch    []byte    // a packet whose block is too long to hold whole
}

// ngIface is what a packet's stamp and link type depend on.
type ngIface struct {
	link   uint16
	snap   uint32 // 0: no limit
	units  uint64 // stamp units per second (if_tsresol)
	offset uint64 // if_tsoffset, seconds
}

// newNgReader reads the first block, which must be a section header.
func newNgReader(c chunkReader) (*ngReader, error) {
	r := &ngReader{chunkReader: c}
	typ, length, err := r.blockHeader()
	if err == io.EOF {
		err = r.truncated()
	}
	if err != nil {
		return nil, err
	}
	if typ != ngSHB {
		return nil, r.corrupt("first block of type %#x, not a section header", typ)
	}
	if err := r.section(length); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *ngReader) truncated() error {
	return fmt.Errorf("pcapng block at offset %d cut at offset %d: %w", r.blockStart, r.base+int64(r.end), ErrTruncated)
}

func (r *ngReader) corrupt(format string, args ...any) error {
	return fmt.Errorf("pcapng block at offset %d: "+format, append([]any{r.blockStart}, args...)...)
}

// need makes n bytes of the current block available from pos, or says why
// not.
func (r *ngReader) need(n int) error {
	ok, err := r.fill(n)
	if err != nil {
		return err
	}
	if !ok {
		return r.truncated()
	}
	return nil
}

// blockHeader reads the type and total length of the next block, leaving
// pos at its start; a section header sets the byte order. io.EOF at a clean
// end between two blocks.
func (r *ngReader) blockHeader() (typ uint32, length int, err error) {
	r.blockStart = r.off()
	ok, err := r.fill(8)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		if r.avail() > 0 || r.cut {
			return 0, 0, r.truncated()
		}
		return 0, 0, io.EOF
	}
	typ = binary.LittleEndian.Uint32(r.buf[r.pos:])
	if typ == ngSHB {
		if err := r.need(12); err != nil {
			return 0, 0, err
		}
		switch bom := r.buf[r.pos+8 : r.pos+12]; {
		case binary.BigEndian.Uint32(bom) == ngByteOrderMagic:
			r.order = binary.BigEndian
		case binary.LittleEndian.Uint32(bom) == ngByteOrderMagic:
			r.order = binary.LittleEndian
		default:
			return 0, 0, r.corrupt("section header with bad byte-order magic %#x", bom)
		}
	} else if r.order == nil {
		return 0, 0, r.corrupt("block type %#x before any section header", typ)
	} else {
		typ = r.order.Uint32(r.buf[r.pos:])
	}
	l := r.order.Uint32(r.buf[r.pos+4:])
	if l%4 != 0 || l < 12 {
		return 0, 0, r.corrupt("block type %#x with invalid length %d", typ, l)
	}
	if uint64(l) > uint64(maxInt) {
		return 0, 0, r.corrupt("block type %#x of %d bytes", typ, l)
	}
	return typ, int(l), nil
}

const maxInt = int(^uint(0) >> 1)

// whole returns the current block, at least min bytes long, held whole,
// and consumes it.
func (r *ngReader) whole(typ uint32, length, min int) ([]byte, error) {
	if length < min {
		return nil, r.corrupt("block type %#x too short (%d bytes)", typ, length)
	}
	if length > ngMetaMax {
		return nil, r.corrupt("block type %#x of %d bytes, more than %d", typ, length, ngMetaMax)
	}
	if err := r.need(length); err != nil {
		return nil, err
	}
	b := r.buf[r.pos : r.pos+length]
	r.pos += length
	return b, nil
}

// options walks a block's options (opts: from the first option to the
// block's trailing length), calling fn with each option's code and value.
func (r *ngReader) options(opts []byte, fn func(code uint16, val []byte) error) error {
	for len(opts) >= 4 {
		code, n := r.order.Uint16(opts), int(r.order.Uint16(opts[2:]))
		if code == ngOptEnd {
			if n != 0 {
				return r.corrupt("end of options with length %d", n)
			}
			return nil
		}
		padded := (n + 3) &^ 3
		if 4+padded > len(opts) {
			return r.corrupt("option %d of %d bytes overruns the block", code, n)
		}
		if fn != nil {
			if err := fn(code, opts[4:4+n]); err != nil {
				return err
			}
		}
		opts = opts[4+padded:]
	}
	return nil
}

// section reads a section header block: a new section, no interface yet.
func (r *ngReader) section(length int) error {
	b, err := r.whole(ngSHB, length, 28)
	if err != nil {
		return err
	}
	if major, minor := r.order.Uint16(b[12:]), r.order.Uint16(b[14:]); major != 1 || minor != 0 {
		return r.corrupt("section header of pcapng version %d.%d, not 1.0", major, minor)
	}
	r.ifaces = r.ifaces[:0]
	return r.options(b[24:length-4], nil)
}

// iface reads an interface description block.
func (r *ngReader) iface(length int) error {
	b, err := r.whole(ngIDB, length, 20)
	if err != nil {
		return err
	}
	in := ngIface{link: r.order.Uint16(b[8:]), snap: r.order.Uint32(b[12:])}
	if in.snap > MaxSnaplen {
		in.snap = 0 // beyond the bound: no limit; every packet is checked against MaxSnaplen
	}
	res := byte(6) // microseconds unless said otherwise
	err = r.options(b[16:length-4], func(code uint16, val []byte) error {
		switch code {
		case ngOptTSResol:
			if len(val) < 1 {
				return r.corrupt("if_tsresol of %d bytes", len(val))
			}
			res = val[0]
		case ngOptTSOffset:
			if len(val) < 8 {
				return r.corrupt("if_tsoffset of %d bytes", len(val))
			}
			in.offset = r.order.Uint64(val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if res == 0 {
		res = 6 // as pcapgo read it
	}
	exp := uint64(res & 0x7f)
	if res&0x80 != 0 {
		if exp > 63 {
			return r.corrupt("if_tsresol 2^-%d", exp)
		}
		in.units = 1 << exp
	} else {
		if exp > 19 {
			return r.corrupt("if_tsresol 10^-%d", exp)
		}
		in.units = 1
		for range exp {
			in.units *= 10
		}
	}
	r.ifaces = append(r.ifaces, in)
	return nil
}

// stamp converts a packet block's stamp on interface i to ns since the
// epoch: whole seconds, and the fraction's ns rounded down. pcapgo scaled
// the fraction by 1e9/units in integers, which is exact for decimal
// resolutions but not for binary ones (2^-20 s: × 953 instead of
// 953.67…, 0.35 ms short at half a second); here it is exact.
func (r *ngReader) stamp(i int, hi, lo uint32) int64 {
	in := &r.ifaces[i]
	t := uint64(hi)<<32 | uint64(lo)
	frac := t % in.units
	h, l := bits.Mul64(frac, 1e9)
	ns, _ := bits.Div64(h, l, in.units) // frac < units: no overflow
	return int64(t/in.units+in.offset)*1e9 + int64(ns)
}

// next returns the next packet: its data (in the buffer), stamp in ns,
// original length and link type. io.EOF at a clean end; an error wrapping
// ErrTruncated when the file ends inside a block.
func (r *ngReader) next() (data []byte, ts int64, wire int, link uint16, err error) {
	for {
		typ, length, err := r.blockHeader()
		if err != nil {
			return nil, 0, 0, 0, err
		}
		switch typ {
		case ngEPB, ngPB:
			return r.packet(typ, length)
		case ngSPB:
			return r.simple(length)
		case ngSHB:
			err = r.section(length)
		case ngIDB:
			err = r.iface(length)
		case ngISB:
			var b []byte
			if b, err = r.whole(typ, length, 24); err == nil {
				if id := r.order.Uint32(b[8:]); int64(id) >= int64(len(r.ifaces)) {
					err = r.corrupt("statistics of interface %d; the section has %d", id, len(r.ifaces))
				} else {
					err = r.options(b[20:length-4], nil)
				}
			}
		default:
			var ok bool
			if ok, err = r.skip(int64(length)); err == nil && !ok {
				err = r.truncated()
			}
		}
		if err != nil {
			return nil, 0, 0, 0, err
		}
	}
}

// packet reads an enhanced or obsolete packet block.
func (r *ngReader) packet(typ uint32, length int) (data []byte, ts int64, wire int, link uint16, err error) {
	const hdr = 28
	if length < hdr+4 {
		return nil, 0, 0, 0, r.corrupt("block type %#x too short (%d bytes)", typ, length)
	}
	if err := r.need(hdr); err != nil {
		return nil, 0, 0, 0, err
	}
	h := r.buf[r.pos : r.pos+hdr]
	id := int64(r.order.Uint32(h[8:]))
	if typ == ngPB {
		id = int64(r.order.Uint16(h[8:]))
	}
	capLen := int(r.order.Uint32(h[20:]))
	wire = int(r.order.Uint32(h[24:]))
	if capLen > length-hdr-4 || capLen > MaxSnaplen {
		return nil, 0, 0, 0, r.corrupt("captured length %d does not fit the block (%d bytes, max %d)", capLen, length, MaxSnaplen)
	}
	if id >= int64(len(r.ifaces)) {
		return nil, 0, 0, 0, r.corrupt("packet of interface %d; the section has %d", id, len(r.ifaces))
	}
	ts = r.stamp(int(id), r.order.Uint32(h[12:]), r.order.Uint32(h[16:]))
	link = r.ifaces[id].link
	if length <= rawPcapChunk {
		// Held whole, options included: the data stays in the buffer.
		if err := r.need(length); err != nil {
			return nil, 0, 0, 0, err
		}
		start := r.pos + hdr
		r.pos += length
		return r.buf[start : start+capLen : start+capLen], ts, wire, link, nil
	}
	// Megabytes of options: copy the data out and stream past the rest.
	if err := r.need(hdr + capLen); err != nil {
		return nil, 0, 0, 0, err
	}
	r.scratch = append(r.scratch[:0], r.buf[r.pos+hdr:r.pos+hdr+capLen]...)
	r.pos += hdr + capLen
	if ok, err := r.skip(int64(length - hdr - capLen)); err != nil || !ok {
		if err == nil {
			err = r.truncated()
		}
		return nil, 0, 0, 0, err
	}
	return r.scratch, ts, wire, link, nil
}

// simple reads a simple packet block: interface 0, no stamp, the
// captured length the smaller of the original length and the snap length.
func (r *ngReader) simple(length int) (data []byte, ts int64, wire int, link uint16, err error) {
	const hdr = 12
	if length < hdr+4 {
		return nil, 0, 0, 0, r.corrupt("simple packet block too short (%d bytes)", length)
	}
	if len(r.ifaces) == 0 {
		return nil, 0, 0, 0, r.corrupt("simple packet block before any interface description")
	}
	if err := r.need(hdr); err != nil {
		return nil, 0, 0, 0, err
	}
	wire = int(r.order.Uint32(r.buf[r.pos+8:]))
	if wire > MaxSnaplen {
		return nil, 0, 0, 0, r.corrupt("simple packet of %d bytes exceeds %d", wire, MaxSnaplen)
	}
	capLen := wire
	if snap := int(r.ifaces[0].snap); snap != 0 && capLen > snap {
		capLen = snap
	}
	if capLen > length-hdr-4 {
		return nil, 0, 0, 0, r.corrupt("simple packet of %d bytes does not fit the block (%d bytes)", capLen, length)
	}
	if length > rawPcapChunk {
		return nil, 0, 0, 0, r.corrupt("simple packet block of %d bytes", length)
	}
	if err := r.need(length); err != nil {
		return nil, 0, 0, 0, err
	}
	start := r.pos + hdr
	r.pos += length
	return r.buf[start : start+capLen : start+capLen], zeroTimeNs, wire, r.ifaces[0].link, nil
}
