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

func TestCommandTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands {
		if c.name == "" || c.summary == "" || c.run == nil || seen[c.name] || strings.HasPrefix(c.name, "-") {
			t.Errorf("bad command entry %+v", c)
		}
		seen[c.name] = true
	}
}
