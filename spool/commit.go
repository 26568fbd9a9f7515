package spool

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tmon-project/tmon/internal/killpoint"
)

// An interval's files are committed as one set, once (docs/spool.md,
// "Commit"):
//
//  1. every file of the set is written under its temporary name
//     (.<name>.tmp), synced, and so is the set's manifest
//     (sets/.<first type>-<start>[.n].tsv.tmp) listing them;
//  2. the Committer makes the set durable in one atomic step (the
//     collector: a record in its journal, synced) — the commit point;
//  3. the manifest is renamed into place, then each file.
//
// A process killed before 2 leaves temporary files only, which Recover
// removes (the collector writes the interval again from its journal); killed
// after 2, Recover renames what is left (roll forward). So a restart sees
// either the whole set or none of it, and the loader, which takes the files
// of an interval only once their manifest is there and lists all of them
// present, never loads part of a set. Flows and events files are sets of
// one file without a manifest: their rename is atomic on its own.

// TypeSets is the directory and name prefix of the interval manifests.
const TypeSets = "sets"

// ColsSets are the columns of a manifest: one row per file of the set.
var ColsSets = []string{"type", "file", "rows", "bytes", "sha256"}

// Set names the files of one commit: those of Types for the interval
// starting at Start (ns), with name suffix N (0: none; else .N, docs/spool.md).
// Manifest: listed in sets/ (every type but flows and events). Interval:
// the reconciler's interval of that start (owd_* files, or none when it was
// empty): once committed it is never written again.
type Set struct {
	Start    int64    `json:"start"`
	N        int      `json:"n"`
	Types    []string `json:"types"`
	Manifest bool     `json:"manifest,omitempty"`
	Interval bool     `json:"interval,omitempty"`
}

// Committer makes a set durable before its files become visible. When
// CommitSet returns nil the set is committed: the Writer renames its files,
// and after a kill Recover does. An error leaves the set uncommitted (its
// temporary files are removed and the write fails).
type Committer interface {
	CommitSet(*Set) error
}

// SetCommitter installs c (nil: sets are committed by their renames alone).
func (w *Writer) SetCommitter(c Committer) {
	w.mu.Lock()
	w.committer = c
	w.mu.Unlock()
}

// Name returns the file name of typ in the set: <type>-<start>[.n].tsv;
// the manifest (TypeSets) is named after the set's first file,
// sets/<first type>-<start>[.n].tsv, so that sets of different types of
// one interval (the reconciler's, flow_counters) never contend for a name.
func (s *Set) Name(typ string) string {
	if typ == TypeSets && len(s.Types) > 0 {
		typ = s.Types[0]
	}
	n := typ + "-" + time.Unix(0, s.Start).UTC().Format(timeFormat)
	if s.N > 0 {
		n += "." + strconv.Itoa(s.N)
	}
	return n + ".tsv"
}

// Path returns the path of typ's file in the spool dir.
func (s *Set) Path(dir, typ string) string { return filepath.Join(dir, typ, s.Name(typ)) }

// TmpPath returns the temporary path of typ's file.
func (s *Set) TmpPath(dir, typ string) string {
	return filepath.Join(dir, typ, "."+s.Name(typ)+".tmp")
}

// files are the (type directory, type) of every file of the set, manifest
// first: it is renamed before the data files.
func (s *Set) all() []string {
	if s.Manifest {
		return append([]string{TypeSets}, s.Types...)
	}
	return s.Types
}

// setFile is one file of a set being written.
type setFile struct {
	typ  string
	cols []string
	rows []byte
	// gen, when set, makes the rows instead: it hands put the rows a
	// piece at a time (whole rows, each piece valid only during the call).
	// A volatile writer streams them into the file, so that tens of
	// megabytes of per-packet rows are never held at once; a durable one
	// collects them first, as it writes and syncs a set's files at once.
	gen func(put func(rows []byte) error) error
	// lines and size count the rows (set by writeSet).
	lines, size int
}

// freeN returns the smallest n such that no file of the set, complete,
// temporary or archived by the loader (archive/<day>/<type>/<name>.gz, see
// docs/loader.md), has that name: a complete file is never replaced, and a
// loaded name never reused (the loader would take the new file for the one
// it loaded).
func (w *Writer) freeN(set *Set) (int, error) {
	day := time.Unix(0, set.Start).UTC().Format("20060102")
	for n := 0; ; n++ {
		s := *set
		s.N = n
		free := true
		for _, typ := range s.all() {
			for _, p := range []string{s.Path(w.dir, typ), s.TmpPath(w.dir, typ),
				filepath.Join(w.dir, "archive", day, typ, s.Name(typ)+".gz")} {
				_, err := os.Lstat(p)
				if err == nil {
					free = false
					break
				}
				if !errors.Is(err, fs.ErrNotExist) {
					return 0, err
				}
			}
			if !free {
				break
			}
		}
		if free {
			return n, nil
		}
	}
}

// writeSet writes files as one set and commits it. w.mu is held. An error
// before the commit removes every temporary file: nothing of the set
// exists, and the caller may write it again. Once committed, a failed
// rename is kept in w.unfinished and retried by Cut; writeSet then returns
// nil, since the set is written (writing it again would double it).
func (w *Writer) writeSet(start int64, files []setFile, manifest, interval bool) (err error) {
	s := &Set{Start: start, Manifest: manifest, Interval: interval}
	for _, f := range files {
		s.Types = append(s.Types, f.typ)
	}
	if len(files) == 0 {
		if w.committer != nil && interval {
			return w.committer.CommitSet(s) // an empty interval: only the fact that it is written
		}
		return nil
	}
	if !w.volatile {
		for i := range files {
			if f := &files[i]; f.gen != nil {
				var rows []byte
				if err := f.gen(func(b []byte) error { rows = append(rows, b...); return nil }); err != nil {
					return err
				}
				f.rows, f.gen = rows, nil
			}
		}
	}
	for i := range files {
		if f := &files[i]; f.gen == nil {
			f.lines, f.size = countLines(f.rows), len(f.rows)
		}
	}
	defer func() {
		w.failing = err
		for _, f := range files {
			w.count.wrote(f.typ, f.lines, len(f.cols)+f.size+sumLen(f.cols), err)
		}
		if err != nil {
			err = fmt.Errorf("spool: write %s: %w", s.Path(w.dir, s.Types[0]), err)
		}
	}()
	dirs := map[string]bool{}
	for _, typ := range s.all() {
		dir := filepath.Join(w.dir, typ)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		dirs[dir] = true
	}
	if s.N, err = w.freeN(s); err != nil {
		return err
	}
	var written []string
	committed := false
	defer func() {
		if !committed {
			for _, p := range written {
				os.Remove(p)
			}
		}
	}()
	// Every file is written and synced at once: the fsyncs overlap (one
	// journal commit of the file system serves several), where one after
	// the other they cost a disk flush each while the collector waits.
	type pending struct {
		path, hdr string
		f         *setFile
	}
	var todo []pending
	for i := range files {
		f := &files[i]
		tmp := s.TmpPath(w.dir, f.typ)
		written = append(written, tmp)
		todo = append(todo, pending{tmp, "#" + strings.Join(f.cols, "\t") + "\n", f})
	}
	var man []byte
	manLine := func(p pending, sum hash.Hash) {
		man = append(man, p.f.typ+"\t"+s.Name(p.f.typ)+"\t"...)
		man = strconv.AppendInt(man, int64(p.f.lines), 10)
		man = strconv.AppendInt(append(man, '\t'), int64(len(p.hdr)+p.f.size), 10)
		man = append(append(man, '\t'), hex.EncodeToString(sum.Sum(nil))...)
		man = append(man, '\n')
	}
	manTmp := s.TmpPath(w.dir, TypeSets)
	manHdr := "#" + strings.Join(ColsSets, "\t") + "\n"
	if w.volatile {
		// Nothing to overlap: one after the other, no goroutines, each
		// file summed as it is written.
		for _, p := range todo {
			var sum hash.Hash
			if manifest {
				sum = sha256.New()
			}
			if err := writeSetFile(p.path, p.hdr, p.f, sum); err != nil {
				return err
			}
			if manifest {
				manLine(p, sum)
			}
		}
		if manifest {
			written = append(written, manTmp)
			if err := writeFile(manTmp, manHdr, man, false); err != nil {
				return err
			}
		}
	} else {
		for _, p := range todo {
			if manifest {
				sum := sha256.New()
				io.WriteString(sum, p.hdr)
				sum.Write(p.f.rows)
				manLine(p, sum)
			}
		}
		if manifest {
			written = append(written, manTmp)
			todo = append(todo, pending{manTmp, manHdr, &setFile{rows: man}})
		}
		if err := inParallel(len(todo), func(i int) error { return writeFile(todo[i].path, todo[i].hdr, todo[i].f.rows, true) }); err != nil {
			return err
		}
	}
	if testHookBeforeRename != nil {
		if err := testHookBeforeRename(written[0]); err != nil {
			return err
		}
	}
	killpoint.At("spool.written")
	if w.committer != nil {
		// The temporary names must survive a machine crash once the
		// commit refers to them.
		list := make([]string, 0, len(dirs))
		for dir := range dirs {
			list = append(list, dir)
		}
		if w.volatile {
			list = nil
		}
		if err := inParallel(len(list), func(i int) error { return syncDir(list[i]) }); err != nil {
			return err
		}
		if err := w.committer.CommitSet(s); err != nil {
			return err
		}
	}
	committed = true
	killpoint.At("spool.committed")
	if err := finish(w.dir, s, !w.volatile); err != nil {
		w.unfinished = append(w.unfinished, *s)
		w.finishErr = err
	}
	return nil
}

// finish renames what is left of a committed set into place, manifest
// first, and syncs the directories (when sync).
func finish(dir string, s *Set, sync bool) error {
	var errs []error
	var renamed []string
	for _, typ := range s.all() {
		tmp := s.TmpPath(dir, typ)
		if err := os.Rename(tmp, s.Path(dir, typ)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("spool: commit %s: %w", tmp, err))
			continue
		}
		killpoint.At("spool.renamed")
		if sync {
			renamed = append(renamed, typ)
		}
	}
	// The directories are synced together once every rename is made (the
	// set is committed: a crash before rolls it forward all the same).
	errs = append(errs, inParallel(len(renamed), func(i int) error {
		if err := syncDir(filepath.Join(dir, renamed[i])); err != nil {
			return fmt.Errorf("spool: commit %s: %w", s.TmpPath(dir, renamed[i]), err)
		}
		return nil
	}))
	return errors.Join(errs...)
}

// inParallel runs f(0) … f(n-1) at once and joins their errors.
func inParallel(n int, f func(i int) error) error {
	if n == 1 {
		return f(0)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Unfinished retries the renames of committed sets that failed; the
// collector calls it (through Cut) until it succeeds.
func (w *Writer) retryUnfinished() error {
	var left []Set
	var errs []error
	for i := range w.unfinished {
		if err := finish(w.dir, &w.unfinished[i], !w.volatile); err != nil {
			left = append(left, w.unfinished[i])
			errs = append(errs, err)
		}
	}
	w.unfinished = left
	if len(left) > 0 {
		w.finishErr = errors.Join(errs...)
	}
	return errors.Join(errs...)
}

// Failing returns the error of the last file written, nil once a write
// succeeds again: the collector raises an event on the first failure and
// another on the recovery.
func (w *Writer) Failing() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failing == nil && len(w.unfinished) > 0 {
		return w.finishErr
	}
	return w.failing
}

// Unfinished reports whether a committed set is not yet in place.
func (w *Writer) Unfinished() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.unfinished) > 0
}

// Recover brings a spool directory to a committed state after a kill:
// every set of committed (those the Committer committed, e.g. read back
// from the collector's journal) is rolled forward, then every other
// temporary file is removed. It must run before a Writer writes into dir.
func Recover(dir string, committed []Set) (rolled int, err error) {
	for i := range committed {
		s := &committed[i]
		left := false
		for _, typ := range s.all() {
			if _, err := os.Lstat(s.TmpPath(dir, typ)); err == nil {
				left = true
			}
		}
		if !left {
			continue
		}
		if err := finish(dir, s, true); err != nil {
			return rolled, err
		}
		rolled++
	}
	top, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return rolled, nil
	}
	if err != nil {
		return rolled, fmt.Errorf("spool: recover %s: %w", dir, err)
	}
	for _, d := range top {
		if !d.IsDir() || strings.HasPrefix(d.Name(), ".") || d.Name() == "archive" {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(dir, d.Name()))
		if err != nil {
			return rolled, fmt.Errorf("spool: recover %s: %w", dir, err)
		}
		for _, e := range ents {
			if n := e.Name(); strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".tsv.tmp") {
				if err := os.Remove(filepath.Join(dir, d.Name(), n)); err != nil {
					return rolled, fmt.Errorf("spool: recover %s: %w", dir, err)
				}
			}
		}
	}
	return rolled, nil
}

// sumLen is the length of the names in cols: with len(cols) (their TABs,
// the '#' and the LF) the header's size.
func sumLen(cols []string) int {
	n := 0
	for _, c := range cols {
		n += len(c)
	}
	return n
}
