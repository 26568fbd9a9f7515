//go:build !linux

package reconcile

func threadCPU() int64 { return 0 }
