//go:build race

package transport

// raceEnabled: the race detector allocates on its own; alloc tests skip.
const raceEnabled = true
