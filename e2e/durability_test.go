package e2e

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tmon-project/tmon/internal/killpoint"
	"github.com/tmon-project/tmon/internal/testenv"
	"github.com/tmon-project/tmon/spool"
)

// The durability tests (docs/transport.md, "Collector restart"; docs/spool.md,
// "Commit"): a collector killed at each point of its commit protocol, at
// random moments, or starved of disk space, and restarted, must leave a
// spool that agrees with the generator's truth exactly and with an
// uninterrupted run's, file for file: nothing lost, nothing doubled.

// startCollectorEnv starts collector c with extra environment variables.
func (e *faultEnv) startCollectorEnv(c string, env ...string) *proc {
	e.t.Helper()
	p := &proc{name: "tmon-collector", log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(filepath.Join(binDir, "tmon-collector"), "-config", e.collConf, "-name", c, "-spool", e.spools[c])
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t := e.t
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("collector (%v) output:\n%s", env, p.log.String())
		}
	})
	waitListening(e.t, p)
	e.procsMu.Lock()
	e.collProc[c] = p
	e.procsMu.Unlock()
	return p
}

// spoolContent returns the rows of every measurement file of a spool, by
// type and interval (the rows of further files <type>-<start>.<n>.tsv of an
// interval merged, flow ids replaced by their keys, sorted), and fails on
// what must never be there: a temporary file left behind, a reconciler
// interval written twice (owd_*-<start>.<n>.tsv), a file no manifest lists,
// a manifest listing a missing file.
func spoolContent(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{} // relative name → content
	listed := map[string]bool{}
	flows := map[string]string{} // collector flow id → class and key
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		typ := filepath.Dir(rel)
		base := d.Name()
		switch {
		case strings.HasPrefix(rel, ".collector"):
			return nil
		case strings.HasSuffix(base, ".tmp"):
			t.Errorf("temporary file left: %s", rel)
		case typ == spool.TypeSets:
			_, rows, err := spool.ReadFile(path)
			if err != nil {
				t.Error(err)
			}
			for _, r := range rows {
				listed[r[0]+"/"+r[1]] = true
			}
		case typ == spool.TypeEvents:
		case typ == spool.TypeFlows:
			_, rows, err := spool.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if k, ok := flows[r[1]]; ok && k != r[2]+" "+r[3] {
					t.Errorf("flow %s defined twice: %q and %q", r[1], k, r[2]+" "+r[3])
				}
				flows[r[1]] = r[2] + " " + r[3]
			}
		default:
			if strings.HasPrefix(typ, "owd_") && strings.Count(base, ".") > 1 {
				t.Errorf("interval written twice: %s", rel)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			files[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if !listed[name] {
			t.Errorf("%s is in no manifest", name)
		}
	}
	for name := range listed {
		if _, ok := files[name]; !ok {
			t.Errorf("manifest lists %s, not in the spool", name)
		}
	}
	// Collector flow ids depend on which probe's definition came first:
	// name each flow by its key; merge the files of an interval.
	// A clash counts in the interval of the sighting that revealed it,
	// which depends on the probes' arrival order (docs/spool.md): clashes
	// are compared as sums per flow and hop pair over the run.
	out := map[string]string{}
	var hdrs = map[string]string{}
	clashes := map[string]int{}
	for name, text := range files {
		base := filepath.Base(name)
		key := filepath.Dir(name) + "/" + base[:strings.IndexByte(base, '.')]
		lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		hdrs[key] = lines[0]
		head := strings.Split(strings.TrimPrefix(lines[0], "#"), "\t")
		col := slices.Index(head, "flow")
		cl := -1
		if filepath.Dir(name) == spool.TypeStats {
			cl = slices.Index(head, "clashes")
		}
		for i := 1; i < len(lines); i++ {
			f := strings.Split(lines[i], "\t")
			if col >= 0 && col < len(f) {
				k, ok := flows[f[col]]
				if !ok {
					t.Errorf("%s: flow %s not defined", name, f[col])
				}
				f[col] = k
			}
			if cl >= 0 && cl < len(f) {
				n, _ := strconv.Atoi(f[cl])
				clashes[strings.Join(f[2:6], " ")] += n
				f[cl] = "*"
			}
			out[key] += strings.Join(f, "\t") + "\n"
		}
	}
	for k, n := range clashes {
		out["clashes per flow and hop pair"] += fmt.Sprintf("%s\t%d\n", k, n)
	}
	for key, rows := range out {
		lines := strings.Split(strings.TrimSuffix(rows, "\n"), "\n")
		slices.Sort(lines)
		out[key] = hdrs[key] + "\n" + strings.Join(lines, "\n")
	}
	return out
}

// sameContent compares two spools' measurement files.
func sameContent(t *testing.T, got, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s missing", name)
		} else if g != w {
			gl, wl := strings.Split(g, "\n"), strings.Split(w, "\n")
			var only []string
			for _, l := range gl {
				if !slices.Contains(wl, l) {
					only = append(only, "+ "+l)
				}
			}
			for _, l := range wl {
				if !slices.Contains(gl, l) {
					only = append(only, "- "+l)
				}
			}
			t.Errorf("%s differs from the uninterrupted run's (%s):\n%s", name, gl[0], strings.Join(only, "\n"))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s not in the uninterrupted run", name)
		}
	}
}

// TestCollectorKillPoints kills the collector at each point of the commit
// protocol (TMON_KILL_AT: the process SIGKILLs itself there), and at random
// moments, restarts it on the same spool and checks the spool against the
// truth and against an uninterrupted run.
func TestCollectorKillPoints(t *testing.T) {
	clean := newFaultEnv(t, 5, []string{"c1"}, "")
	coll := clean.startCollector("c1")
	for _, p := range clean.runProbes(60 * time.Second) {
		p.wait(t, 2*time.Minute)
	}
	coll.stop(t)
	clean.checkSpool("c1")
	want := spoolContent(t, clean.spools["c1"])
	if len(want) < 6 {
		t.Fatalf("uninterrupted run: %d files", len(want))
	}

	points := []string{
		"spool.written:1", "spool.written:3", // temporary files complete, not committed
		"journal.commit:1", "journal.commit:3", // commit record written, not synced
		"spool.committed:1", "spool.committed:3", // committed, nothing renamed
		"spool.renamed:1", "spool.renamed:2", "spool.renamed:4", "spool.renamed:7", // between renames
		"journal.pdu:40",    // a PDU journaled, not synced nor acked
		"journal.synced:50", // synced, acks not sent
		"random", "random",
	}
	for i, point := range points {
		t.Run(fmt.Sprintf("%02d-%s", i, point), func(t *testing.T) {
			t.Parallel()
			e := newFaultEnv(t, 5, []string{"c1"}, "")
			var c *proc
			if point == "random" {
				c = e.startCollector("c1")
			} else {
				c = e.startCollectorEnv("c1", killpoint.Env+"="+point)
			}
			ps := e.runProbes(60 * time.Second)
			if point == "random" {
				time.Sleep(time.Duration(500+rand.IntN(4000)) * time.Millisecond)
				c.cmd.Process.Signal(syscall.SIGKILL)
			}
			var err error
			select {
			case err = <-c.done:
			case <-time.After(time.Minute):
				t.Fatalf("collector not killed at %s\n%s", point, c.log.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("collector ended with %v, want SIGKILL at %s\n%s", err, point, c.log.String())
			}
			if point != "random" && !strings.Contains(c.log.String(), "killpoint: SIGKILL at") {
				t.Fatalf("not killed at the point:\n%s", c.log.String())
			}
			c.done <- err
			coll := e.startCollector("c1")
			for _, p := range ps {
				p.wait(t, 2*time.Minute)
			}
			coll.stop(t)
			e.checkSpool("c1")
			sameContent(t, spoolContent(t, e.spools["c1"]), want)
		})
	}
}

// TestCollectorDiskFull runs the collector on a real 1 MiB tmpfs, fills it
// while the probes send, and frees it again: the collector must neither
// multiply an interval nor ack what it could not journal. In the second
// case it is SIGKILLed while the disk is full and restarted after: what it
// acked must all be there.
func TestCollectorDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "mounting a tmpfs needs root")
	}
	for _, kill := range []bool{false, true} {
		t.Run(map[bool]string{false: "free", true: "kill"}[kill], func(t *testing.T) {
			e := newFaultEnv(t, 6, []string{"c1"}, "")
			mnt := filepath.Join(e.dir, "small")
			if err := os.Mkdir(mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
				testenv.Skipf(t, "mount tmpfs: %v %s", err, out)
			}
			t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
			e.spools["c1"] = filepath.Join(mnt, "spool")
			coll := e.startCollector("c1")
			ps := e.runProbes(60 * time.Second)
			time.Sleep(1500 * time.Millisecond)
			filler := filepath.Join(mnt, "filler")
			fill(t, filler)
			waitFor(t, coll, "no space left on device", 20*time.Second)
			time.Sleep(2 * time.Second) // full, while the probes retry
			if kill {
				coll.cmd.Process.Signal(syscall.SIGKILL)
				err := <-coll.done
				coll.done <- err
			}
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			if kill {
				coll = e.startCollector("c1")
			}
			for _, p := range ps {
				p.wait(t, 2*time.Minute)
			}
			coll.stop(t)
			e.checkSpool("c1")
			spoolContent(t, e.spools["c1"])
			ev := readEvents(t, e.spools["c1"])
			if !kill && (!strings.Contains(ev, "journal.write_error") || !strings.Contains(ev, "journal.recovered")) {
				t.Errorf("events do not report the write error and the recovery:\n%s", ev)
			}
		})
	}
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// waitFor polls a process's output for s.
func waitFor(t *testing.T, p *proc, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not in the %s log after %v:\n%s", s, p.name, timeout, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
