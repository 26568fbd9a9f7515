package collector

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The journal makes a collector restart lose nothing it acked. Every PDU
// the receiver accepts is appended to it (write(2) before the ack leaves:
// it survives a kill of the process; the file is synced every second, so a
// crash of the machine may lose the last second). Markers record what has
// reached the spool: 'I' an interval written, 'S' a point where every
// flow and event row of earlier PDUs is in a spool file.
//
// At start, the collector replays the journal through the receiver (which
// rebuilds each session's duplicate window, so retransmissions of PDUs
// acked before the restart are recognised) and its own handler (which
// rebuilds the flow registry with the same collector flow ids, and the
// reconciler's open records and intervals). Intervals already written are
// not written again; flow and event rows before the last 'S' marker
// neither. Then it goes on as if it had never stopped.
//
// While probes run the journal is compacted (compact.go): rewritten as a
// 'C' snapshot record, the PDUs still needed and an 'S' marker.
//
// Record layout: kind (1 byte), payload length (uint32 BE), payload, CRC32C
// of the three (payload at most 1 MiB, a snapshot 1 GiB). A torn record at the end (a kill during a write) is cut
// off at start.
//
// Layout on disk: <spool>/.collector/journal — the dot keeps it out of
// the loader's sight (docs/spool.md: names starting with a dot are not
// spool files).
type journal struct {
	f     *os.File
	w     *bufio.Writer
	path  string
	size  int64
	kept  int64 // size right after the last compaction
	dirty bool
}

const (
	recPDU      = 'P' // a datagram accepted by the receiver
	recInterval = 'I' // payload: int64 interval start, written to the spool
	recSpooled  = 'S' // every flow/event row of earlier PDUs is in a spool file
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// journalRecord is one record read back.
type journalRecord struct {
	kind    byte
	payload []byte
}

// openJournal opens (creating) the journal of spoolDir and returns its
// valid records; a torn tail is truncated.
func openJournal(spoolDir string) (*journal, []journalRecord, error) {
	dir := filepath.Join(spoolDir, ".collector")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("collector: journal: %w", err)
	}
	path := filepath.Join(dir, "journal")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("collector: journal: %w", err)
	}
	recs, good, err := readJournal(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("collector: journal %s: %w", path, err)
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("collector: journal %s: cut torn tail: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("collector: journal %s: %w", path, err)
	}
	return &journal{f: f, w: bufio.NewWriterSize(f, 64<<10), path: path, size: good}, recs, nil
}

// createJournal creates an empty journal file at path (truncating).
func createJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("collector: journal: %w", err)
	}
	return &journal{f: f, w: bufio.NewWriterSize(f, 64<<10), path: path}, nil
}

// readJournal reads records until the end or the first bad one; good is
// the offset after the last good record.
func readJournal(f *os.File) (recs []journalRecord, good int64, err error) {
	r := bufio.NewReaderSize(f, 256<<10)
	var hdr [5]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return recs, good, nil // end, or a torn header
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if n > 1<<20 && (hdr[0] != recSnapshot || n > 1<<30) {
			return recs, good, nil // garbage: a torn or corrupt tail
		}
		buf := make([]byte, n+4)
		if _, err := io.ReadFull(r, buf); err != nil {
			return recs, good, nil
		}
		crc := crc32.Update(crc32.Checksum(hdr[:], castagnoli), castagnoli, buf[:n])
		if crc != binary.BigEndian.Uint32(buf[n:]) {
			return recs, good, nil
		}
		recs = append(recs, journalRecord{kind: hdr[0], payload: buf[:n]})
		good += int64(5 + n + 4)
	}
}

// append writes one record into the file (not only the buffer: a killed
// process must not lose it).
func (j *journal) append(kind byte, payload []byte) error {
	var hdr [5]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	var tail [4]byte
	binary.BigEndian.PutUint32(tail[:], crc32.Update(crc32.Checksum(hdr[:], castagnoli), castagnoli, payload))
	j.w.Write(hdr[:])
	j.w.Write(payload)
	j.w.Write(tail[:])
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("collector: journal: %w", err)
	}
	j.size += int64(len(payload) + 9)
	j.dirty = true
	return nil
}

func (j *journal) interval(start int64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(start))
	return j.append(recInterval, b[:])
}

// sync makes the journal durable against a machine crash.
func (j *journal) sync() error {
	if !j.dirty {
		return nil
	}
	j.dirty = false
	return j.f.Sync()
}

// reset empties the journal: everything it held is in the spool.
func (j *journal) reset() error {
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("collector: journal: %w", err)
	}
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("collector: journal: %w", err)
	}
	j.w.Reset(j.f)
	j.size, j.kept = 0, 0
	return j.f.Sync()
}

func (j *journal) close() error {
	return errors.Join(j.w.Flush(), j.f.Sync(), j.f.Close())
}
