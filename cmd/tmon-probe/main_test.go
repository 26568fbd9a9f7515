package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A capture file that is not there: the probe exits with status 1 and one
// line that names the file once, and does not report figures it never
// measured (no "probe finished packets=0").
func TestMissingCaptureFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tmon-probe")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tmon-probe")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, k := range []string{"demo.xml", "probe-a.key", "probe-b.key"} {
		b, err := os.ReadFile(filepath.Join("../../examples", k))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, k), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "no-such-capture.pcap")
	cmd := exec.Command(bin, "-config", filepath.Join(dir, "demo.xml"), "-name", "probe-a", "-read", missing)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1\n%s", err, out)
	}
	text := strings.TrimSpace(string(out))
	if n := strings.Count(text, missing); n != 1 || strings.Contains(text, "probe finished") || strings.Count(text, "\n") != 0 {
		t.Errorf("want one line naming %s once, no \"probe finished\"; got:\n%s", missing, text)
	}
}
