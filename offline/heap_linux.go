//go:build linux

package offline

import (
	"runtime"
	"runtime/debug"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugeHeap asks for transparent huge pages (madvise MADV_HUGEPAGE, which
// the kernel's default "madvise" mode requires) for the next size bytes the
// Go heap will use. The runtime does not ask for them itself, and maps its
// heap bit by bit, each mapping a new one without the advice; so the
// memory is taken from the runtime as one large allocation, which maps it
// without touching it, advised, and given back (a collection frees it;
// the page allocator hands out its lowest free pages first, these among
// them). The advice stays with the mapping: pages faulted there later,
// by any allocation, come 2 MiB at a time. It changes no byte the program
// sees. It returns false when the kernel refused the advice.
func hugeHeap(size int) bool {
	const huge = 2 << 20
	if unsafe.Sizeof(uintptr(0)) < 8 {
		return false // a large allocation may not fit a 32-bit address space
	}
	// No collection started by the allocation itself: one is made below.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	b := make([]byte, size)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	from := int((p+huge-1)&^(huge-1) - p)
	to := int((p+uintptr(size))&^(huge-1) - p)
	ok := from < to && unix.Madvise(b[from:to], unix.MADV_HUGEPAGE) == nil
	runtime.GC() // b is unreachable here: its pages are free
	return ok
}
