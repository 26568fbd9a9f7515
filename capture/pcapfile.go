package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// File formats recognised by their first four bytes.
const (
	FormatPcap   = "pcap"    // classic pcap, microsecond stamps
	FormatPcapNs = "pcap-ns" // classic pcap, nanosecond stamps
	FormatPcapNg = "pcapng"
	FormatGzip   = "pcap.gz" // gzip-compressed classic pcap
)

const pcapFileHeaderLen, pcapRecordHeaderLen = 24, 16

// sniffFormat names the capture format from a file's first four bytes.
func sniffFormat(magic []byte) (string, error) {
	if len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return FormatGzip, nil
	}
	if len(magic) < 4 {
		return "", fmt.Errorf("too short for a capture file (%d bytes)", len(magic))
	}
	switch binary.LittleEndian.Uint32(magic) {
	case 0xA1B2C3D4, 0xD4C3B2A1:
		return FormatPcap, nil
	case 0xA1B23C4D, 0x4D3CB2A1:
		return FormatPcapNs, nil
	case ngSHB:
		return FormatPcapNg, nil
	case 0xA1B2CD34, 0x34CDB2A1:
		return "", errors.New("modified (Kuznetzov) pcap is not supported")
	}
	return "", fmt.Errorf("not a pcap or pcapng file (magic %#x)", magic[:4])
}

// fileReader reads one capture file: classic pcap (inflated by compress/gzip
// when compressed) with rawPcap, pcapng with ngReader. It is used by one
// goroutine; its counters may be read from any.
type fileReader struct {
	path   string
	format string
	f      *os.File
	raw    *rawPcap  // classic pcap, or nil
	ng     *ngReader // pcapng, or nil
	mapped []byte    // the file mapped into memory, or nil
	link   uint16    // link type of a classic pcap file
	off    int64     // classic pcap: offset of the next record (in the inflated stream when compressed)

	packets   atomic.Uint64
	bytes     atomic.Uint64
	truncated atomic.Bool
	behind    atomic.Uint64 // records stamped before the source's clock: not delivered
}

func openFile(path string, mapped bool) (*fileReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := newFileReader(path, f, mapped)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// newFileReader reads f's header. With mapped, an uncompressed regular
// file is mapped into memory (FileConfig.Map) rather than read.
func newFileReader(path string, f *os.File, mapped bool) (r *fileReader, err error) {
	var c chunkReader
	var m []byte
	var format string
	size := int64(readChunk)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		// A buffer the size of a small file: 830 small captures must
		// not cost a chunk each.
		size = min(st.Size(), readChunk)
		if mapped && st.Size() >= 4 {
			m = mapFile(f, st.Size())
		}
	}
	if m != nil {
		if format, err = sniffFormat(m[:4]); err != nil || format == FormatGzip {
			unmapFile(m)
			m = nil
		} else {
			c = chunkReader{buf: m, end: len(m), eof: true}
		}
	}
	if m == nil {
		c = newChunkReader(f, int(size))
		if _, err := c.fill(4); err != nil {
			return nil, err
		}
		if format, err = sniffFormat(c.buf[c.pos:c.end]); err != nil {
			return nil, err
		}
	}
	r = &fileReader{path: path, format: format, f: f, mapped: m}
	defer func() {
		if err != nil && m != nil {
			unmapFile(m)
		}
	}()
	switch format {
	case FormatPcapNg:
		if r.ng, err = newNgReader(c); err != nil {
			return nil, fmt.Errorf("read section header: %w", err)
		}
		return r, nil
	case FormatGzip:
		// The bytes already read go first.
		zr, err := gzip.NewReader(io.MultiReader(bytes.NewReader(c.buf[c.pos:c.end]), f))
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				err = fmt.Errorf("gzip header cut short: %w", ErrTruncated)
			}
			return nil, fmt.Errorf("read file header: %w", err)
		}
		if r.raw, err = newRawPcap(newChunkReader(zr, rawPcapChunk)); err != nil {
			return nil, err
		}
	default:
		if r.raw, err = newRawPcap(c); err != nil {
			return nil, err
		}
	}
	r.link = r.raw.link
	r.off = pcapFileHeaderLen
	return r, nil
}

// close closes the file and unmaps it.
func (r *fileReader) close() error {
	err := r.f.Close()
	if r.mapped != nil {
		if e := unmapFile(r.mapped); e != nil && err == nil {
			err = e
		}
		r.mapped = nil
	}
	return err
}

// next reads the next record. data lives in the reader's buffer until the
// next call. At a clean end it returns io.EOF; a record cut short by the end
// of the file is counted in r.truncated and returned as an error wrapping
// ErrTruncated. Every error names the file, packet number and offset.
func (r *fileReader) next() (data []byte, ts int64, wire int, link uint16, err error) {
	if r.raw != nil {
		data, ts, wire, err = r.raw.next()
		if err == nil {
			r.off += pcapRecordHeaderLen + int64(len(data))
			r.packets.Add(1)
			r.bytes.Add(uint64(len(data)))
			return data, ts, wire, r.link, nil
		}
		return nil, 0, 0, 0, r.fail(err)
	}
	data, ts, wire, link, err = r.ng.next()
	if err == nil {
		r.packets.Add(1)
		r.bytes.Add(uint64(len(data)))
		return data, ts, wire, link, nil
	}
	switch {
	case err == io.EOF:
		return nil, 0, 0, 0, io.EOF
	case errors.Is(err, ErrTruncated):
		r.truncated.Store(true)
	}
	// The pcapng reader's errors name the block's offset.
	return nil, 0, 0, 0, fmt.Errorf("%s: packet %d: %w", r.path, r.packets.Load()+1, err)
}

// fail names the file, packet and offset in a read error.
func (r *fileReader) fail(err error) error {
	pkt := r.packets.Load() + 1
	switch {
	case err == io.EOF:
		return io.EOF
	case errors.Is(err, errCutRecord):
		r.truncated.Store(true)
		return fmt.Errorf("%s: packet %d: record at offset %d cut short: %w", r.path, pkt, r.off, ErrTruncated)
	default:
		return fmt.Errorf("%s: packet %d (record at offset %d): %w", r.path, pkt, r.off, err)
	}
}

func (r *fileReader) stats() FileStats {
	return FileStats{
		Path:      r.path,
		Format:    r.format,
		Packets:   r.packets.Load(),
		Bytes:     r.bytes.Load(),
		Truncated: r.truncated.Load(),
		Behind:    r.behind.Load(),
	}
}
