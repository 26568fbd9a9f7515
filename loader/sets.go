package loader

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// An interval's files are committed as one set (docs/spool.md, "Commit"):
// the collector renames the set's manifest into sets/ first, then each
// file. The loader takes the files of an interval type (every type but
// flows and events) only as part of a complete set: its manifest is there
// and each file it lists is in the spool (or was loaded by an earlier run).
// A file no manifest lists is not committed yet (or left over by a
// collector killed before the commit, which removes it at restart): it
// waits. A spool without a sets/ directory comes from a collector older
// than manifests; its files are taken as they are.

// manifestRow is one file of a set, as its manifest lists it.
type manifestRow struct {
	typ, name string
	rows      int64
	bytes     int64
	sum       string
}

// readManifest parses a manifest (header type file rows bytes sha256).
func readManifest(path string) ([]manifestRow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%s: incomplete (no final LF)", path)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if lines[0] != "#type\tfile\trows\tbytes\tsha256" {
		return nil, fmt.Errorf("%s:1: not a manifest header", path)
	}
	var out []manifestRow
	for i, l := range lines[1:] {
		f := strings.Split(l, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("%s:%d: %d fields, want 5", path, i+2, len(f))
		}
		rows, e1 := strconv.ParseInt(f[2], 10, 64)
		n, e2 := strconv.ParseInt(f[3], 10, 64)
		if e1 != nil || e2 != nil || f[0] == "" || strings.ContainsAny(f[1], "/\\") || len(f[4]) != 64 {
			return nil, fmt.Errorf("%s:%d: malformed manifest row %q", path, i+2, l)
		}
		out = append(out, manifestRow{typ: f[0], name: f[1], rows: rows, bytes: n, sum: f[4]})
	}
	return out, nil
}

// hasSets reports whether a spool's collector writes manifests.
func hasSets(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, setsType.Type))
	return err == nil && fi.IsDir()
}

// completeSets keeps, of one spool's files, those that may be loaded now:
// flows and events files, and the files of complete sets with their
// manifests. loaded tells which names earlier runs loaded. It returns the
// number of files left waiting for their set.
func (r *run) completeSets(ctx context.Context, s Spool, files []*spoolFile) ([]*spoolFile, int, error) {
	if !hasSets(s.Dir) {
		return files, 0, nil
	}
	byName := map[string]*spoolFile{}
	var manifests []*spoolFile
	for _, f := range files {
		if f.rt == setsType {
			manifests = append(manifests, f)
		} else {
			byName[f.name] = f
		}
	}
	// The listed files already loaded by an earlier run (a run that died
	// between two batches of one set).
	var listedNames []*spoolFile
	sets := map[*spoolFile][]manifestRow{}
	for _, m := range manifests {
		rows, err := readManifest(m.path)
		if err != nil {
			r.stats.Refused++
			r.log.Error("manifest refused; its set waits", "file", m.path, "err", err)
			continue
		}
		sets[m] = rows
		for _, row := range rows {
			listedNames = append(listedNames, &spoolFile{collector: s.Collector, name: row.typ + "/" + row.name})
		}
	}
	loaded, err := r.loadedSums(ctx, listedNames)
	if err != nil {
		return nil, 0, err
	}
	var out []*spoolFile
	taken := map[*spoolFile]bool{}
	waitingSets := 0
	keep := int64(keepVerified)
	for _, m := range manifests {
		rows, ok := sets[m]
		if !ok {
			continue
		}
		complete := true
		for _, row := range rows {
			if typeByName(row.typ) == nil {
				continue // a type without a table: stays in the spool (reported)
			}
			name := row.typ + "/" + row.name
			if byName[name] == nil && loaded[s.Collector+"\x00"+name] == "" {
				complete = false
			}
		}
		if !complete {
			r.log.Info("interval set incomplete (collector still renaming, or stopped before); waits", "manifest", m.path)
			waitingSets++
			continue
		}
		if err := verifySet(byName, rows, &keep); err != nil {
			r.stats.Refused++
			for _, row := range rows {
				if f := byName[row.typ+"/"+row.name]; f != nil {
					taken[f] = true // refused with its set, not waiting
				}
			}
			r.log.Error("interval set refused: a file is not as committed; the set stays in the spool", "manifest", m.path, "err", err)
			continue
		}
		for i := range rows {
			if f := byName[rows[i].typ+"/"+rows[i].name]; f != nil {
				f.want = &rows[i]
				out = append(out, f)
				taken[f] = true
			}
		}
		out = append(out, m)
	}
	waiting := 0
	for _, f := range files {
		switch {
		case taken[f]:
		case f.rt == setsType:
		case f.rt == flowsType || f.rt.Type == "events":
			out = append(out, f)
		default:
			waiting++
		}
	}
	if waiting > 0 {
		r.log.Info("files of intervals not committed as a complete set; they wait", "spool", s.Dir, "files", waiting)
	}
	return out, waiting, nil
}

// keepVerified bounds the bytes of verified files kept in memory for their
// load, so that most files are read and hashed once; the others are read
// again when loaded (a spool's backlog may not fit in memory).
const keepVerified = 64 << 20

// verifySet checks that every present file of a set is the one the
// collector committed: its size and sha256 as the manifest says (a torn or
// altered file would otherwise load part of the set). A verified file's
// content stays for its load while *keep (bytes) allows.
func verifySet(byName map[string]*spoolFile, rows []manifestRow, keep *int64) (err error) {
	defer func() {
		if err != nil { // the set is not loaded: nothing to keep
			for _, row := range rows {
				if f := byName[row.typ+"/"+row.name]; f != nil {
					f.data = nil
				}
			}
		}
	}()
	for i := range rows {
		f := byName[rows[i].typ+"/"+rows[i].name]
		if f == nil {
			continue // loaded by an earlier run
		}
		f.want = &rows[i]
		if err := f.read(); err != nil {
			return err
		}
		if err := f.checkComplete(); err != nil {
			return err
		}
		if n := int64(len(f.data)); n <= *keep {
			*keep -= n
		} else {
			f.data = nil // read again when loaded
		}
	}
	return nil
}

// checkComplete refuses a file that is not whole: empty (not even a
// header), a last line without its LF, or (with a manifest) another size
// or checksum than the collector committed.
func (f *spoolFile) checkComplete() error {
	switch {
	case len(f.data) == 0:
		return fmt.Errorf("%s: empty file (no header): incomplete", f.path)
	case f.data[len(f.data)-1] != '\n':
		return fmt.Errorf("%s:%d: last line not ended by LF: incomplete file", f.path, bytes.Count(f.data, []byte{'\n'})+1)
	case f.want != nil && (int64(len(f.data)) != f.want.bytes || f.sum != f.want.sum):
		return fmt.Errorf("%s: %d bytes, sha256 %s; its manifest says %d bytes, sha256 %s", f.path, len(f.data), f.sum, f.want.bytes, f.want.sum)
	}
	return nil
}
