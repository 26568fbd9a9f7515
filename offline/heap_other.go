//go:build !linux

package offline

func hugeHeap(int) bool { return false }
