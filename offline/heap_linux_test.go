//go:build linux

package offline

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestHugeHeap: after hugeHeap the process has an anonymous mapping
// advised for huge pages (VmFlags "hg" in /proc/self/smaps) at least as
// large as was asked for less the 2 MiB alignment at either end; before,
// it had none that large.
func TestHugeHeap(t *testing.T) {
	const size = 32 << 20
	if got := advisedBytes(t); got >= size-4<<20 {
		t.Fatalf("%d bytes advised for huge pages before hugeHeap", got)
	}
	if !hugeHeap(size) {
		t.Fatal("hugeHeap: the kernel refused MADV_HUGEPAGE")
	}
	if got := advisedBytes(t); got < size-4<<20 {
		t.Errorf("%d bytes advised for huge pages after hugeHeap(%d)", got, size)
	}
}

// advisedBytes is the size of the largest mapping with the hg flag.
func advisedBytes(t *testing.T) int64 {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var best, cur int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			lo, hi, _ := strings.Cut(fields[0], "-")
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				cur = int64(b - a)
			}
			continue
		}
		if rest, ok := strings.CutPrefix(line, "VmFlags:"); ok && strings.Contains(" "+rest+" ", " hg ") {
			best = max(best, cur)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return best
}
