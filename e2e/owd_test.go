package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/reports"
)

// The offline command against the daemons: `tmon owd` on the same captures
// and configuration must write the same figures as two tmon-probe
// processes and a tmon-collector over UDP: every row of owd_stats,
// owd_hist, owd_packet, owd_metrics and owd_incomplete, flows named by
// their key (collector flow ids follow the order in which definitions
// arrive, which differs).

// runOwd runs `tmon owd -config` on files and returns its spool and output.
func runOwd(t *testing.T, confXML string, files ...string) (spoolDir, out string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tmon.xml")
	if err := os.WriteFile(cfg, []byte(confXML), 0o644); err != nil {
		t.Fatal(err)
	}
	spoolDir = filepath.Join(dir, "spool")
	b, err := exec.Command(filepath.Join(binDir, "tmon"), append([]string{"owd", "-config", cfg, "-spool", spoolDir}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tmon owd: %v\n%s", err, b)
	}
	return spoolDir, string(b)
}

// spoolRows reads every row of the data files of typ in a spool (all
// intervals, every file of an interval), the flow column replaced by the
// flow's class and key, sorted.
func spoolRows(t *testing.T, dir, typ string) []string {
	t.Helper()
	keys := map[string]string{}
	eachSpoolRow(t, dir, "flows", func(h, r []string) {
		keys[col(h, r, "flow")] = col(h, r, "class") + " " + col(h, r, "key")
	})
	var rows []string
	eachSpoolRow(t, dir, typ, func(h, r []string) {
		for i := range h {
			if h[i] == "flow" {
				k, ok := keys[r[i]]
				if !ok {
					t.Fatalf("%s: flow %s not in the flows files", typ, r[i])
				}
				r[i] = k
			}
		}
		rows = append(rows, strings.Join(r, "\t"))
	})
	slices.Sort(rows)
	return rows
}

func col(h, r []string, name string) string {
	for i := range h {
		if h[i] == name && i < len(r) {
			return r[i]
		}
	}
	return ""
}

func eachSpoolRow(t *testing.T, dir, typ string, fn func(header, row []string)) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, typ, typ+"-*.tsv"))
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		var h []string
		for sc.Scan() {
			if h == nil {
				h = strings.Split(strings.TrimPrefix(sc.Text(), "#"), "\t")
				continue
			}
			fn(h, strings.Split(sc.Text(), "\t"))
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// sameSpool compares the figures of two spools row by row.
func sameSpool(t *testing.T, daemons, offline string) {
	t.Helper()
	for _, typ := range []string{"owd_stats", "owd_hist", "owd_packet", "owd_metrics", "owd_incomplete"} {
		want, got := spoolRows(t, daemons, typ), spoolRows(t, offline, typ)
		if typ == "owd_stats" && len(want) == 0 {
			t.Fatalf("the daemons' spool has no %s rows", typ)
		}
		if slices.Equal(want, got) {
			continue
		}
		t.Errorf("%s: the daemons wrote %d rows, tmon owd %d", typ, len(want), len(got))
		var miss, extra []string
		for _, r := range want {
			if _, ok := slices.BinarySearch(got, r); !ok {
				miss = append(miss, r)
			}
		}
		for _, r := range got {
			if _, ok := slices.BinarySearch(want, r); !ok {
				extra = append(extra, r)
			}
		}
		for _, r := range miss[:min(len(miss), 3)] {
			t.Errorf("  only the daemons': %s", r)
		}
		for _, r := range extra[:min(len(extra), 3)] {
			t.Errorf("  only tmon owd's:  %s", r)
		}
	}
}

// TestOwdTwoPoint: on the two-point corpus tmon owd reports exactly the
// truth table's 19 808 delays, to the ns, and its 192 losses, and writes
// the same spool as the daemons.
func TestOwdTwoPoint(t *testing.T) {
	dir := corpusDir(t, "twopoint")
	truth := readTwoPointTruth(t, filepath.Join(dir, "truth.tsv"))
	confXML := fmt.Sprintf(twoPointConf, freePort(t))
	a, b := filepath.Join(dir, "hop-a.pcap"), filepath.Join(dir, "hop-b.pcap")
	off, out := runOwd(t, confXML, a, b)
	s, err := reports.ReadSpool(off)
	if err != nil {
		t.Fatal(err)
	}
	var exact, lostFound int
	for _, r := range truth {
		d, measured := s.Packets[r.a]
		switch {
		case r.lost && s.Lost[r.a] && !measured:
			lostFound++
		case !r.lost && measured && d == r.owd:
			exact++
		default:
			t.Errorf("seq %d (lost %v, owd %d): tmon owd says delay %d (measured %v), lost %v", r.seq, r.lost, r.owd, d, measured, s.Lost[r.a])
		}
	}
	if exact != 19808 || lostFound != 192 || len(s.Packets) != 19808 || len(s.Lost) != 192 {
		t.Errorf("tmon owd: %d exact delays, %d losses found (spool: %d delays, %d lost); the truth: 19808 and 192", exact, lostFound, len(s.Packets), len(s.Lost))
	}
	if !strings.Contains(out, "delays measured  19808") || !strings.Contains(out, "lost             192") {
		t.Errorf("summary does not say 19808 delays and 192 lost:\n%s", out)
	}
	daemons := runPath(t, confXML, map[string]string{"pa": a, "pb": b})
	sameSpool(t, daemons, off)
}

// TestOwdGenerated: generated traffic with loss, duplicates, reordering,
// fragments and signature clashes gives the same spool offline as through
// the daemons, and the generator's truth.
func TestOwdGenerated(t *testing.T) {
	gc := gen.DefaultConfig()
	gc.Seed = 11
	gc.Count = 8000
	gc.Rate = 3000
	gc.Loss, gc.Dup, gc.Frag, gc.Clashes, gc.IPv6 = 0.01, 0.003, 0.02, 6, 0.1
	dir := t.TempDir()
	if _, _, err := gen.Generate(gc, dir); err != nil {
		t.Fatal(err)
	}
	truth, err := gen.ReadTruthFile(filepath.Join(dir, gen.FileTruth))
	if err != nil {
		t.Fatal(err)
	}
	interval := 2 * time.Second
	confXML := fmt.Sprintf(genConf, interval, freePort(t), slicesAttr())
	a, b := filepath.Join(dir, gen.FileHopA), filepath.Join(dir, gen.FileHopB)
	off, _ := runOwd(t, confXML, a, b)
	s, err := reports.ReadSpool(off)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstTruth(t, s, truth, interval)
	daemons := runPath(t, confXML, map[string]string{"pa": a, "pb": b})
	sameSpool(t, daemons, off)
}
