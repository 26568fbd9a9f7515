package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/internal/testenv"
	"github.com/tmon-project/tmon/reports"
)

// corpusDir finds ../shared/corpus beside the repository, or skips.
func corpusDir(t *testing.T, sub string) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; d != "/"; d = filepath.Dir(d) {
		p := filepath.Join(filepath.Dir(d), "shared", "corpus", sub)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testenv.Skipf(t, "shared corpus %q not found beside the repository (expected ../shared/corpus): this test needs it", sub)
	return ""
}

const twoPointConf = `<tmon version="twopoint" interval="1s">
  <collector name="c1" address="127.0.0.1:%d"/>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="veth-a" hop="A"/></probe>
  <probe name="pb" id="2" key="f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"><interface name="veth-b" hop="B"/></probe>
  <flowClass name="owd">
    <filter>
      <match field="ip.proto" value="udp"/>
      <match field="l4.dport" value="9000"/>
    </filter>
    <granular fields="ip.src ip.dst l4.dport"/>
    <oneWay hops="A B" maxTransit="1s" timeout="2s" perPacket="true">
      <hopPair from="A" to="B" slices="18ms 19ms 20ms 21ms 22ms 23ms"/>
    </oneWay>
  </flowClass>
</tmon>`

type twoPointRow struct {
	seq       int
	a, b, owd int64
	lost      bool
}

func readTwoPointTruth(t *testing.T, path string) []twoPointRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []twoPointRow
	sc := bufio.NewScanner(f)
	sc.Scan() // header: seq hop_a_ns hop_b_ns owd_ns applied_ns
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 4 {
			t.Fatalf("truth line %q", sc.Text())
		}
		var r twoPointRow
		r.seq, _ = strconv.Atoi(f[0])
		r.a, _ = strconv.ParseInt(f[1], 10, 64)
		if f[3] == "lost" {
			r.lost = true
		} else {
			r.b, _ = strconv.ParseInt(f[2], 10, 64)
			r.owd, err = strconv.ParseInt(f[3], 10, 64)
			if err != nil {
				t.Fatalf("truth line %q: %v", sc.Text(), err)
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// TestTwoPointCorpus: a real path captured at two points with kernel
// timestamps; tmon must report exactly the 19 808 delays of the truth
// table, to the nanosecond, and exactly its 192 losses.
func TestTwoPointCorpus(t *testing.T) {
	dir := corpusDir(t, "twopoint")
	truth := readTwoPointTruth(t, filepath.Join(dir, "truth.tsv"))
	spoolDir := runPath(t, fmt.Sprintf(twoPointConf, freePort(t)), map[string]string{
		"pa": filepath.Join(dir, "hop-a.pcap"),
		"pb": filepath.Join(dir, "hop-b.pcap"),
	})
	s, err := reports.ReadSpool(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	var delivered, lost, exact, lostFound int
	for _, r := range truth {
		d, measured := s.Packets[r.a]
		if r.lost {
			lost++
			if s.Lost[r.a] {
				lostFound++
			}
			if measured {
				t.Errorf("seq %d is lost, yet measured with delay %d", r.seq, d)
			}
			continue
		}
		delivered++
		switch {
		case !measured:
			t.Errorf("seq %d (A %d, owd %d) not measured (reported lost: %v)", r.seq, r.a, r.owd, s.Lost[r.a])
		case d != r.owd:
			t.Errorf("seq %d: delay %d, truth %d", r.seq, d, r.owd)
		default:
			exact++
		}
	}
	if delivered != 19808 || lost != 192 {
		t.Fatalf("truth table has %d delivered, %d lost; expected 19808 and 192", delivered, lost)
	}
	if exact != 19808 || lostFound != 192 {
		t.Errorf("exact delays %d of 19808, losses found %d of 192", exact, lostFound)
	}
	if len(s.Packets) != 19808 || len(s.Lost) != 192 {
		t.Errorf("spool has %d delays and %d lost packets; want exactly 19808 and 192 (nothing more)", len(s.Packets), len(s.Lost))
	}
	var count, lostSum uint64
	for _, p := range s.Pairs {
		count += p.Count
		lostSum += p.Lost
		if p.Missed != 0 || p.Duplicate != 0 {
			t.Errorf("pair %v: missed %d duplicates %d, want 0", p.PairKey, p.Missed, p.Duplicate)
		}
	}
	if count != 19808 || lostSum != 192 {
		t.Errorf("owd_stats: count %d lost %d, want 19808 and 192", count, lostSum)
	}
}
