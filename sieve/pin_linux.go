package sieve

import "golang.org/x/sys/unix"

// pin restricts the calling (locked) thread to CPU core and returns a
// function that restores its previous affinity.
func pin(core int) (restore func(), err error) {
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, err
	}
	set.Set(core)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return nil, err
	}
	return func() { _ = unix.SchedSetaffinity(0, &old) }, nil
}
