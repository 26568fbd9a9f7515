package loader

import (
	"bufio"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tests that run the real tmon-loader binary: SIGKILL at random moments, and
// two loaders at once.

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	for _, d := range []string{daySpoolDir, ppSpoolDir} {
		if d != "" {
			os.RemoveAll(filepath.Dir(d))
		}
	}
	os.Exit(code)
}

// loaderBin builds cmd/tmon-loader once per test binary.
func loaderBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "tmon-loader-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "tmon-loader")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/tmon-loader").CombinedOutput()
		if err != nil {
			binErr = errors.New(err.Error() + ": " + string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("build tmon-loader: %v", binErr)
	}
	return binPath
}

func loaderCmd(t testing.TB, db testDB, spool string, extra ...string) *exec.Cmd {
	args := append([]string{"-db", db.spec, "-spool", "c1=" + spool, "-batch-files", "3"}, extra...)
	return exec.Command(loaderBin(t), args...)
}

// A spool of many small files, so that a run takes long enough to be
// killed in the middle of it.
func manyFiles(t testing.TB) string {
	dir := filepath.Join(t.TempDir(), "c1")
	genSpool(t, dir, genConfig{Collector: "c1", Start: time.Date(2026, 11, 22, 23, 40, 0, 0, time.UTC),
		Interval: 10 * time.Second, N: 120, Flows: 4, MaxPkts: 4, Seed: 3, Current: true})
	return dir
}

// archived lists the archive's files relative to dir.
func archived(t testing.TB, dir string) []string {
	var out []string
	filepath.Walk(filepath.Join(dir, archiveDir), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// A loader killed (SIGKILL) at random moments, then rerun to completion,
// leaves the same tables and the same archive as a clean run.
func TestKillAndRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the loader binary")
	}
	eachDB(t, func(t *testing.T, db testDB) {
		src := manyFiles(t)

		clean := filepath.Join(t.TempDir(), "c1")
		copyDir(t, src, clean)
		loaderBin(t)
		began := time.Now()
		if out, err := loaderCmd(t, db, clean, "-wait", "30s").CombinedOutput(); err != nil {
			t.Fatalf("clean run: %v\n%s", err, out)
		}
		took := time.Since(began)
		want := dump(t, db.open(t))
		wantArchive := archived(t, clean)
		db.reset(t)

		seed := uint64(time.Now().UnixNano())
		t.Logf("clean run %v; kill moments from seed %d", took, seed)
		rng := rand.New(rand.NewPCG(seed, 1))
		dir := filepath.Join(t.TempDir(), "c1")
		copyDir(t, src, dir)
		killed := 0
		for i := range 6 {
			cmd := loaderCmd(t, db, dir, "-wait", "30s")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Each run gets at most an eighth of a clean run's time, so
			// that all six are killed before the work is done.
			after := time.Duration(rng.Int64N(int64(took)/8 + 1))
			time.Sleep(after)
			cmd.Process.Signal(syscall.SIGKILL)
			err := cmd.Wait()
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signaled() {
				killed++
			}
			t.Logf("run %d killed after %v: %v", i, after, err)
		}
		if killed == 0 {
			t.Errorf("no run was killed in the middle of its work")
		}
		if out, err := loaderCmd(t, db, dir, "-wait", "30s").CombinedOutput(); err != nil {
			t.Fatalf("final run: %v\n%s", err, out)
		}
		diffDumps(t, "kill and rerun", want, dump(t, db.open(t)))
		if got := archived(t, dir); strings.Join(got, "\n") != strings.Join(wantArchive, "\n") {
			t.Errorf("archive differs: %d files, want %d", len(got), len(wantArchive))
		}
		if n := spoolFilesLeft(t, dir); n != 0 {
			t.Errorf("%d files left in the spool", n)
		}
	})
}

// Two loaders at once on one database: the second exits with status 3 and a
// clear message; with -wait it waits, then finds nothing left to load.
func TestConcurrentLoaders(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the loader binary")
	}
	eachDB(t, func(t *testing.T, db testDB) {
		src := manyFiles(t)
		clean := filepath.Join(t.TempDir(), "c1")
		copyDir(t, src, clean)
		// -wait: the server may still be ending the sessions of loaders
		// killed by the previous test, which can hold the lock a moment.
		if out, err := loaderCmd(t, db, clean, "-wait", "30s").CombinedOutput(); err != nil {
			t.Fatalf("clean run: %v\n%s", err, out)
		}
		want := dump(t, db.open(t))
		db.reset(t)

		dir := filepath.Join(t.TempDir(), "c1")
		copyDir(t, src, dir)
		first := loaderCmd(t, db, dir, "-batch-files", "1")
		stderr, _ := first.StderrPipe()
		if err := first.Start(); err != nil {
			t.Fatal(err)
		}
		// The first loader holds the lock once it says it is loading.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() && !strings.Contains(sc.Text(), "msg=loading") {
		}
		go func() {
			for sc.Scan() {
			}
		}()

		out, err := loaderCmd(t, db, dir).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("second loader: %v, want exit status 3\n%s", err, out)
		}
		if !strings.Contains(string(out), "another tmon-loader") {
			t.Errorf("second loader's message is not clear:\n%s", out)
		}
		waiter := loaderCmd(t, db, dir, "-wait", "5m") // the first loads file by file: minutes on a loaded 2-core machine
		wout, werr := waiter.CombinedOutput()
		if werr != nil {
			t.Errorf("waiting loader: %v\n%s", werr, wout)
		}
		if err := first.Wait(); err != nil {
			t.Errorf("first loader: %v", err)
		}
		if strings.Contains(string(wout), "load done") {
			// The waiter gets the lock only after the first loader ended:
			// it must find every file loaded and archived already.
			t.Errorf("waiting loader loaded files the first one had:\n%s", wout)
		}
		diffDumps(t, "concurrent loaders", want, dump(t, db.open(t)))
	})
}
