package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// record is one packet as a reader delivered it, copied.
type record struct {
	data []byte
	ts   int64
	wire int
	link uint16
}

// readOutcome is everything a reader made of one file: the records it
// delivered, and how it stopped.
type readOutcome struct {
	recs      []record
	openErr   error // the file was refused
	truncated bool  // it ended inside a record
	err       error // it stopped on another error
}

// drain takes next's records until it ends, and how it ended.
func (o readOutcome) drain(next func() ([]byte, int64, int, uint16, error)) readOutcome {
	for {
		data, ts, wire, link, err := next()
		switch {
		case err == io.EOF:
			return o
		case errors.Is(err, ErrTruncated):
			o.truncated = true
			return o
		case err != nil:
			o.err = err
			return o
		}
		o.recs = append(o.recs, record{bytes.Clone(data), ts, wire, link})
	}
}

// corpusFiles lists every file under the corpus directory dir.
func corpusFiles(dir string) []string {
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

// newRead reads a file with the reader tmon uses (fileReader), reading it.
func newRead(path string) readOutcome { return newReadAs(path, false) }

// newReadAs reads a file with the reader tmon uses, mapped into memory
// (FileConfig.Map) or read.
func newReadAs(path string, mapped bool) readOutcome {
	var o readOutcome
	f, err := os.Open(path)
	if err != nil {
		o.openErr = err
		return o
	}
	defer f.Close()
	r, err := newFileReader(path, f, mapped)
	if err != nil {
		o.openErr = err
		return o
	}
	defer r.close()
	return o.drain(r.next)
}

// oldRead reads a file the way the reader before ngReader did: pcapng
// through ngGuard into pcapgo's NgReader, gzip-compressed pcap through
// pcapgo's Reader, a pcapgo panic being an error. Classic pcap it read in
// place already (rawPcap, checked against pcapgo by
// TestRawPcapAgreesWithPcapgo); here it is read by pcapgo too.
func oldRead(path string) (o readOutcome) {
	f, err := os.Open(path)
	if err != nil {
		o.openErr = err
		return o
	}
	defer f.Close()
	defer func() {
		if p := recover(); p != nil {
			o.err = fmt.Errorf("pcapgo panic: %v", p)
		}
	}()
	br := bufio.NewReaderSize(f, 64<<10)
	magic, _ := br.Peek(4)
	format, err := sniffFormat(magic)
	if err != nil {
		o.openErr = err
		return o
	}
	var next func() ([]byte, int64, int, uint16, error)
	if format == FormatPcapNg {
		g := &ngGuard{r: br}
		ng, err := pcapgo.NewNgReader(g, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			o.openErr = err
			return o
		}
		next = func() ([]byte, int64, int, uint16, error) {
			data, ci, err := ng.ZeroCopyReadPacketData()
			if err != nil {
				return nil, 0, 0, 0, err
			}
			lt, _ := ci.AncillaryData[0].(layers.LinkType)
			return data, ci.Timestamp.UnixNano(), ci.Length, uint16(lt), nil
		}
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			o.openErr = err
			return o
		}
		pr.SetSnaplen(MaxSnaplen)
		next = func() ([]byte, int64, int, uint16, error) {
			data, ci, err := pr.ZeroCopyReadPacketData()
			if err == io.EOF && !ci.Timestamp.IsZero() {
				err = io.ErrUnexpectedEOF // header read, no data: cut
			}
			if err == io.ErrUnexpectedEOF {
				err = ErrTruncated
			}
			return data, ci.Timestamp.UnixNano(), ci.Length, uint16(pr.LinkType()), err
		}
	}
	return o.drain(next)
}

// TestCorpusReadsAsBefore reads every pcapng capture of the corpus, and a
// gzip-compressed copy of every classic one (the tcpdump test suite's
// captures, many deliberately malformed, the two-point and the Zeek
// captures), with the reader tmon uses and with the reader it replaced: the
// same records (bytes, stamps, original lengths, link types), and the same
// ending (clean, truncated, or an error; refused at open). Every classic
// pcap itself is compared with pcapgo's reading by
// TestRawPcapAgreesWithPcapgo. The documented differences: the
// old reader kept a link type in 8 bits (pcapgo's layers.LinkType), the new
// one all 16; pcapgo multiplied a microsecond fraction out of range (≥ 10⁶)
// by 1000 in 32 bits and wrapped; and a corrupt file may be refused by one reader at open and
// by the other at its first record.
func TestCorpusReadsAsBefore(t *testing.T) {
	dir := corpusDir(t, "")
	files := corpusFiles(dir)
	counts := map[string]int{}
	tmp := t.TempDir()
	var records, ends int
	for _, p := range files {
		b := make([]byte, 4)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.ReadFull(f, b)
		f.Close()
		format, err := sniffFormat(b[:n])
		if err != nil {
			continue // not a capture: README, logs, truth tables
		}
		counts[format]++
		if format != FormatPcapNg && format != FormatGzip {
			// Classic pcap is read in place as before (compared with
			// pcapgo by TestRawPcapAgreesWithPcapgo); compressed, it
			// went through pcapgo: compare that with a gzip copy.
			gz := filepath.Join(tmp, "x.pcap.gz")
			writeGzip(t, p, gz)
			p = gz
			counts[FormatGzip]++
		}
		got, want := newRead(p), oldRead(p)
		if (got.openErr == nil) != (want.openErr == nil) {
			// Refused at open by one, at the first record by the other.
			if len(got.recs)+len(want.recs) != 0 || (got.openErr == nil && got.err == nil && !got.truncated) || (want.openErr == nil && want.err == nil && !want.truncated) {
				t.Errorf("%s: open: new %v, old %v", p, got.openErr, want.openErr)
			}
			continue
		}
		if len(got.recs) != len(want.recs) {
			t.Errorf("%s: %d records (truncated %v, %v), old reader %d (truncated %v, %v)", p, len(got.recs), got.truncated, got.err, len(want.recs), want.truncated, want.err)
			continue
		}
		for i := range got.recs {
			g, w := got.recs[i], want.recs[i]
			if g.link != w.link && uint8(g.link) == uint8(w.link) && g.link > 255 {
				w.link = g.link // pcapgo kept 8 bits
			}
			if d := g.ts - w.ts; format != FormatPcapNg && d > 0 && d%(1<<32) == 0 && d < 1000<<32 {
				// A microsecond fraction out of range (≥ 10⁶): pcapgo
				// multiplied it by 1000 in 32 bits and wrapped.
				w.ts = g.ts
			}
			if !bytes.Equal(g.data, w.data) || g.ts != w.ts || g.wire != w.wire || g.link != w.link {
				t.Errorf("%s: record %d: %d bytes at %d (wire %d, link %d); old reader %d bytes at %d (wire %d, link %d)",
					p, i+1, len(g.data), g.ts, g.wire, g.link, len(w.data), w.ts, w.wire, w.link)
				break
			}
		}
		records += len(got.recs)
		if got.truncated != want.truncated || (got.err == nil) != (want.err == nil) {
			t.Errorf("%s: ends truncated %v, %v; old reader truncated %v, %v", p, got.truncated, got.err, want.truncated, want.err)
		}
		if got.truncated || got.err != nil {
			ends++
		}
	}
	if counts[FormatPcapNg] < 20 || counts[FormatGzip] < 100 {
		t.Fatalf("only %v captures under %s", counts, dir)
	}
	t.Logf("captures by format %v: %d records read alike, %d files end alike on a cut or an error", counts, records, ends)
}

// writeGzip writes a gzip-compressed copy of src to dst.
func writeGzip(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMappedReadsAsRead reads every capture of the corpus mapped into memory
// (FileConfig.Map) and read: the same records, the same ending.
func TestMappedReadsAsRead(t *testing.T) {
	dir := corpusDir(t, "")
	var files, records int
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		read, mapped := newReadAs(p, false), newReadAs(p, true)
		if read.openErr != nil {
			if mapped.openErr == nil {
				t.Errorf("%s: refused read (%v), not mapped", p, read.openErr)
			}
			return nil
		}
		files++
		if mapped.openErr != nil || len(mapped.recs) != len(read.recs) || mapped.truncated != read.truncated || (mapped.err == nil) != (read.err == nil) {
			t.Errorf("%s: mapped %d records (%v, truncated %v, %v), read %d (truncated %v, %v)", p,
				len(mapped.recs), mapped.openErr, mapped.truncated, mapped.err, len(read.recs), read.truncated, read.err)
			return nil
		}
		for i, g := range mapped.recs {
			w := read.recs[i]
			if !bytes.Equal(g.data, w.data) || g.ts != w.ts || g.wire != w.wire || g.link != w.link {
				t.Errorf("%s: record %d differs", p, i+1)
				break
			}
		}
		records += len(read.recs)
		return nil
	})
	if files < 800 {
		t.Fatalf("only %d captures under %s", files, dir)
	}
	t.Logf("%d captures, %d records read alike mapped and read", files, records)
}
