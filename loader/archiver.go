package loader

import "log/slog"

// archiver archives the files of committed batches in a goroutine of its
// own, so that compressing them and the file system's work overlap the next
// batch's parsing and transaction (on a second core). Each file still
// leaves the spool only after the commit that recorded it, its archive copy
// synced first (archiveFiles): a crash at any point leaves the file in the
// spool or in the archive, recorded once in loaded_files.
type archiver struct {
	in   chan []*spoolFile
	done chan struct{}
	log  *slog.Logger
	n    int // files archived; read after wait
}

// startArchiver starts the goroutine. At most one batch waits for it while
// it works on another, which bounds the spool data held in memory.
func startArchiver(log *slog.Logger) *archiver {
	a := &archiver{in: make(chan []*spoolFile, 1), done: make(chan struct{}), log: log}
	go func() {
		defer close(a.done)
		made := map[string]bool{}
		for files := range a.in {
			n, err := archiveFiles(files, made)
			a.n += n
			if err != nil {
				// Recorded as loaded: the next run archives what is left.
				a.log.Error("archive", "err", err)
			}
		}
	}()
	return a
}

// add queues the files of a committed batch.
func (a *archiver) add(files []*spoolFile) { a.in <- files }

// wait archives what is queued and returns how many files were archived.
func (a *archiver) wait() int {
	close(a.in)
	<-a.done
	return a.n
}
