package gen

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestWriteMix writes a small mixed trace and reads it back with pcapgo
// and gopacket: exact counts of each kind, payload sizes, spacing, distinct
// frames, and the same bytes for the same seed.
func TestWriteMix(t *testing.T) {
	c := DefaultMix()
	c.Small, c.Large, c.Flows = 3000, 1500, 16
	dir := t.TempDir()
	path := filepath.Join(dir, "mix.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := WriteMix(f, c)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if sum.Frames != 4635 || sum.TCP != 90 || sum.IPv6 != 45 {
		t.Fatalf("summary %+v: want 4500 UDP + 2 %% TCP (90) + 1 %% IPv6 (45) = 4635 frames", sum)
	}
	frames := readPcap(t, path)
	if len(frames) != sum.Frames {
		t.Fatalf("%d frames in the file, summary says %d", len(frames), sum.Frames)
	}
	var small, large, tcp, v6 int
	var bytesSeen int64
	seen := map[string]bool{}
	flows := map[uint16]bool{}
	for i, fr := range frames {
		if want := c.Start.UnixNano() + int64(i)*int64(time.Microsecond); fr.TS != want {
			t.Fatalf("frame %d at %d, want %d", i, fr.TS, want)
		}
		bytesSeen += int64(len(fr.Data))
		if seen[string(fr.Data)] {
			t.Fatalf("frame %d repeats an earlier one", i)
		}
		seen[string(fr.Data)] = true
		pkt := gopacket.NewPacket(fr.Data, layers.LayerTypeEthernet, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatalf("frame %d: %v", i, el.Error())
		}
		switch {
		case pkt.Layer(layers.LayerTypeTCP) != nil:
			tcp++
			checkGopacket(t, fr.Data)
		case pkt.Layer(layers.LayerTypeIPv6) != nil:
			v6++
			checkGopacket(t, fr.Data)
		default:
			u := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			flows[uint16(u.DstPort)] = true
			if got := binary.BigEndian.Uint64(u.Payload); got != uint64(i) {
				t.Fatalf("frame %d carries sequence %d", i, got)
			}
			switch len(u.Payload) {
			case c.SmallPayload:
				small++
			case c.LargePayload:
				large++
			default:
				t.Fatalf("frame %d: UDP payload of %d bytes", i, len(u.Payload))
			}
		}
	}
	if small != c.Small || large != c.Large || tcp != sum.TCP || v6 != sum.IPv6 || len(flows) != c.Flows || bytesSeen != sum.Bytes {
		t.Fatalf("read back %d small, %d large, %d TCP, %d IPv6 over %d flows, %d bytes; summary %+v", small, large, tcp, v6, len(flows), bytesSeen, sum)
	}
	var again bytes.Buffer
	if _, err := WriteMix(&again, c); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(path)
	if !bytes.Equal(orig, again.Bytes()) {
		t.Error("same configuration, different output")
	}
	c.Flows = 0
	if _, err := WriteMix(&again, c); err == nil {
		t.Error("0 flows accepted")
	}
}
