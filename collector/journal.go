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
	"sync"

	"github.com/tmon-project/tmon/internal/killpoint"
)

// The journal makes a collector restart lose nothing it acked. Every PDU
// the receiver accepts is appended to it, and its ack leaves only once the
// journal is synced past it (group commit, durable.go). Records say what
// has reached the spool: 'W' a set of spool files committed (an interval's
// files, or a flows or events file: the commit point of docs/spool.md), 'S'
// a point where every flow and event row of earlier PDUs is in a spool
// file ('I', an interval written, from older collectors, is still read).
// 'A' lists the collector flow ids the flow dictionary forgot at that
// point (ageing.go): the replay forgets them there too.
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
	// mu orders the appends of the receiving goroutine (PDU records) and
	// of the reconciliation goroutine (an interval's commit record, with
	// its sync): a record is written whole, and a commit record that could
	// not be synced is cut off before anything follows it.
	mu   sync.Mutex
	f    *os.File
	path string
	size int64 // bytes of whole records written
	kept int64 // size right after the last compaction
	buf  []byte
	// pending is a PDU record whose write failed (disk full): it was
	// handled, so it is written before any later record, and no ack
	// leaves until it is.
	pending []byte
	// broken: a failed write could not be cut off the file; every later
	// append fails (the collector stops taking PDUs) until a compaction
	// rewrites the journal.
	broken bool
}

const (
	recPDU      = 'P' // a datagram accepted by the receiver
	recInterval = 'I' // payload: int64 interval start, written to the spool (older collectors)
	recCommit   = 'W' // payload: JSON spool.Set, committed
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
	return &journal{f: f, path: path, size: good}, recs, nil
}

// createJournal creates an empty journal file at path (truncating).
func createJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("collector: journal: %w", err)
	}
	return &journal{f: f, path: path}, nil
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

// encode appends one record to b.
func encode(b []byte, kind byte, payload []byte) []byte {
	var hdr [5]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	b = append(append(b, hdr[:]...), payload...)
	return binary.BigEndian.AppendUint32(b, crc32.Update(crc32.Checksum(hdr[:], castagnoli), castagnoli, payload))
}

// write writes whole records into the file (not a buffer: a killed process
// must not lose them). On failure the file is cut back to its last whole
// record, so a later write starts clean. j.mu is held.
func (j *journal) write(rec []byte) error {
	if j.broken {
		return errors.New("collector: journal: unusable after a failed write")
	}
	n, err := j.f.Write(rec)
	if err == nil {
		j.size += int64(n)
		return nil
	}
	if n > 0 {
		if terr := j.f.Truncate(j.size); terr != nil {
			j.broken = true
		} else if _, serr := j.f.Seek(j.size, io.SeekStart); serr != nil {
			j.broken = true
		}
	}
	return fmt.Errorf("collector: journal: %w", err)
}

// flushPending writes the pending PDU record, if any.
func (j *journal) flushPending() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.flushPendingLocked()
}

func (j *journal) flushPendingLocked() error {
	if j.pending == nil {
		return nil
	}
	if err := j.write(j.pending); err != nil {
		return err
	}
	j.pending = nil
	return nil
}

// append writes one record, after the pending one.
func (j *journal) append(kind byte, payload []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.appendLocked(kind, payload)
}

func (j *journal) appendLocked(kind byte, payload []byte) error {
	if err := j.flushPendingLocked(); err != nil {
		return err
	}
	j.buf = encode(j.buf[:0], kind, payload)
	return j.write(j.buf)
}

// appendPDU writes a PDU record; on failure the record becomes pending:
// the PDU is handled, and is written before any later record.
func (j *journal) appendPDU(payload []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.appendLocked(recPDU, payload)
	if err != nil && j.pending == nil {
		j.pending = encode(nil, recPDU, payload)
	}
	return err
}

// sync makes the journal durable against a machine crash. It runs
// without j.mu (appends go on meanwhile); the collector's syncMu keeps a
// compaction from replacing the file under it.
func (j *journal) sync() error {
	return j.f.Sync()
}

// commit appends a record and syncs it, with nothing written in between;
// when the sync fails the record is cut off again (or, failing that, the
// journal marked broken), so that it does not exist.
func (j *journal) commit(kind byte, payload []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	before := j.size
	if err := j.appendLocked(kind, payload); err != nil {
		return err
	}
	killpoint.At("journal.commit")
	if err := j.f.Sync(); err != nil {
		if j.f.Truncate(before) != nil {
			j.broken = true
		} else if _, serr := j.f.Seek(before, io.SeekStart); serr != nil {
			j.broken = true
		} else {
			j.size = before
		}
		return fmt.Errorf("collector: journal sync: %w", err)
	}
	return nil
}

// bytes returns the size of the whole records written.
func (j *journal) bytes() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.size
}

// reset empties the journal: everything it held is in the spool.
func (j *journal) reset() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("collector: journal: %w", err)
	}
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("collector: journal: %w", err)
	}
	j.size, j.kept, j.pending, j.broken = 0, 0, nil, false
	return j.f.Sync()
}

func (j *journal) close() error {
	return errors.Join(j.f.Sync(), j.f.Close())
}
