package capture

import (
	"errors"
	"github.com/tmon-project/tmon/internal/testenv"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// corpusDir finds ../shared/corpus beside the repository root by walking up
// from the test's directory, or skips the test.
func corpusDir(t testing.TB, sub string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		c := filepath.Join(dir, "shared", "corpus")
		if st, err := os.Stat(c); err == nil && st.IsDir() {
			return filepath.Join(c, sub)
		}
		if filepath.Dir(dir) == dir {
			testenv.Skipf(t, "shared/corpus not found above %s: the capture corpus (see DESIGN.md) is not checked out beside the repository", wd)
		}
	}
}

// synthPacket is one record of a synthetic capture.
type synthPacket struct {
	ts   int64
	data []byte
}

// writePcap writes a nanosecond pcap (Ethernet) with the given records.
func writePcap(t testing.TB, path string, pkts []synthPacket) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, p.ts), CaptureLength: len(p.data), Length: len(p.data)}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
}

// writePcapNg writes a pcapng file (one Ethernet interface, ns stamps).
func writePcapNg(t testing.TB, path string, pkts []synthPacket) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapgo.NewNgWriterInterface(f, pcapgo.NgInterface{
		Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 65535,
		TimestampResolution: 9,
	}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, p.ts), CaptureLength: len(p.data), Length: len(p.data)}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// frame returns a 60-byte Ethernet frame tagged with n.
func frame(n int) []byte {
	b := make([]byte, 60)
	copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5})
	b[14], b[15] = byte(n>>8), byte(n)
	return b
}

// readAll reads src to the end, copying each packet.
func readAll(t testing.TB, src *FileSource) ([]Packet, error) {
	t.Helper()
	var out []Packet
	for {
		var p Packet
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		p.Data = append([]byte(nil), p.Data...)
		out = append(out, p)
		if len(out) > 10_000_000 {
			t.Fatal("runaway reader")
		}
	}
}

func openOne(t testing.TB, path string, speed float64) *FileSource {
	t.Helper()
	src, err := OpenFiles(FileConfig{Paths: []string{path}, Speed: speed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}
