package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildTmon builds the command once per test into a temporary directory.
func buildTmon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tmon")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestCheckExitCodes(t *testing.T) {
	bin := buildTmon(t)
	td := "../../conf/testdata/"
	tests := []struct {
		name   string
		args   []string
		status int
		stdout []string // each must appear
		stderr []string
	}{
		{"good", []string{"check", td + "good-full.xml", "../../examples/demo.xml"}, 0,
			[]string{td + "good-full.xml: ok (4 probes, 2 collectors, 3 classes, valid from 2026-03-01T11:00:00Z)\n",
				"../../examples/demo.xml: ok (2 probes, 1 collector, 2 classes, valid from 2026-01-01T00:00:00Z)\n"}, nil},
		{"immediately", []string{"check", td + "good-minimal.xml"}, 0,
			[]string{"good-minimal.xml: ok (1 probe, 1 collector, 0 classes, valid immediately)\n"}, nil},
		{"one bad of two", []string{"check", td + "good-minimal.xml", td + "bad-rules.xml"}, 1,
			[]string{"good-minimal.xml: ok"},
			[]string{td + "bad-rules.xml:2: <tmon>: interval=\"7s\": must divide one hour evenly", td + "bad-rules.xml:19: <hopPair from=\"B\" to=\"A\">"}},
		{"syntax", []string{"check", td + "bad-syntax.xml"}, 1, nil, []string{td + "bad-syntax.xml:6: XML syntax:"}},
		{"missing file", []string{"check", filepath.Join(t.TempDir(), "none.xml")}, 1, nil, []string{"none.xml: no such file"}},
		{"no files", []string{"check"}, 2, nil, []string{"Usage: tmon check FILE..."}},
		{"bad flag", []string{"check", "-x", "f.xml"}, 2, nil, []string{"flag provided but not defined: -x"}},
		{"check help", []string{"check", "-h"}, 0, nil, []string{"Usage: tmon check FILE..."}},
		{"help", []string{"-h"}, 0, []string{"Usage: tmon COMMAND", "check      validate configuration files"}, nil},
		{"help check", []string{"help", "check"}, 0, nil, []string{"Usage: tmon check FILE..."}},
		{"no command", nil, 2, nil, []string{"Usage: tmon COMMAND"}},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{`tmon: no command "frobnicate" (run tmon -h)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tc.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Errorf("exit status %d, want %d\nstdout: %s\nstderr: %s", status, tc.status, &stdout, &stderr)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, &stdout)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, &stderr)
				}
			}
		})
	}
}

// TestCheckErrorLines checks that each problem is printed on a line of its own.
func TestCheckErrorLines(t *testing.T) {
	var stdout, stderr bytes.Buffer
	path := filepath.Join(t.TempDir(), "x.xml")
	if err := os.WriteFile(path, []byte("<tmon a=\"1\" b=\"2\"/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := run([]string{"check", path}, &stdout, &stderr); got != exitFail {
		t.Fatalf("status %d", got)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], path+":1: <tmon>: unknown attribute \"a\"") {
		t.Fatalf("stderr:\n%s", &stderr)
	}
}

// TestCheckFlowShareWarning checks that tmon check says when a probe
// session's share of the collectors' flow ids is below the sieve ring, on
// the <limits> line, without failing the file; and says nothing at the
// defaults. Hand-computed: maxFlows 100000 over 2 probes gives a share of
// 100000 / (2 × 2) = 25000 ids, below the 65536-record ring; at least
// 2 × 2 × 65536 = 262144 would do.
func TestCheckFlowShareWarning(t *testing.T) {
	dir := t.TempDir()
	key, err := os.ReadFile("../../conf/testdata/p1.key")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"p1.key", "p2.key"} {
		if err := os.WriteFile(filepath.Join(dir, k), key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, limits string) string {
		path := filepath.Join(dir, name)
		xml := "<tmon>\n  <collector name=\"c1\" address=\"localhost:47390\"/>\n" + limits +
			"  <probe name=\"p1\" id=\"1\" keyFile=\"p1.key\"><interface name=\"eth0\"/></probe>\n" +
			"  <probe name=\"p2\" id=\"2\" keyFile=\"p2.key\"><interface name=\"eth0\"/></probe>\n</tmon>\n"
		if err := os.WriteFile(path, []byte(xml), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	small := write("small.xml", "  <limits maxFlows=\"100000\"/>\n")
	var stdout, stderr bytes.Buffer
	if got := run([]string{"check", small}, &stdout, &stderr); got != exitOK {
		t.Fatalf("status %d, want 0 (a warning is not a failure)\nstderr: %s", got, &stderr)
	}
	want := small + ":3: <limits>: warning: a probe session's share of the collectors' flow ids (maxFlows 100000 / (2 × 2 probes) = 25000) is smaller than the sieve ring (65536 records)"
	if !strings.HasPrefix(stderr.String(), want) || !strings.Contains(stderr.String(), "raise maxFlows to at least 262144") {
		t.Errorf("stderr:\n%s\nwant it to start with:\n%s", &stderr, want)
	}
	if !strings.Contains(stdout.String(), small+": ok (2 probes") {
		t.Errorf("stdout: %s", &stdout)
	}

	stdout.Reset()
	stderr.Reset()
	if got := run([]string{"check", write("default.xml", "")}, &stdout, &stderr); got != exitOK || stderr.Len() != 0 {
		t.Errorf("at the default maxFlows: status %d, stderr %q", got, &stderr)
	}
}

func TestCommandTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands {
		if c.name == "" || c.summary == "" || c.run == nil || seen[c.name] || strings.HasPrefix(c.name, "-") {
			t.Errorf("bad command entry %+v", c)
		}
		seen[c.name] = true
	}
}
