package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// File formats recognised by their first four bytes.
const (
	FormatPcap   = "pcap"    // classic pcap, microsecond stamps
	FormatPcapNs = "pcap-ns" // classic pcap, nanosecond stamps
	FormatPcapNg = "pcapng"
	FormatGzip   = "pcap.gz" // gzip-compressed classic pcap (pcapgo inflates it)
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

// fileReader reads one capture file with pcapgo. It is used by one goroutine;
// its counters may be read from any.
type fileReader struct {
	path   string
	format string
	f      *os.File
	raw    *rawPcap         // uncompressed classic pcap, or nil
	pcap   *pcapgo.Reader   // compressed classic pcap, or nil
	ng     *pcapgo.NgReader // pcapng, or nil
	guard  *ngGuard         // pcapng framing check, or nil
	link   uint16           // link type of a classic pcap file
	off    int64            // classic pcap: offset of the next record

	packets   atomic.Uint64
	bytes     atomic.Uint64
	truncated atomic.Bool
	behind    atomic.Uint64 // records stamped before the source's clock: not delivered
}

func openFile(path string) (*fileReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := newFileReader(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func newFileReader(path string, f *os.File) (r *fileReader, err error) {
	defer func() {
		// pcapgo is not hardened against hostile input; a panic in it is
		// a bad file, not a bad probe.
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("read header: pcapgo panic: %v", p)
		}
	}()
	br := bufio.NewReaderSize(f, 64<<10)
	magic, _ := br.Peek(4)
	format, err := sniffFormat(magic)
	if err != nil {
		return nil, err
	}
	r = &fileReader{path: path, format: format, f: f}
	switch format {
	case FormatPcapNg:
		r.guard = &ngGuard{r: br}
		// WantMixedLinkType gives each packet the link type of its own
		// pcapng interface instead of dropping those that differ from the
		// first one.
		r.ng, err = pcapgo.NewNgReader(r.guard, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, fmt.Errorf("read section header: %w", err)
		}
	case FormatPcap, FormatPcapNs:
		size := rawPcapChunk
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = int(min(st.Size(), rawPcapChunk))
		}
		if r.raw, err = newRawPcap(br, size); err != nil {
			return nil, err
		}
		r.link = r.raw.link
		r.off = pcapFileHeaderLen
	default:
		r.pcap, err = pcapgo.NewReader(br)
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				err = fmt.Errorf("file header cut short: %w", ErrTruncated)
			}
			return nil, fmt.Errorf("read file header: %w", err)
		}
		// Like tcpdump, ignore the header's snap length (writers do not
		// always honour it) and use our own bound instead; pcapgo sizes its
		// reusable buffer from it.
		r.pcap.SetSnaplen(MaxSnaplen)
		r.link = uint16(r.pcap.LinkType())
		r.off = pcapFileHeaderLen
	}
	return r, nil
}

// next reads the next record. data lives in pcapgo's reusable buffer until the
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
	data, ci, link, err := r.nextPcapgo()
	return data, ci.Timestamp.UnixNano(), ci.Length, link, err
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

func (r *fileReader) nextPcapgo() (data []byte, ci gopacket.CaptureInfo, link uint16, err error) {
	pkt := r.packets.Load() + 1
	defer func() {
		if p := recover(); p != nil {
			data, err = nil, fmt.Errorf("%s: packet %d: pcapgo panic: %v", r.path, pkt, p)
		}
	}()
	if r.ng != nil {
		data, ci, err = r.ng.ZeroCopyReadPacketData()
		if err == nil {
			if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
				link = uint16(lt)
			}
		}
	} else {
		data, ci, err = r.pcap.ZeroCopyReadPacketData()
		link = r.link
		if err == io.EOF && !ci.Timestamp.IsZero() {
			// The record header was read but none of its data: pcapgo's
			// io.ReadFull says EOF, yet the record is cut.
			err = io.ErrUnexpectedEOF
		}
		if err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("record at offset %d cut short: %w", r.off, ErrTruncated)
		}
	}
	switch {
	case err == nil:
		r.off += pcapRecordHeaderLen + int64(len(data))
		r.packets.Add(1)
		r.bytes.Add(uint64(len(data)))
		return data, ci, link, nil
	case err == io.EOF:
		return nil, ci, 0, io.EOF
	case errors.Is(err, ErrTruncated):
		r.truncated.Store(true)
		return nil, ci, 0, fmt.Errorf("%s: packet %d: %w", r.path, pkt, err)
	case r.ng != nil && errors.As(err, new(*frameError)):
		return nil, ci, 0, fmt.Errorf("%s: packet %d: %w", r.path, pkt, err)
	case r.ng != nil:
		return nil, ci, 0, fmt.Errorf("%s: packet %d (pcapng block near offset %d): %w", r.path, pkt, r.guard.blockStart, err)
	default:
		return nil, ci, 0, fmt.Errorf("%s: packet %d (record at offset %d): %w", r.path, pkt, r.off, err)
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
