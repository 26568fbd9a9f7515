package reports

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// writeSpoolFile writes one spool file of type typ under dir.
func writeSpoolFile(t *testing.T, dir, typ, name, content string) {
	t.Helper()
	d := filepath.Join(dir, typ)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, typ+"-"+name+".tsv"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const packetHeader = "#interval_start\tclass\tflow\tsig\thop_from\thop_to\tt_from\tt_to\tdelay_ns\tspan_from_ns\tspan_to_ns\tfirst_delay_ns\n"

func packetRow(class, from, to string, tFrom, delay int64) string {
	return strings.Join([]string{"0", class, "1", "00000001", from, to,
		strconv.FormatInt(tFrom, 10), strconv.FormatInt(tFrom+delay, 10), strconv.FormatInt(delay, 10), "0", "0", strconv.FormatInt(delay, 10)}, "\t") + "\n"
}

// TestReadSpoolPackets reads owd_packet files of two classes and hop pairs
// over two intervals, rows of the pairs interleaved, and compares what the
// row scanner makes of them with a reading through spool.ReadFile and a map
// per row (eachRow): the same delays per pair, the same packets.
func TestReadSpoolPackets(t *testing.T) {
	dir := t.TempDir()
	a, b := packetHeader, packetHeader
	for i := range 500 {
		class, from, to := "web", "A", "B"
		if i%3 == 0 {
			class, from, to = "voip", "B", "C"
		}
		row := packetRow(class, from, to, 1_700_000_000e9+int64(i)*1e6, int64(i*7919%100000)-1000)
		if i < 250 {
			a += row
		} else {
			b += row
		}
	}
	writeSpoolFile(t, dir, "owd_packet", "20260101T000000Z", a)
	writeSpoolFile(t, dir, "owd_packet", "20260101T000010Z", b)
	s, err := ReadSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[PairKey][]int64{}
	packets := map[int64]int64{}
	err = eachRow(dir, "owd_packet", func(r map[string]string) error {
		k := PairKey{r["class"], r["hop_from"], r["hop_to"]}
		d, _ := strconv.ParseInt(r["delay_ns"], 10, 64)
		tf, _ := strconv.ParseInt(r["t_from"], 10, 64)
		want[k] = append(want[k], d)
		packets[tf] = d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Pairs) != 2 || len(want) != 2 {
		t.Fatalf("%d pairs, want 2", len(s.Pairs))
	}
	for _, p := range s.Pairs {
		w := want[p.PairKey]
		slices.Sort(w)
		if !slices.Equal(p.Delays, w) {
			t.Errorf("%v: %d delays, want %d (or values differ)", p.PairKey, len(p.Delays), len(w))
		}
	}
	if len(s.Packets) != 500 || s.PacketRows != 500 {
		t.Errorf("%d packets, %d rows; want 500", len(s.Packets), s.PacketRows)
	}
	for tf, d := range packets {
		if s.Packets[tf] != d {
			t.Fatalf("packet at %d: delay %d, want %d", tf, s.Packets[tf], d)
		}
	}

	// The same delays given rather than read: the same pairs and delays,
	// the owd_packet files not read (a damaged one is not noticed).
	var given []PairDelays
	for k, d := range want {
		given = append(given, PairDelays{k, slices.Clone(d)})
	}
	writeSpoolFile(t, dir, "owd_packet", "20260101T000020Z", "damaged")
	s2, err := ReadSpoolDelays(dir, given)
	if err != nil {
		t.Fatal(err)
	}
	if len(s2.Pairs) != 2 || s2.PacketRows != 500 {
		t.Fatalf("given: %d pairs, %d rows", len(s2.Pairs), s2.PacketRows)
	}
	for i, p := range s2.Pairs {
		if p.PairKey != s.Pairs[i].PairKey || !slices.Equal(p.Delays, s.Pairs[i].Delays) {
			t.Errorf("given: pair %v differs from the one read", p.PairKey)
		}
	}
}

// TestReadSpoolPacketErrors: a damaged owd_packet file is an error naming
// the file and line, as spool.ReadFile's checks say.
func TestReadSpoolPacketErrors(t *testing.T) {
	good := packetRow("web", "A", "B", 1e18, 5000)
	for name, c := range map[string]struct{ content, want string }{
		"narrow row":    {packetHeader + good + "0\tweb\n", ":3: 2 fields, header has 12"},
		"no final LF":   {packetHeader + strings.TrimSuffix(good, "\n"), "last line not ended by LF"},
		"no header":     {good, "no header line"},
		"empty":         {"", "empty file"},
		"bad delay":     {packetHeader + strings.Replace(good, "\t5000\t", "\t5x00\t", 1), "row 2: column delay_ns"},
		"delay too big": {packetHeader + strings.Replace(good, "\t5000\t", "\t99999999999999999999\t", 1), "column delay_ns"},
		"no column":     {strings.Replace(packetHeader, "delay_ns", "delay", 1) + good, "no column delay_ns"},
	} {
		dir := t.TempDir()
		writeSpoolFile(t, dir, "owd_packet", "20260101T000000Z", c.content)
		_, err := ReadSpool(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "owd_packet-20260101T000000Z.tsv") {
			t.Errorf("%s: %v, want an error naming the file and %q", name, err, c.want)
		}
	}
}

func TestParseInt(t *testing.T) {
	for _, s := range []string{"0", "-0", "7", "-7", "9223372036854775807", "-9223372036854775808", "1780315200018143179"} {
		want, _ := strconv.ParseInt(s, 10, 64)
		if got, ok := parseInt([]byte(s)); !ok || got != want {
			t.Errorf("%s: %d %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "-", "9223372036854775808", "-9223372036854775809", "1e3", " 1", "+1", "12345678901234567890"} {
		if _, ok := parseInt([]byte(s)); ok {
			t.Errorf("%q parsed", s)
		}
	}
}
