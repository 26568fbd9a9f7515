package capture

import "io"

// chunkReader serves a capture file from one large buffer filled by big
// reads (a few read(2) calls per megabytes): a record's bytes are a slice of
// the buffer, valid until the next fill, instead of a copy. The classic pcap
// and the pcapng readers both read through it.
type chunkReader struct {
	rd       io.Reader
	buf      []byte
	pos, end int   // unread bytes are buf[pos:end]
	base     int64 // file offset of buf[0]
	eof      bool
	// cut: the stream itself ended early (a gzip member cut short says
	// io.ErrUnexpectedEOF): whatever comes next is truncated, even at a
	// record boundary.
	cut bool
}

// rawPcapChunk bounds the buffer (a record is at most MaxSnaplen, so it
// always fits beside a partial one; a larger pcapng block grows it).
const rawPcapChunk = 4 << 20

// readChunk is the buffer a regular file starts with, and so what a read
// asks for: small enough for the bytes the kernel copied in to be still in
// the core's cache when the packets are sieved. 4 MiB reads left each byte
// to be fetched from memory twice: `tmon owd` of two 31 MB captures read
// with 1 MiB or 256 KiB chunks took 0.157 s of CPU, with 4 MiB 0.172 s,
// mapped 0.195 s (medians of 9 alternated runs, load 14–17; on a virtual
// machine that fills its shadow page tables on first touch, a mapped page
// cache page costs more than its copy).
const readChunk = 256 << 10

// newChunkReader starts with a buffer of bufSize bytes (the file's size, say,
// so that a small file costs little); it grows to rawPcapChunk and for a
// record that does not fit.
func newChunkReader(rd io.Reader, bufSize int) chunkReader {
	return chunkReader{rd: rd, buf: make([]byte, min(max(bufSize, 4096), rawPcapChunk))}
}

// off is the file offset of the next unread byte.
func (c *chunkReader) off() int64 { return c.base + int64(c.pos) }

// avail is the number of bytes buffered and not yet consumed.
func (c *chunkReader) avail() int { return c.end - c.pos }

// fill makes at least n bytes available from pos, moving the unread tail
// to the front first when the buffer's end is near. It reports false when
// the file ends first. It invalidates slices of the buffer taken before.
func (c *chunkReader) fill(n int) (bool, error) {
	for c.end-c.pos < n {
		if c.eof {
			return false, nil
		}
		if c.pos > 0 && len(c.buf)-c.pos < n+len(c.buf)/2 {
			c.end = copy(c.buf, c.buf[c.pos:c.end])
			c.base += int64(c.pos)
			c.pos = 0
		}
		if c.end == len(c.buf) || len(c.buf) < n {
			// Full (a small first buffer, or a record larger than
			// it): grow, up to a chunk and beyond for a record.
			nb := make([]byte, max(min(2*len(c.buf), rawPcapChunk+MaxSnaplen+pcapRecordHeaderLen), n))
			c.end = copy(nb, c.buf[c.pos:c.end])
			c.base += int64(c.pos)
			c.pos, c.buf = 0, nb
		}
		k, err := c.rd.Read(c.buf[c.end:min(len(c.buf), c.end+rawPcapChunk)])
		c.end += k
		switch {
		case err == io.EOF:
			c.eof = true
		case err == io.ErrUnexpectedEOF:
			c.eof, c.cut = true, true
		case err != nil:
			return false, err
		}
	}
	return true, nil
}

// skip consumes n bytes without keeping them; it reports false when the
// file ends first.
func (c *chunkReader) skip(n int64) (bool, error) {
	for n > 0 {
		if c.avail() == 0 {
			if ok, err := c.fill(1); !ok || err != nil {
				return false, err
			}
		}
		k := min(int64(c.avail()), n)
		c.pos += int(k)
		n -= k
	}
	return true, nil
}
