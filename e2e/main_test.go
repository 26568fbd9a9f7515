// Package e2e runs tmon's real processes — tmon-collector and tmon-probe
// built from this tree — over real UDP on loopback, and checks what lands in
// the spool against ground truth the tests did not compute with tmon's code:
// the traffic generator's record and the two-point corpus's truth table.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tmon-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-race", "-o", dir+"/", "../cmd/tmon-probe", "../cmd/tmon-collector", "../cmd/tmon", "../cmd/tmon-loader")
	if os.Getenv("TMON_E2E_NORACE") != "" || !raceEnabled {
		cmd = exec.Command("go", "build", "-o", dir+"/", "../cmd/tmon-probe", "../cmd/tmon-collector", "../cmd/tmon", "../cmd/tmon-loader")
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := freePortErr()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// freePortErr finds a loopback port free for UDP and TCP both: a
// collector listens on both (the rollout's TCP channel beside its UDP).
func freePortErr() (int, error) {
	for range 100 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return 0, err
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		c.Close()
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no loopback port free for both UDP and TCP in 100 tries")
}

// proc is a running tmon process whose stderr is kept for failure messages.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan error
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(filepath.Join(binDir, name), args...)
	p.cmd.Stderr = p.log
	p.cmd.Stdout = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.log.String())
		}
	})
	return p
}

func (p *proc) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("%s: %v\n%s", p.name, err, p.log.String())
		}
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		t.Fatalf("%s did not finish within %v\n%s", p.name, timeout, p.log.String())
	}
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t, 30*time.Second)
}

// runPath runs a collector and one probe per capture file (probe names
// given in order), waits for the probes, stops the collector and returns
// its spool directory.
func runPath(t *testing.T, confXML string, probes map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tmon.xml")
	if err := os.WriteFile(cfg, []byte(confXML), 0o644); err != nil {
		t.Fatal(err)
	}
	spoolDir := filepath.Join(dir, "spool")
	coll := start(t, "tmon-collector", "-config", cfg, "-name", "c1", "-spool", spoolDir)
	waitListening(t, coll)
	var ps []*proc
	for name, file := range probes {
		ps = append(ps, start(t, "tmon-probe", "-config", cfg, "-name", name, "-read", file))
	}
	for _, p := range ps {
		p.wait(t, 3*time.Minute)
	}
	coll.stop(t)
	return spoolDir
}

func waitListening(t *testing.T, p *proc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if strings.Contains(p.log.String(), "collector listening") {
			return
		}
		select {
		case err := <-p.done:
			t.Fatalf("collector exited: %v\n%s", err, p.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("collector not listening after 20s\n%s", p.log.String())
}

// syncBuffer collects a process's output; the test reads it while the
// process writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
