//go:build linux

package capture

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps a regular file's size bytes read-only, populated (the page
// cache's pages mapped in one call rather than one fault per 64 KB). It
// returns nil when the file cannot be mapped, and the file is then read.
func mapFile(f *os.File, size int64) []byte {
	if size <= 0 || size > int64(maxInt) {
		return nil
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil
	}
	return m
}

func unmapFile(m []byte) error { return unix.Munmap(m) }
