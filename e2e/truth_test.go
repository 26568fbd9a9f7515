package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/internal/gen"
)

// TestSummaryTruth runs `tmon summary -truth` (the demo's last step) on
// spools of real runs: it must pass only on a spool that agrees with the
// generator's truth in every figure, and fail (exit 1, saying which figure)
// on an empty spool, on a spool where nothing was measured (probe B never
// ran) and on a spool whose data is counted twice.
func TestSummaryTruth(t *testing.T) {
	gc := gen.DefaultConfig()
	gc.Seed = 3
	gc.Count = 4000
	gc.Rate = 3000
	gc.Loss, gc.Dup, gc.Frag, gc.Clashes, gc.IPv6 = 0.01, 0.005, 0.02, 3, 0.1
	dir := t.TempDir()
	if _, _, err := gen.Generate(gc, dir); err != nil {
		t.Fatal(err)
	}
	truth := filepath.Join(dir, "truth.tsv")
	conf := func() string { return fmt.Sprintf(genConf, 2*time.Second, freePort(t), slicesAttr()) }
	good := runPath(t, conf(), map[string]string{"pa": filepath.Join(dir, "hop-a.pcap"), "pb": filepath.Join(dir, "hop-b.pcap")})
	// Probe B never runs: once the collector stops waiting for it (10 s),
	// every packet is lost: a spool with 0 delays measured.
	onlyA := filepath.Join(t.TempDir(), "spool")
	cfg := filepath.Join(t.TempDir(), "tmon.xml")
	if err := os.WriteFile(cfg, []byte(conf()), 0o644); err != nil {
		t.Fatal(err)
	}
	coll := start(t, "tmon-collector", "-config", cfg, "-name", "c1", "-spool", onlyA)
	waitListening(t, coll)
	start(t, "tmon-probe", "-config", cfg, "-name", "pa", "-read", filepath.Join(dir, "hop-a.pcap")).wait(t, time.Minute)
	for deadline := time.Now().Add(time.Minute); ; {
		if m, _ := filepath.Glob(filepath.Join(onlyA, "owd_stats", "*.tsv")); len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no interval written without probe B\n%s", coll.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	coll.stop(t)

	summary := func(spool string) (string, int) {
		cmd := exec.Command(filepath.Join(binDir, "tmon"), "summary", "-truth", truth, spool)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := summary(good)
	if code != 0 || !strings.Contains(out, "figures match the ground truth") {
		t.Fatalf("a correct spool: exit %d\n%s", code, out)
	}
	// What the demo prints it checked: every figure by name.
	for _, f := range []string{"delays measured exactly", "lost packets reported lost", "per-packet rows", "duplicates",
		"reordered", "signature clashes", "delay min / max / sum", "histogram bins", "delay p99 within its bound"} {
		if !strings.Contains(out, "ok       "+f) {
			t.Errorf("the check of %q is not printed:\n%s", f, out)
		}
	}
	// The generator's totals are printed and related to the measured.
	if !strings.Contains(out, "generator, all traffic:") || !strings.Contains(out, "outside the one-way flows") {
		t.Errorf("the generator's totals are not explained:\n%s", out)
	}

	empty := t.TempDir()
	doubled := filepath.Join(t.TempDir(), "doubled")
	copyTree(t, good, doubled)
	// Every measurement file of the spool again, as the further file of
	// its interval (docs/spool.md: rows add up) — what a collector writing
	// an interval twice produced.
	files, _ := filepath.Glob(filepath.Join(doubled, "*", "*.tsv"))
	for _, f := range files {
		if strings.Contains(f, "/owd_") || strings.Contains(f, "/sets/") {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(strings.TrimSuffix(f, ".tsv")+".1.tsv", []byte(strings.ReplaceAll(string(b), "Z.tsv\t", "Z.1.tsv\t")), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, spool := range map[string]string{"empty": empty, "nothing measured": onlyA, "doubled": doubled} {
		out, code := summary(spool)
		if code != 1 || !strings.Contains(out, "MISMATCH") && !strings.Contains(out, "tmon summary:") {
			t.Errorf("%s spool: exit %d, want 1 and the mismatch named\n%s", name, code, out)
		}
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
