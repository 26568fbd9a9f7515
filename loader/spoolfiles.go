package loader

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	// Same format as compress/gzip, about three times faster: archiving
	// was a third of the loader's time.
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

// Spool is one collector's spool directory (or, for a reload, a directory of
// archived spool files). Collector names the source in the database: flows are
// keyed on it, since each collector numbers its flows independently.
type Spool struct {
	Collector string
	Dir       string
}

// startLayout is the interval start in spool file names (docs/spool.md).
const startLayout = "20060102T150405Z"

// archiveDir is the directory under a spool where loaded files are kept, as
// archive/<YYYYMMDD of the file's start>/<type>/<name>.tsv.gz.
const archiveDir = "archive"

// spoolFile is one complete spool file to load.
type spoolFile struct {
	collector string
	spoolDir  string // spool directory the file is archived under; "" for a reload
	path      string // on disk: .tsv, or .tsv.gz for a reload
	name      string // "<type>/<type>-<start>.tsv": its name in loaded_files
	rt        *recordType
	start     time.Time
	order     int // rt's position: flows first, then recordTypes order

	// Set by read.
	data []byte // uncompressed content
	sum  string // sha256 of data, hex

	// want: the manifest's row for this file (nil: no manifest, a spool
	// of an older collector, or flows and events).
	want *manifestRow
}

func typeOrder(rt *recordType) int {
	if rt == flowsType {
		return 0
	}
	if rt == setsType {
		return len(recordTypes) + 2 // after the files it lists
	}
	for i, t := range recordTypes {
		if t == rt {
			return i + 1
		}
	}
	return len(recordTypes) + 1
}

// parseName checks a spool file name against the contract
// (<type>-<start>.tsv or <type>-<start>.<n>.tsv, n ≥ 1, docs/spool.md) and
// returns its type and start; ok is false for names the loader must ignore.
func parseName(base string) (rt *recordType, start time.Time, ok bool) {
	if strings.HasPrefix(base, ".") || !strings.HasSuffix(base, ".tsv") {
		return nil, time.Time{}, false
	}
	stem := strings.TrimSuffix(base, ".tsv")
	// <type>-<start>.<n>.tsv: a further file of the interval (a collector
	// restarted within it, or rows that came after the interval's file was
	// written); its rows add to the first file's (docs/spool.md).
	if j := strings.LastIndexByte(stem, '.'); j > 0 {
		n, err := strconv.Atoi(stem[j+1:])
		if err != nil || n < 1 || stem[j+1] == '0' {
			return nil, time.Time{}, false
		}
		stem = stem[:j]
	}
	i := strings.LastIndexByte(stem, '-')
	if i <= 0 {
		return nil, time.Time{}, false
	}
	if rt = typeByName(stem[:i]); rt == nil {
		return nil, time.Time{}, false
	}
	start, err := time.Parse(startLayout, stem[i+1:])
	if err != nil {
		return nil, time.Time{}, false
	}
	return rt, start, true
}

// listSpool returns the complete files of the known types in a spool
// directory. Directories of unknown types are reported in unknown: their
// files stay where they are until a loader that knows the type comes.
func listSpool(s Spool) (files []*spoolFile, unknown []string, err error) {
	top, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("spool %s: %w", s.Dir, err)
	}
	for _, d := range top {
		if !d.IsDir() || d.Name() == archiveDir || strings.HasPrefix(d.Name(), ".") {
			continue
		}
		if typeByName(d.Name()) == nil {
			unknown = append(unknown, d.Name())
			continue
		}
		dir := filepath.Join(s.Dir, d.Name())
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("spool %s: %w", dir, err)
		}
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			rt, start, ok := parseName(e.Name())
			if ok && d.Name() == setsType.Type {
				rt = setsType // a manifest, named after its set's first file
			}
			if !ok || rt.Type != d.Name() {
				continue
			}
			files = append(files, &spoolFile{
				collector: s.Collector, spoolDir: s.Dir, path: filepath.Join(dir, e.Name()),
				name: rt.Type + "/" + e.Name(), rt: rt, start: start, order: typeOrder(rt),
			})
		}
	}
	return files, unknown, nil
}

// listArchive returns the archived files (*.tsv.gz, any depth) under dir.
func listArchive(s Spool) ([]*spoolFile, error) {
	var files []*spoolFile
	err := filepath.WalkDir(s.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".tsv.gz") {
			return nil
		}
		base := strings.TrimSuffix(d.Name(), ".gz")
		rt, start, ok := parseName(base)
		if !ok {
			return nil
		}
		if filepath.Base(filepath.Dir(path)) == setsType.Type {
			rt = setsType // a manifest (archive/<day>/sets/…)
		}
		files = append(files, &spoolFile{
			collector: s.Collector, path: path, name: rt.Type + "/" + base,
			rt: rt, start: start, order: typeOrder(rt),
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", s.Dir, err)
	}
	return files, nil
}

// sortFiles puts files in load order: every flow definition first (so that
// observation rows find their flows), then by interval start and type. The
// order is a function of the set of files only, so that a rerun after a crash
// continues exactly where a clean run would be.
func sortFiles(files []*spoolFile) {
	sort.Slice(files, func(i, j int) bool {
		a, b := files[i], files[j]
		if (a.rt == flowsType) != (b.rt == flowsType) {
			return a.rt == flowsType
		}
		if !a.start.Equal(b.start) {
			return a.start.Before(b.start)
		}
		if a.order != b.order {
			return a.order < b.order
		}
		if a.collector != b.collector {
			return a.collector < b.collector
		}
		return a.name < b.name
	})
}

// read loads the file's content (uncompressing an archive) and checksum.
func (f *spoolFile) read() error {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	if strings.HasSuffix(f.path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	sum := sha256.Sum256(data)
	f.data, f.sum = data, hex.EncodeToString(sum[:])
	return nil
}

// archivePath is where a loaded spool file is kept.
func (f *spoolFile) archivePath() string {
	return filepath.Join(f.spoolDir, archiveDir, f.start.UTC().Format("20060102"), f.rt.Type, filepath.Base(f.path)+".gz")
}

// archiveFiles compresses loaded files into their spools' archive and
// removes them from the spool. It runs only after the commit that recorded
// the files; if it is interrupted, the next run finds them recorded and
// archives them then. The archive copies are made durable (one syncfs per
// spool, not an fsync per file: that would cost more than the load) before
// the originals go, so a crash leaves at least one of the two. It returns how
// many files it archived and the first error.
// made remembers the archive directories that exist (nil: none known), so
// that a directory is made once, not looked up for every file.
func archiveFiles(files []*spoolFile, made map[string]bool) (int, error) {
	var first error
	var written []*spoolFile
	dirs := map[string]bool{}
	for _, f := range files {
		if f.spoolDir == "" {
			continue // a reload: the file is already an archive
		}
		if err := f.writeArchive(made); err != nil {
			first = cmp.Or(first, err)
			continue
		}
		written = append(written, f)
		dirs[f.spoolDir] = true
	}
	for dir := range dirs {
		if err := syncFS(filepath.Join(dir, archiveDir)); err != nil {
			// Keep the originals: the next run archives them again.
			return 0, cmp.Or(first, fmt.Errorf("archive: sync %s: %w", dir, err))
		}
	}
	n := 0
	for _, f := range written {
		if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
			first = cmp.Or(first, fmt.Errorf("archive: remove %s: %w", f.path, err))
			continue
		}
		f.data = nil
		n++
	}
	return n, first
}

// writeArchive writes the gzip copy of f under a temporary name and renames
// it into place.
func (f *spoolFile) writeArchive(made map[string]bool) error {
	if f.data == nil {
		if err := f.read(); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
	}
	dst := f.archivePath()
	dir := filepath.Dir(dst)
	if !made[dir] {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		if made != nil {
			made[dir] = true
		}
	}
	tmp := filepath.Join(dir, "."+filepath.Base(dst)+".tmp")
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	zw := gzipPool.Get().(*gzip.Writer)
	defer gzipPool.Put(zw)
	zw.Reset(out)
	zw.Name = filepath.Base(f.path)
	zw.ModTime = f.start
	_, err = zw.Write(f.data)
	if err == nil {
		err = zw.Close()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("archive %s: %w", f.path, err)
	}
	return nil
}

// gzipPool reuses compressors: each holds about a megabyte of state, and
// allocating one per small spool file made the garbage collector dominate.
// The fastest level: on per-packet spool it compresses 2–3 times faster
// than the default level to about the same size (27 % of the text), and
// archiving is a large part of a load's CPU.
var gzipPool = sync.Pool{New: func() any {
	zw, err := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	if err != nil {
		panic(err) // BestSpeed is a valid level
	}
	return zw
}}

// syncFS flushes the file system holding dir (data and metadata).
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
