//go:build !linux

package sieve

func threadCPU() int64 { return 0 }
