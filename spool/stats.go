package spool

import "sync/atomic"

// Types lists every file type, in the order of docs/spool.md.
var Types = []string{TypeFlows, TypeEvents, TypeStats, TypeHist, TypePacket, TypeIncomplete}

// FileStats counts the files of one type a Writer wrote.
type FileStats struct {
	Files  uint64 // complete files renamed into place
	Rows   uint64 // data rows in them (header lines not counted)
	Bytes  uint64 // bytes in them, header lines included
	Errors uint64 // attempts to write a file that failed (disk full…): its rows are kept and written again
}

// counters are the Writer's FileStats, updated by writeFile and read by
// Stats from any goroutine (the collector's metrics endpoint).
type counters struct {
	files, rows, bytes, errors [6]atomic.Uint64
}

func typeIndex(typ string) int {
	for i, t := range Types {
		if t == typ {
			return i
		}
	}
	return -1
}

func (c *counters) wrote(typ string, lines, bytes int, err error) {
	i := typeIndex(typ)
	if i < 0 {
		return
	}
	if err != nil {
		c.errors[i].Add(1)
		return
	}
	c.files[i].Add(1)
	c.rows[i].Add(uint64(lines))
	c.bytes[i].Add(uint64(bytes))
}

// Stats returns what the Writer wrote so far, per file type (keys: Types).
// Safe for concurrent use.
func (w *Writer) Stats() map[string]FileStats {
	m := make(map[string]FileStats, len(Types))
	for i, t := range Types {
		m[t] = FileStats{Files: w.count.files[i].Load(), Rows: w.count.rows[i].Load(), Bytes: w.count.bytes[i].Load(), Errors: w.count.errors[i].Load()}
	}
	return m
}
