package offline

import (
	"os"
	"runtime/debug"
)

// batchGCPercent is the GC target of a batch process (see BatchHeap): the
// heap may grow to five times the live data between collections, where
// the default (100) collected five times in a 100 000-packet run.
const batchGCPercent = 400

// Bounds of the heap BatchHeap backs with huge pages: half the size of the
// input (two 31 MB captures of 50 000 packets peak at a 16 MB heap, 40 MB
// resident), none below hugeHeapMin (the advice and its collection cost
// more than the faults they save), at most hugeHeapMax (address space
// only: a page is backed when touched).
const (
	hugeHeapMin = 4 << 20
	hugeHeapMax = 1 << 30
)

// BatchHeap prepares the Go runtime of a process that runs one analysis of
// the given files and exits (tmon owd): a laxer GC target (unless GOGC is
// set), and on Linux a heap in transparent huge pages for half the files'
// size (hugeHeap). Its report is for the tests: whether the huge pages
// were asked for.
//
// Both were measured on `tmon owd` of two 50 000-packet captures (2-core
// virtual machine at load 4–6, CPU time, medians of 7 runs alternately):
// 0.273 s as is, 0.211 s with the huge pages, 0.197 s with both. The huge
// pages are most of it: each 4 KiB page the heap touches for the first time
// is a page fault, 14 µs on that machine (1.5 µs on a typical host), and a
// run touched 5 000 of them (20 MB); a 2 MiB page costs one fault.
func BatchHeap(files ...string) bool {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(batchGCPercent)
	}
	var size int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			size += st.Size()
		}
	}
	if size /= 2; size < hugeHeapMin {
		return false
	}
	return hugeHeap(int(min(size, hugeHeapMax)))
}
