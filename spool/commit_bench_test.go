package spool

import (
	"fmt"
	"testing"
)

// BenchmarkWriteSet measures committing one interval's set of seven files
// (six types and the manifest) on the spool's disk: the fsyncs of the
// files, their directories and the renames dominate, and the collector
// holds its lock meanwhile. One op is one set; TMPDIR chooses the disk.
func BenchmarkWriteSet(b *testing.B) {
	w, err := New(b.TempDir(), testConfig())
	if err != nil {
		b.Fatal(err)
	}
	var files []setFile
	for i := range 6 {
		files = append(files, setFile{typ: fmt.Sprintf("type%d", i), cols: []string{"a", "b"}, rows: []byte("1\t2\n3\t4\n")})
	}
	b.ResetTimer()
	for i := range b.N {
		w.mu.Lock()
		err := w.writeSet(int64(i)*1e9, files, true, true)
		w.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
}
