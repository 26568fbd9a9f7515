package delayline

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Entry is one line of a delay line's record (see RecordHeader).
type Entry struct {
	Arrival   int64
	Departure int64 // 0 when dropped
	Applied   int64 // intended delay, ns (0 when dropped)
	Late      int64 // departure − due, ns
	Action    string
	Proto     uint8
	IPID      uint16
	Sport     uint16
	Dport     uint16
	Seq       int64
	Key       uint64
}

// Dropped reports whether the line dropped the packet.
func (e Entry) Dropped() bool { return e.Departure == 0 }

// ReadRecord parses a record written by a Line.
func ReadRecord(r io.Reader) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() || sc.Text()+"\n" != RecordHeader {
		return nil, fmt.Errorf("delayline: record: missing header")
	}
	var out []Entry
	for line := 2; sc.Scan(); line++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 11 {
			return nil, fmt.Errorf("delayline: record line %d: %d fields, want 11", line, len(f))
		}
		var e Entry
		var first error
		num := func(s string, base, bits int) uint64 {
			v, err := strconv.ParseUint(s, base, bits)
			if err != nil && first == nil {
				first = err
			}
			return v
		}
		snum := func(s string) int64 {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil && first == nil {
				first = err
			}
			return v
		}
		e.Arrival = snum(f[0])
		if f[1] != "dropped" {
			e.Departure = snum(f[1])
			e.Applied = snum(f[2])
			e.Late = snum(f[3])
		}
		e.Action = f[4]
		e.Proto = uint8(num(f[5], 10, 8))
		e.IPID = uint16(num(f[6], 10, 16))
		e.Sport = uint16(num(f[7], 10, 16))
		e.Dport = uint16(num(f[8], 10, 16))
		e.Seq = snum(f[9])
		e.Key = num(f[10], 16, 64)
		if first != nil {
			return nil, fmt.Errorf("delayline: record line %d: %w", line, first)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("delayline: record: %w", err)
	}
	return out, nil
}
