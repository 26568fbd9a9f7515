// Package netlab is test tooling, outside tmon's data flow: it builds
// throw-away hosts out of network namespaces and veth pairs so that tests can
// put real traffic on real interfaces where a probe captures it live.
//
// A [Lab] owns a set of namespaces with names unique to the test (so tests
// may run in parallel) and removes them in t.Cleanup. [NewPath] builds the
// lab of the live tests, A — R — B:
//
//	ns A                    ns R                              ns B
//	veth-a 10.200.1.2/24 ── r-a 10.200.1.1   r-b 10.200.2.1 ── veth-b 10.200.2.2/24
//	                              ╰── dl0 (TUN, optional) ──╯
//
// With a delay device, R sends what arrives from A for B's subnet into a TUN
// device, where a delay line (package internal/delayline) holds each packet
// and writes it back; the kernel then forwards it out of r-b. See NewPath for
// the routing that makes that work without netem.
//
// Nothing here sends to an address outside the namespaces it creates.
// Everything needs root, iproute2 and a kernel with network namespaces;
// where they are missing the calling test is skipped with the reason
// (failed in CI: internal/testenv).
package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tmon-project/tmon/internal/testenv"
	"golang.org/x/sys/unix"
)

// Lab is a set of namespaces belonging to one test.
type Lab struct {
	t      testing.TB
	prefix string
	nss    []NS
}

// NS is a network namespace created by a Lab (its name under /run/netns).
type NS string

var labSeq atomic.Uint32

// Available reports why namespaces cannot be built here, or "" when they
// can: root, the ip command and a working `ip netns add` are needed.
func Available() string {
	if os.Geteuid() != 0 {
		return "netlab: needs root (network namespaces and veth pairs); run the test as root, as .ci/run does"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "netlab: the ip command (iproute2) is missing; install iproute2 (apt-get install iproute2)"
	}
	return ""
}

// New returns an empty lab, or skips the test when namespaces cannot be
// built here. Its namespaces are deleted when the test ends.
func New(t testing.TB) *Lab {
	t.Helper()
	if why := Available(); why != "" {
		testenv.Skipf(t, "%s", why)
	}
	reapOnce.Do(reapStale)
	l := &Lab{t: t, prefix: fmt.Sprintf("tmon%d-%d", os.Getpid(), labSeq.Add(1))}
	t.Cleanup(l.teardown)
	return l
}

var (
	reapOnce sync.Once
	labName  = regexp.MustCompile(`^tmon([0-9]+)-[0-9]+-[a-z]+$`)
)

// reapStale deletes the namespaces of labs whose test process died without
// its cleanup (killed by a timeout): their names carry the process id.
func reapStale() {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range ents {
		m := labName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		if _, err := os.Stat("/proc/" + m[1]); err == nil {
			continue // alive (or the id reused): not ours to judge
		}
		exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

// AddNS creates a namespace named after the lab and role, with its
// loopback up. The first failure to create one skips the test: that is
// a machine that cannot do netns (a container without CAP_SYS_ADMIN).
func (l *Lab) AddNS(role string) NS {
	l.t.Helper()
	ns := NS(l.prefix + "-" + role)
	if out, err := exec.Command("ip", "netns", "add", string(ns)).CombinedOutput(); err != nil {
		if len(l.nss) == 0 {
			testenv.Skipf(l.t, "netlab: cannot create a network namespace (ip netns add: %v: %s); this test needs CAP_SYS_ADMIN", err, bytes.TrimSpace(out))
		}
		l.t.Fatalf("netlab: ip netns add %s: %v: %s", ns, err, bytes.TrimSpace(out))
	}
	l.nss = append(l.nss, ns)
	l.MustIP(ns, "link", "set", "lo", "up")
	return ns
}

// teardown deletes the namespaces; veth pairs and TUN devices inside them
// go with them.
func (l *Lab) teardown() {
	for i := len(l.nss) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", string(l.nss[i])).CombinedOutput(); err != nil {
			l.t.Logf("netlab: ip netns del %s: %v: %s", l.nss[i], err, bytes.TrimSpace(out))
		}
	}
	l.nss = nil
}

// Veth creates a veth pair with one end in each namespace, named as given
// (the names live inside the namespaces, so they need not be unique on the
// machine), and sets both ends up.
func (l *Lab) Veth(ns1 NS, name1 string, ns2 NS, name2 string) {
	l.t.Helper()
	l.MustRun("ip", "link", "add", name1, "netns", string(ns1), "type", "veth", "peer", "name", name2, "netns", string(ns2))
	l.MustIP(ns1, "link", "set", name1, "up")
	l.MustIP(ns2, "link", "set", name2, "up")
}

// MustIP runs `ip -n NS args...` and fails the test on error.
func (l *Lab) MustIP(ns NS, args ...string) string {
	l.t.Helper()
	return l.MustRun("ip", append([]string{"-n", string(ns)}, args...)...)
}

// MustExec runs a command inside ns (ip netns exec) and fails the test on
// error; it returns the combined output.
func (l *Lab) MustExec(ns NS, name string, args ...string) string {
	l.t.Helper()
	return l.MustRun("ip", append([]string{"netns", "exec", string(ns), name}, args...)...)
}

// MustRun runs a command and fails the test on error.
func (l *Lab) MustRun(name string, args ...string) string {
	l.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("netlab: %s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out)
}

// Sysctl sets a sysctl inside ns by writing /proc/sys from a thread in the
// namespace (the net.* entries are per namespace).
func (l *Lab) Sysctl(ns NS, key, value string) {
	l.t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	err := ns.Do(func() error { return os.WriteFile(path, []byte(value), 0o644) })
	if err != nil {
		l.t.Fatalf("netlab: sysctl %s=%s in %s: %v", key, value, ns, err)
	}
}

// Command returns an exec.Cmd that runs name inside ns. `ip netns exec`
// execs the program, so the Cmd's process is the program itself and
// signals reach it directly.
func (ns NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", string(ns), name}, args...)...)
}

// Do runs fn on an OS thread that has entered ns, and waits for it. Sockets
// created inside fn belong to ns for their whole life, whichever thread uses
// them later; that is how a test gets a sender in A and a receiver in B
// within one process.
func (ns NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// A fresh goroutine, so that the locked thread is ours alone. If
		// the way back fails the goroutine ends still locked, and the
		// runtime throws the thread away rather than reuse it in ns.
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netlab: open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+string(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netlab: open netns %s: %w", ns, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netlab: setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("netlab: setns back from %s: %w", ns, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
