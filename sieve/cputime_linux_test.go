package sieve

import "syscall"

// threadCPU returns the CPU time of the calling OS thread, ns: benchmarks
// lock their thread and report throughput per CPU second as well, which
// stays meaningful on a loaded machine.
func threadCPU() int64 {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
