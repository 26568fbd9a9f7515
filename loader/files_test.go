package loader

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/spool"
)

// The file rules of docs/spool.md and docs/loader.md, on the spool of the
// real collector (the demo's): every name the spool defines is loaded,
// <type>-<start>.<n>.tsv included; an incomplete file (empty, or a last
// line without its LF) is refused, counted and left in the spool; files of
// an interval are taken only as a complete committed set.

// firstSet returns the first manifest of a spool and its rows.
func firstSet(t *testing.T, dir string) (string, [][]string) {
	t.Helper()
	ms, _ := filepath.Glob(filepath.Join(dir, spool.TypeSets, spool.TypeStats+"-*.tsv"))
	if len(ms) == 0 {
		t.Fatal("demo spool has no manifest")
	}
	_, rows, err := spool.ReadFile(ms[0])
	if err != nil {
		t.Fatal(err)
	}
	// Files of types without a table stay in the spool, unwaited for.
	return ms[0], slices.DeleteFunc(rows, func(r []string) bool { return typeByName(r[0]) == nil })
}

// TestLoadRestartFiles: a collector restarted within an interval (older
// collectors, or a late event) writes <type>-<start>.1.tsv; the real
// tmon-loader loads it, set and events alike, and its rows add up.
func TestLoadRestartFiles(t *testing.T) {
	src := demoSpool(t)
	eachDB(t, func(t *testing.T, db testDB) {
		dir := filepath.Join(t.TempDir(), "c1")
		copyDir(t, src, dir)
		// A second set of the first interval: every file again as .1,
		// with its manifest; and an events file .1.
		man, rows := firstSet(t, dir)
		for _, r := range rows {
			in := filepath.Join(dir, r[0], r[1])
			out := filepath.Join(dir, r[0], strings.TrimSuffix(r[1], ".tsv")+".1.tsv")
			copyFile(t, in, out)
		}
		text, _ := os.ReadFile(man)
		lines := strings.Split(string(text), "\n")
		for i := 1; i < len(lines); i++ {
			lines[i] = strings.Replace(lines[i], ".tsv\t", ".1.tsv\t", 1)
		}
		if err := os.WriteFile(strings.TrimSuffix(man, ".tsv")+".1.tsv", []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		// An interval's first events file (the demo's spool may hold a
		// restart's .1 file already: its copy would be misnamed).
		evs, _ := filepath.Glob(filepath.Join(dir, "events", "events-*Z.tsv"))
		if len(evs) == 0 {
			t.Fatal("demo spool has no events file")
		}
		if _, err := os.Stat(strings.TrimSuffix(evs[0], ".tsv") + ".1.tsv"); err == nil {
			t.Fatalf("%s already has a .1 file", evs[0])
		}
		copyFile(t, evs[0], strings.TrimSuffix(evs[0], ".tsv")+".1.tsv")
		want, count, _ := spoolTotals(t, dir)

		out, err := loaderCmd(t, db, dir).CombinedOutput()
		if err != nil {
			t.Fatalf("tmon-loader: %v\n%s", err, out)
		}
		h := db.open(t)
		for typ, n := range want {
			got := query(t, h, "SELECT COALESCE(SUM(rows_loaded), 0) FROM loaded_files WHERE name LIKE ?", typ+"/%")
			if got[0] != strconv.Itoa(n) {
				t.Errorf("%s: %s rows loaded, the spool has %d", typ, got[0], n)
			}
		}
		if got := query(t, h, "SELECT COUNT(*) FROM events"); got[0] != strconv.Itoa(want["events"]) {
			t.Errorf("events table: %s rows, spool %d", got[0], want["events"])
		}
		if got := query(t, h, "SELECT SUM(count) FROM owd_stats_1m"); got[0] != strconv.FormatInt(count, 10) {
			t.Errorf("owd_stats_1m count %s, spool %d", got[0], count)
		}
		n, _ := filepath.Glob(filepath.Join(dir, "*", "*.tsv"))
		n = slices.DeleteFunc(n, func(p string) bool { return typeByName(filepath.Base(filepath.Dir(p))) == nil })
		if len(n) != 0 {
			t.Errorf("files left in the spool: %q", n)
		}
	})
}

// TestLoadRefusesIncomplete: a torn set (a file whose last line lost its
// LF), a set missing a file, a file no manifest lists and an empty file are
// not loaded (not even partly), are counted and stay in the spool; the
// rest loads. Each case is one copy of the demo spool.
func TestLoadRefusesIncomplete(t *testing.T) {
	src := demoSpool(t)
	man, set := firstSet(t, src)
	man = filepath.Join(spool.TypeSets, filepath.Base(man))
	tornLast := func(p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p, b[:len(b)-1], 0o644)
	}
	cases := []struct {
		name             string
		spoil            func(dir string) // makes the copy
		refused, waiting int
		why              string
		left             []string // relative to the spool: must stay
		noSet            bool     // none of the set's files loaded
	}{
		{"torn", func(dir string) { tornLast(filepath.Join(dir, set[0][0], set[0][1])) }, 1, 0, "not as committed",
			[]string{man}, true},
		{"missing", func(dir string) { os.Remove(filepath.Join(dir, set[1][0], set[1][1])) }, 0, len(set) - 1, "",
			[]string{man}, true},
		{"stray", func(dir string) {
			copyFile(t, filepath.Join(dir, set[0][0], set[0][1]), filepath.Join(dir, set[0][0], "x"+set[0][1]))
			os.Rename(filepath.Join(dir, set[0][0], "x"+set[0][1]), filepath.Join(dir, set[0][0], strings.TrimSuffix(set[0][1], ".tsv")+".1.tsv"))
		}, 0, 1, "", []string{filepath.Join(set[0][0], strings.TrimSuffix(set[0][1], ".tsv")+".1.tsv")}, false},
		{"empty", func(dir string) {
			os.WriteFile(filepath.Join(dir, "events", "events-20300101T000000Z.tsv"), nil, 0o644)
		},
			1, 0, "empty file", []string{"events/events-20300101T000000Z.tsv"}, false},
		{"torn-old-spool", func(dir string) {
			// Without manifests (a collector older than them), a torn
			// last line is refused all the same.
			os.RemoveAll(filepath.Join(dir, spool.TypeSets))
			tornLast(filepath.Join(dir, set[0][0], set[0][1]))
		}, 1, 0, "last line not ended by LF", []string{filepath.Join(set[0][0], set[0][1])}, false},
	}
	eachDB(t, func(t *testing.T, db testDB) {
		for _, c := range cases {
			dir := filepath.Join(t.TempDir(), "c1")
			copyDir(t, src, dir)
			c.spoil(dir)
			st, tl := load(t, db, Config{Spools: []Spool{{"c1", dir}}, PerPacket: true})
			if st.Refused != c.refused || st.Waiting != c.waiting {
				t.Errorf("%s: refused %d, waiting %d; want %d, %d\n%s", c.name, st.Refused, st.Waiting, c.refused, c.waiting, tl)
			}
			if c.why != "" && !strings.Contains(tl.String(), c.why) {
				t.Errorf("%s: the log does not say %q:\n%s", c.name, c.why, tl)
			}
			for _, p := range c.left {
				if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
					t.Errorf("%s: %s not left in the spool: %v", c.name, p, err)
				}
			}
			h := db.open(t)
			for _, r := range set {
				got := query(t, h, "SELECT COUNT(*) FROM loaded_files WHERE name = ?", r[0]+"/"+r[1])
				want := "1"
				if c.noSet || (c.name == "torn-old-spool" && r[0] == set[0][0]) {
					want = "0"
				}
				if got[0] != want {
					t.Errorf("%s: %s/%s recorded %s times, want %s", c.name, r[0], r[1], got[0], want)
				}
			}
			db.reset(t)
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
