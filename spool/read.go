package spool

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// ReadFile reads one spool file: the header's column names (without the
// leading '#') and the rows, each split on TAB. It checks the structure a
// writer guarantees: a header line first, every row as wide as the header,
// every line ended by LF (a last line without it is incomplete).
// It is meant for tests and tools; the loader maps columns by name.
func ReadFile(path string) (header []string, rows [][]string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("spool: read: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			if !strings.HasPrefix(text, "#") {
				return nil, nil, fmt.Errorf("spool: read %s:1: no header line starting with '#'", path)
			}
			header = strings.Split(text[1:], "\t")
			continue
		}
		row := strings.Split(text, "\t")
		if len(row) != len(header) {
			return nil, nil, fmt.Errorf("spool: read %s:%d: %d fields, header has %d", path, line, len(row), len(header))
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("spool: read %s:%d: %w", path, line+1, err)
	}
	if line == 0 {
		return nil, nil, fmt.Errorf("spool: read %s: empty file", path)
	}
	if _, err := f.Seek(-1, io.SeekEnd); err != nil {
		return nil, nil, fmt.Errorf("spool: read %s: %w", path, err)
	}
	var last [1]byte
	if _, err := io.ReadFull(f, last[:]); err != nil || last[0] != '\n' {
		return nil, nil, fmt.Errorf("spool: read %s:%d: last line not ended by LF (incomplete file)", path, line)
	}
	return header, rows, nil
}
