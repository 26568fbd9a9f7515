// Package killpoint lets a test stop a real tmon process at a named point
// of its durability protocol (spool commits, journal writes) with SIGKILL,
// so that a restart can be checked from exactly that state. It sits beside
// the data flow: the collector and the spool call At at each point.
//
// TMON_KILL_AT=name[:n] kills the process the n-th time (default 1st) it
// reaches the point name; unset (production), At costs one load and a
// comparison.
package killpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Env is the environment variable naming the point.
const Env = "TMON_KILL_AT"

var (
	point string
	nth   = 1
	mu    sync.Mutex
	hits  int
)

func init() {
	v := os.Getenv(Env)
	if i := strings.LastIndexByte(v, ':'); i > 0 {
		if n, err := strconv.Atoi(v[i+1:]); err == nil && n > 0 {
			v, nth = v[:i], n
		}
	}
	point = v
}

// At kills the process when name is the configured point, reached for the
// configured time.
func At(name string) {
	if point == "" || name != point {
		return
	}
	mu.Lock()
	hits++
	h := hits
	mu.Unlock()
	if h == nth {
		os.Stderr.WriteString("killpoint: SIGKILL at " + name + "\n")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
