package spool

import (
	"errors"
	"hash"
	"io"
	"os"
)

// writeFile writes header and rows into a new file at path and syncs it
// (when sync).
func writeFile(path, hdr string, rows []byte, sync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	// Two writes: the rows are in memory already, a buffer would only
	// copy them (and was a 64 KiB allocation per file).
	if _, err = f.WriteString(hdr); err == nil {
		_, err = f.Write(rows)
	}
	if sync {
		err = errors.Join(err, f.Sync())
	}
	return errors.Join(err, f.Close())
}

// writeSetFile writes f (not synced: a volatile writer's) under path,
// streaming the rows of f.gen, which it counts, and adds its bytes to sum
// when not nil.
func writeSetFile(path, hdr string, f *setFile, sum hash.Hash) error {
	if f.gen == nil {
		if sum != nil {
			io.WriteString(sum, hdr)
			sum.Write(f.rows)
		}
		return writeFile(path, hdr, f.rows, false)
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if sum != nil {
		io.WriteString(sum, hdr)
	}
	f.lines, f.size = 0, 0
	_, err = out.WriteString(hdr)
	if err == nil {
		err = f.gen(func(b []byte) error {
			if sum != nil {
				sum.Write(b)
			}
			f.lines += countLines(b)
			f.size += len(b)
			_, err := out.Write(b)
			return err
		})
	}
	return errors.Join(err, out.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
