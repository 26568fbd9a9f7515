package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// readTruth returns hop_a_ns by sequence number from twopoint/truth.tsv.
func readTruth(t *testing.T, path string) map[uint64]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := make(map[uint64]int64)
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	if got := strings.Split(sc.Text(), "\t"); len(got) < 2 || got[0] != "seq" || got[1] != "hop_a_ns" {
		t.Fatalf("truth.tsv header %q: want seq, hop_a_ns first", sc.Text())
	}
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		seq, err1 := strconv.ParseUint(cols[0], 10, 64)
		ts, err2 := strconv.ParseInt(cols[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("truth.tsv line %q: %v %v", sc.Text(), err1, err2)
		}
		out[seq] = ts
	}
	return out
}

// TestTwoPointHopA reads the nanosecond pcap of hop A and checks every probe
// datagram's stamp against the ground truth, to the nanosecond.
func TestTwoPointHopA(t *testing.T) {
	dir := corpusDir(t, "twopoint")
	truth := readTruth(t, filepath.Join(dir, "truth.tsv"))
	if truth[0] != 1795403698134726298 {
		t.Fatalf("truth seq 0 hop_a_ns = %d, want 1795403698134726298", truth[0])
	}
	src := openOne(t, filepath.Join(dir, "hop-a.pcap"), 0)
	seen := 0
	firstSeq := int64(-1)
	for {
		data, ts, iface, lt, err := src.ReadPacket()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if iface != 0 || lt != LinkTypeEthernet {
			t.Fatalf("iface %d link type %d, want 0 and Ethernet", iface, lt)
		}
		i := bytes.Index(data, []byte("OWD1"))
		if i < 0 || len(data) < i+12 {
			continue // ARP, neighbour discovery
		}
		seq := binary.BigEndian.Uint64(data[i+4:])
		if firstSeq < 0 {
			firstSeq = int64(seq)
			if ts != 1795403698134726298 {
				t.Errorf("first datagram (seq %d) at %d, want 1795403698134726298", seq, ts)
			}
		}
		want, ok := truth[seq]
		if !ok {
			t.Fatalf("seq %d not in truth", seq)
		}
		if ts != want {
			t.Fatalf("seq %d at %d, truth says %d", seq, ts, want)
		}
		seen++
	}
	if firstSeq != 0 || seen != len(truth) {
		t.Errorf("first seq %d, %d datagrams; want 0 and %d", firstSeq, seen, len(truth))
	}
	st := src.Stats()[0]
	if st.Format != FormatPcapNs || st.Truncated || st.Packets < uint64(seen) {
		t.Errorf("stats %+v", st)
	}
	if src.Clock() < truth[uint64(len(truth)-1)] {
		t.Errorf("clock %d before the last datagram", src.Clock())
	}
}

// pcapngFiles lists the pcapng files of the tcpdump corpus, by magic.
func pcapngFiles(t *testing.T) []string {
	dir := corpusDir(t, "tcpdump")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		b := make([]byte, 4)
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		_, err = io.ReadFull(f, b)
		f.Close()
		if err == nil && binary.LittleEndian.Uint32(b) == ngSHB {
			out = append(out, p)
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d pcapng files in %s", len(out), dir)
	}
	return out
}

// TestPcapNgAgainstPcapgo reads every pcapng file of the corpus (many are
// deliberately malformed: they must only not panic or hang) and checks, for
// those the source reads to the end, that plain pcapgo sees the same packets.
// (pcapgo alone runs only on files the guard accepted: on hostile lengths it
// allocates gigabytes.)
func TestPcapNgAgainstPcapgo(t *testing.T) {
	compared := 0
	for _, p := range pcapngFiles(t) {
		src, err := OpenFiles(FileConfig{Paths: []string{p}})
		if err != nil {
			t.Logf("%v", err)
			continue
		}
		got, err := readAll(t, src)
		trunc := src.Stats()[0].Truncated
		src.Close()
		if err != nil || trunc {
			t.Logf("%d packets, truncated %v, %v", len(got), trunc, err)
			continue
		}
		want, err := pcapgoRead(p)
		if err != nil {
			t.Errorf("%s: pcapgo: %v, source read it", p, err)
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d packets, pcapgo %d", p, len(got), len(want))
			continue
		}
		for i := range got {
			// pcapgo keeps a link type in 8 bits (vsock-1: 271 → 15).
			if got[i].TS != want[i].TS || !bytes.Equal(got[i].Data, want[i].Data) || uint8(got[i].LinkType) != uint8(want[i].LinkType) {
				t.Errorf("%s: packet %d differs", p, i+1)
				break
			}
		}
		compared++
	}
	if compared < 20 {
		t.Errorf("only %d pcapng files compared", compared)
	}
	t.Logf("%d pcapng files identical to pcapgo's own reading", compared)
}

// pcapgoRead reads a pcapng file with plain pcapgo, for comparison.
func pcapgoRead(path string) (out []Packet, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		return nil, err
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		lt := ci.AncillaryData[0].(layers.LinkType)
		out = append(out, Packet{Data: data, TS: ci.Timestamp.UnixNano(), LinkType: uint16(lt)})
	}
}

// A record stamped before a packet already delivered is left out and
// counted, whatever the speed: the probe has reported its clock that far.
// Stamps 10, 50, 30, 50, 60, 20, 70 (ns): 30 and 20 are behind (50 was
// delivered), the second 50 is not (equal), so 10, 50, 50, 60, 70 come out.
func TestFileBehindLeftOut(t *testing.T) {
	stamps := []int64{10, 50, 30, 50, 60, 20, 70}
	var pkts []synthPacket
	for i, ts := range stamps {
		pkts = append(pkts, synthPacket{ts: 1e15 + ts, data: frame(i)})
	}
	path := filepath.Join(t.TempDir(), "behind.pcap")
	writePcap(t, path, pkts)
	for _, speed := range []float64{0, 1} {
		src := openOne(t, path, speed)
		var got []int64
		for {
			var p Packet
			err := src.Next(&p)
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, ErrIdle) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, p.TS-1e15)
		}
		if want := []int64{10, 50, 50, 60, 70}; !slices.Equal(got, want) {
			t.Errorf("speed %v: delivered %v, want %v", speed, got, want)
		}
		if st := src.Stats()[0]; st.Behind != 2 || st.Packets != 7 {
			t.Errorf("speed %v: behind %d of %d records, want 2 of 7", speed, st.Behind, st.Packets)
		}
	}
}

// TestFileRealtime replays a capture stamped in the near future at the
// wall-clock times of its stamps: no packet is read before its stamp, and
// the source's clock is the wall clock's from the first packet on.
func TestFileRealtime(t *testing.T) {
	base := time.Now().Add(200 * time.Millisecond).UnixNano()
	var pkts []synthPacket
	for i, off := range []int64{0, 30e6, 31e6, 150e6} {
		pkts = append(pkts, synthPacket{ts: base + off, data: frame(i)})
	}
	path := filepath.Join(t.TempDir(), "soon.pcap")
	writePcap(t, path, pkts)
	if _, err := OpenFiles(FileConfig{Paths: []string{path}, Speed: 2, Realtime: true}); err == nil {
		t.Error("a realtime replay at speed 2 opened")
	}
	src, err := OpenFiles(FileConfig{Paths: []string{path}, Speed: 1, Realtime: true, Idle: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n := 0
	for {
		var p Packet
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, ErrIdle) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if now := time.Now().UnixNano(); now < p.TS {
			t.Errorf("packet %d read %v before its stamp", n, time.Duration(p.TS-now))
		}
		if c := src.Clock(); c < p.TS || c > time.Now().UnixNano() {
			t.Errorf("packet %d: clock %d outside [stamp %d, now]", n, c, p.TS)
		}
		n++
	}
	if n != len(pkts) {
		t.Errorf("%d packets read, want %d", n, len(pkts))
	}
}
