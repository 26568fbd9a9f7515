package capture

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ngGuard is the old reader's front end, kept as part of the reference
// the tests compare ngReader with (oldReadFile). It sat between a pcapng file
// and pcapgo's NgReader and checks the
// block framing before pcapgo sees it. pcapgo trusts the lengths it reads: a
// bad capture length makes it allocate up to 4 GiB, and it cannot tell a file
// that ends between two blocks from one cut inside a block (both are io.EOF).
// The guard serves the stream one block at a time, so that it knows where
// every block starts, and:
//   - reports a block cut short by the end of the file as ErrTruncated, and a
//     clean end only at a block boundary;
//   - rejects block lengths that are not a multiple of 4 or too short, and
//     packet blocks whose captured length exceeds the block or MaxSnaplen;
//   - rewrites an interface snap length above MaxSnaplen to 0 ("no limit"),
//     because pcapgo sizes its packet buffer from it.
//
// Its errors carry the byte offset of the block and pass through pcapgo
// unchanged.
type ngGuard struct {
	r          io.Reader
	bigEndian  bool  // byte order of the current section
	off        int64 // offset of the next byte to read from r
	blockStart int64 // offset of the block being served
	body       int64 // bytes of the current block left to pass through
	pend       []byte
	hdr        [28]byte
}

func (g *ngGuard) u32(b []byte) uint32 {
	if g.bigEndian {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (g *ngGuard) Read(p []byte) (int, error) {
	if len(g.pend) > 0 {
		n := copy(p, g.pend)
		g.pend = g.pend[n:]
		return n, nil
	}
	if g.body > 0 {
		if int64(len(p)) > g.body {
			p = p[:g.body]
		}
		n, err := g.r.Read(p)
		g.off += int64(n)
		g.body -= int64(n)
		if err == io.EOF && g.body > 0 {
			return n, g.truncated()
		}
		if err == io.EOF {
			err = nil // the next Read starts the next block and sees EOF itself
		}
		return n, err
	}
	if err := g.nextHeader(); err != nil {
		return 0, err
	}
	n := copy(p, g.pend)
	g.pend = g.pend[n:]
	return n, nil
}

// frameError is an error of the guard itself; it already says where.
type frameError struct{ err error }

func (e *frameError) Error() string { return e.err.Error() }
func (e *frameError) Unwrap() error { return e.err }

func (g *ngGuard) truncated() error {
	return &frameError{fmt.Errorf("pcapng block at offset %d cut at offset %d: %w", g.blockStart, g.off, ErrTruncated)}
}

func (g *ngGuard) corrupt(format string, args ...any) error {
	return &frameError{fmt.Errorf("pcapng block at offset %d: "+format, append([]any{g.blockStart}, args...)...)}
}

// readHdr reads header bytes [from, to) of the current block.
func (g *ngGuard) readHdr(from, to int) error {
	n, err := io.ReadFull(g.r, g.hdr[from:to])
	g.off += int64(n)
	switch {
	case err == io.EOF && from == 0:
		return io.EOF // clean end, between two blocks
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return g.truncated()
	}
	return err
}

// nextHeader reads and checks the fixed header of the next block and queues
// it in pend; the rest of the block is then passed through as body.
func (g *ngGuard) nextHeader() error {
	g.blockStart = g.off
	if err := g.readHdr(0, 8); err != nil {
		return err
	}
	typ := binary.LittleEndian.Uint32(g.hdr[0:4])
	need := 8
	if typ == ngSHB {
		if err := g.readHdr(8, 12); err != nil {
			return err
		}
		switch {
		case binary.BigEndian.Uint32(g.hdr[8:12]) == ngByteOrderMagic:
			g.bigEndian = true
		case binary.LittleEndian.Uint32(g.hdr[8:12]) == ngByteOrderMagic:
			g.bigEndian = false
		default:
			return g.corrupt("section header with bad byte-order magic %#x", g.hdr[8:12])
		}
		need = 12
	} else {
		typ = g.u32(g.hdr[0:4])
	}
	length := int64(g.u32(g.hdr[4:8]))
	if length%4 != 0 || length < 12 {
		return g.corrupt("block type %#x with invalid length %d", typ, length)
	}
	switch typ {
	case ngEPB, ngPB:
		need = 28
	case ngSPB:
		need = 12
	case ngIDB:
		need = 16
	}
	if length < int64(need)+4 {
		return g.corrupt("block type %#x too short (%d bytes)", typ, length)
	}
	if need > 8 && typ != ngSHB {
		if err := g.readHdr(8, need); err != nil {
			return err
		}
	}
	switch typ {
	case ngEPB, ngPB:
		capLen := int64(g.u32(g.hdr[20:24]))
		if capLen > length-32 || capLen > MaxSnaplen {
			return g.corrupt("captured length %d does not fit the block (%d bytes, max %d)", capLen, length, MaxSnaplen)
		}
	case ngSPB:
		if wire := g.u32(g.hdr[8:12]); wire > MaxSnaplen {
			return g.corrupt("simple packet of %d bytes exceeds %d", wire, MaxSnaplen)
		}
	case ngIDB:
		if g.u32(g.hdr[12:16]) > MaxSnaplen {
			// 0 means "no limit": pcapgo then sizes its buffer from each
			// packet's captured length, which is checked above.
			clear(g.hdr[12:16])
		}
	}
	g.body = length - int64(need)
	g.pend = g.hdr[:need]
	return nil
}
