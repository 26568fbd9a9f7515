// Package testenv decides what a test does when this machine lacks
// something it needs (root, network namespaces, a MariaDB server, the shared
// corpus): on a developer's machine it skips with a message saying why; in
// CI, where .ci/run sets TMON_REQUIRE_ALL=1 after installing everything,
// it fails, so that a test can never pass CI by skipping.
package testenv

import (
	"fmt"
	"os"
)

// TB is the part of testing.TB this package uses.
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
}

// Required reports whether every test must run (TMON_REQUIRE_ALL=1).
func Required() bool { return os.Getenv("TMON_REQUIRE_ALL") == "1" }

// Skipf skips the test with the reason, or fails it when every test must run.
func Skipf(t TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatal("cannot run here, and TMON_REQUIRE_ALL=1 forbids skipping: " + msg)
	}
	t.Skip(msg)
}
