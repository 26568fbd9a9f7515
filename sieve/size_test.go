package sieve

import (
	"testing"
	"unsafe"
)

// TestRecordSize keeps Record small: it is copied through the ring for every
// wanted packet.
func TestRecordSize(t *testing.T) {
	if n := unsafe.Sizeof(Record{}); n > 104 {
		t.Fatalf("Record is %d bytes, more than 104", n)
	} else {
		t.Logf("Record is %d bytes", n)
	}
}
