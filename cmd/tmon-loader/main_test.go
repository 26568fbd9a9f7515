package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the loader's SQLite driver, to read what it wrote
)

// config writes examples/demo.xml with two collectors whose spools are in
// dir, each holding one small complete owd_stats file and its flows.
func config(t *testing.T, dir string) string {
	t.Helper()
	xml, err := os.ReadFile("../../examples/demo.xml")
	if err != nil {
		t.Fatal(err)
	}
	one := `<collector name="c1" address="127.0.0.1:47390" spool="spool/c1"/>`
	two := fmt.Sprintf(`<collector name="c1" address="127.0.0.1:47390" spool="%s/c1"/>
  <collector name="c2" address="127.0.0.1:47391" spool="%s/s2"/>`, dir, dir)
	if !bytes.Contains(xml, []byte(one)) {
		t.Fatalf("examples/demo.xml has no %s", one)
	}
	path := filepath.Join(dir, "tmon.xml")
	for _, key := range []string{"probe-a.key", "probe-b.key"} { // keyFile paths are relative to the file
		b, err := os.ReadFile(filepath.Join("../../examples", key))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, key), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, bytes.Replace(xml, []byte(one), []byte(two), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	// The probes' key files, named relative to the configuration.
	keys, _ := filepath.Glob("../../examples/*.key")
	for _, k := range keys {
		b, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(k)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, sp := range []string{"c1", "s2"} {
		for name, text := range map[string]string{
			"flows/flows-20261123T100000Z.tsv":         "#time\tflow\tclass\tkey\n1\t1\tk\tip.src=10.0.0.1\n",
			"owd_stats/owd_stats-20261123T100000Z.tsv": "#interval_start\tinterval_s\tclass\tflow\thop_from\thop_to\tcount\tsum_ns\tsumsq_ns2\tmin_ns\tmax_ns\tlost\tmissed\tduplicate\treordered\tclashes\n1795428000000000000\t10\tk\t1\tA\tB\t1\t5\t25\t5\t5\t0\t0\t0\t0\t0\n",
		} {
			p := filepath.Join(dir, sp, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return path
}

func left(t *testing.T, dir string) int {
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.tsv"))
	return len(files)
}

// -config loads the spool of each <collector> (or of those named with
// -collector), under the collector's name.
func TestConfigSpools(t *testing.T) {
	dir := t.TempDir()
	cfg := config(t, dir)
	var out bytes.Buffer
	db := "sqlite:" + filepath.Join(dir, "t.db")
	if rc := run([]string{"-config", cfg, "-collector", "c2", "-db", db}, &out); rc != 0 {
		t.Fatalf("exit %d:\n%s", rc, &out)
	}
	if left(t, filepath.Join(dir, "c1")) != 2 || left(t, filepath.Join(dir, "s2")) != 0 {
		t.Errorf("-collector c2: spool files left c1 %d, s2 %d; want 2, 0", left(t, filepath.Join(dir, "c1")), left(t, filepath.Join(dir, "s2")))
	}
	if rc := run([]string{"-config", cfg, "-db", db}, &out); rc != 0 {
		t.Fatalf("exit %d:\n%s", rc, &out)
	}
	if left(t, filepath.Join(dir, "c1")) != 0 {
		t.Errorf("c1 not loaded:\n%s", &out)
	}
	// The collector names are the configuration's, not the directories'.
	h, err := sql.Open("sqlite", filepath.Join(dir, "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var got string
	if err := h.QueryRow("SELECT GROUP_CONCAT(collector || ':' || name, ' ') FROM (SELECT collector, name FROM loaded_files ORDER BY collector, name)").Scan(&got); err != nil {
		t.Fatal(err)
	}
	want := "c1:flows/flows-20261123T100000Z.tsv c1:owd_stats/owd_stats-20261123T100000Z.tsv c2:flows/flows-20261123T100000Z.tsv c2:owd_stats/owd_stats-20261123T100000Z.tsv"
	if got != want {
		t.Errorf("loaded_files %q, want %q", got, want)
	}

	out.Reset()
	if rc := run([]string{"-config", cfg, "-collector", "c9", "-db", db}, &out); rc != 2 || !strings.Contains(out.String(), `no <collector name="c9">`) {
		t.Errorf("unknown collector: exit %d, %s", rc, &out)
	}
	out.Reset()
	if rc := run([]string{"-collector", "c1", "-db", db}, &out); rc != 2 {
		t.Errorf("-collector without -config: exit %d, %s", rc, &out)
	}
	out.Reset()
	if rc := run([]string{"-config", filepath.Join(dir, "none.xml")}, &out); rc != 2 || !strings.Contains(out.String(), "none.xml") {
		t.Errorf("missing config: exit %d, %s", rc, &out)
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if rc := run([]string{"-h"}, &out); rc != 0 {
		t.Fatalf("-h: exit %d", rc)
	}
	for _, want := range []string{"-config", "-collector", "<collector name spool>", "-spool", "Exit status"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not mention %q", want)
		}
	}
}
