package capture

import (
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"
)

// TestMergeSynthetic merges three files with interleaved and equal stamps.
func TestMergeSynthetic(t *testing.T) {
	dir := t.TempDir()
	base := int64(1_700_000_000e9)
	a := []synthPacket{{base + 0, frame(0)}, {base + 30, frame(1)}, {base + 30, frame(2)}, {base + 90, frame(3)}}
	b := []synthPacket{{base + 10, frame(10)}, {base + 30, frame(11)}, {base + 100, frame(12)}}
	c := []synthPacket{{base + 5, frame(20)}}
	paths := []string{filepath.Join(dir, "a.pcap"), filepath.Join(dir, "b.pcapng"), filepath.Join(dir, "c.pcap")}
	writePcap(t, paths[0], a)
	writePcapNg(t, paths[1], b)
	writePcap(t, paths[2], c)
	src, err := OpenFiles(FileConfig{Paths: paths})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := readAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	// Ties go to the lower interface; one file's own order is kept.
	want := []struct {
		iface uint8
		tag   int
	}{{0, 0}, {2, 20}, {1, 10}, {0, 1}, {0, 2}, {1, 11}, {0, 3}, {1, 12}}
	if len(got) != len(want) {
		t.Fatalf("%d packets, want %d", len(got), len(want))
	}
	for i, w := range want {
		tag := int(got[i].Data[14])<<8 | int(got[i].Data[15])
		if got[i].Iface != w.iface || tag != w.tag {
			t.Errorf("packet %d: iface %d tag %d, want %d %d", i, got[i].Iface, tag, w.iface, w.tag)
		}
	}
	if src.Clock() != base+100 {
		t.Errorf("clock %d, want %d", src.Clock(), base+100)
	}
	st := src.Stats()
	if st[0].Packets != 4 || st[1].Packets != 3 || st[1].Format != FormatPcapNg || st[2].Packets != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestMergeTwoPoint merges the two hops of the corpus path and checks the
// result against an obvious two-list merge. (Kernel stamps inside one file
// can step back by a few microseconds; the merge keeps each file's order.)
func TestMergeTwoPoint(t *testing.T) {
	dir := corpusDir(t, "twopoint")
	paths := []string{filepath.Join(dir, "hop-a.pcap"), filepath.Join(dir, "hop-b.pcap")}
	var each [2][]Packet
	for i, p := range paths {
		var err error
		if each[i], err = readAll(t, openOne(t, p, 0)); err != nil {
			t.Fatal(err)
		}
	}
	var want []Packet
	a, b := each[0], each[1]
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || len(a) > 0 && a[0].TS <= b[0].TS {
			want, a = append(want, a[0]), a[1:]
		} else {
			p := b[0]
			p.Iface = 1
			want, b = append(want, p), b[1:]
		}
	}
	src, err := OpenFiles(FileConfig{Paths: paths})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n := 0
	for ; ; n++ {
		_, ts, iface, _, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n >= len(want) || ts != want[n].TS || iface != want[n].Iface {
			t.Fatalf("packet %d: iface %d at %d, want %+v", n, iface, ts, want[n])
		}
	}
	if n != len(want) || len(each[0]) < 20000 || len(each[1]) < 19808 {
		t.Errorf("%d packets merged from %d + %d", n, len(each[0]), len(each[1]))
	}
}

// TestPacing replays 21 packets 10 ms apart at speed 10: each must come no
// earlier than its due time (start + Δts/10), the whole no faster than 20 ms.
func TestPacing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "paced.pcap")
	base := int64(1_700_000_000e9)
	var pkts []synthPacket
	for i := range 21 {
		pkts = append(pkts, synthPacket{base + int64(i)*10e6, frame(i)})
	}
	writePcap(t, p, pkts)
	src := openOne(t, p, 10)
	if src.Clock() != 0 {
		t.Errorf("clock before the first packet: %d", src.Clock())
	}
	start := time.Now() // no later than the source's own start
	for i := range pkts {
		_, ts, _, _, err := src.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if due := start.Add(time.Duration(ts-base) / 10); now.Before(due) {
			t.Errorf("packet %d delivered %v early", i, due.Sub(now))
		}
		if c := src.Clock(); c < ts {
			t.Errorf("clock %d behind the packet just delivered %d", c, ts)
		}
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Errorf("replay took %v, want ≥ 20ms", el)
	}
	// Until the source has looked for a next packet, its clock must not
	// run past the last one: it does not know there is none.
	if c := src.Clock(); c != pkts[len(pkts)-1].ts {
		t.Errorf("clock %d just after the last packet, want its %d", c, pkts[len(pkts)-1].ts)
	}
	time.Sleep(5 * time.Millisecond)
	if c2 := src.Clock(); c2 != pkts[len(pkts)-1].ts {
		t.Errorf("clock %d before looking for a next packet, want the last packet's %d", c2, pkts[len(pkts)-1].ts)
	}
	if _, _, _, _, err := src.ReadPacket(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last packet: %v", err)
	}
	// In paced mode the data clock keeps running after the last packet.
	c := src.Clock()
	time.Sleep(5 * time.Millisecond)
	if src.Clock() < c+40e6 {
		t.Errorf("paced clock did not advance: %d then %d", c, src.Clock())
	}
}

// TestPacedClockBehind: a paced replay that falls behind the wall clock
// (a stalled process) must not claim, through its clock, that the packets
// it has not read yet will not come.
func TestPacedClockBehind(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sparse.pcap")
	base := int64(1_700_000_000e9)
	// 300 ms apart at speed 1: the source returns ErrIdle between them.
	writePcap(t, p, []synthPacket{{base, frame(0)}, {base + 300e6, frame(1)}, {base + 600e6, frame(2)}})
	src, err := OpenFiles(FileConfig{Paths: []string{p}, Speed: 1, Idle: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, _, _, _, err := src.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // stalled past both following packets' due times
	if c := src.Clock(); c > base+300e6 {
		t.Errorf("clock %d after a stall, past the unread packet at %d", c, base+300e6)
	}
	for i := 1; i < 3; i++ {
		_, ts, _, _, err := src.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if c := src.Clock(); c < ts {
			t.Errorf("clock %d behind the packet just delivered %d", c, ts)
		}
	}
}

// TestCloseInterruptsPacing: a paced source waiting an hour for its next
// packet returns ErrClosed as soon as it is closed.
func TestCloseInterruptsPacing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gap.pcap")
	writePcap(t, p, []synthPacket{{1e18, frame(0)}, {1e18 + int64(time.Hour), frame(1)}})
	src, err := OpenFiles(FileConfig{Paths: []string{p}, Speed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := src.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		src.Close()
	}()
	start := time.Now()
	if _, _, _, _, err := src.ReadPacket(); !errors.Is(err, ErrClosed) {
		t.Errorf("got %v, want ErrClosed", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Close took %v to interrupt", el)
	}
}

// TestIdle: with Idle set, a paced source waiting for a far packet returns
// ErrIdle (a timeout) now and then, its clock advancing, and then the packet.
func TestIdle(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gap.pcap")
	base := int64(1e18)
	writePcap(t, p, []synthPacket{{base, frame(0)}, {base + int64(200*time.Millisecond), frame(1)}, {base + int64(200*time.Millisecond), frame(2)}})
	src, err := OpenFiles(FileConfig{Paths: []string{p}, Speed: 1, Idle: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var tags []byte
	idles := 0
	for {
		data, _, _, _, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		var to interface{ Timeout() bool }
		if errors.As(err, &to) && to.Timeout() {
			idles++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		tags = append(tags, data[15])
	}
	if string(tags) != "\x00\x01\x02" || idles < 3 || idles > 10 {
		t.Errorf("tags %v, %d idle returns", tags, idles)
	}
	if src.Clock() < base+int64(200*time.Millisecond) {
		t.Errorf("clock %d", src.Clock())
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []FileConfig{
		{},
		{Paths: []string{"x"}, Speed: -1},
		{Paths: []string{"x"}, Idle: -1},
		{Paths: make([]string, 257)},
	} {
		if _, err := OpenFiles(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// TestReadPacketDoesNotAllocate: the full-speed hot path reuses its buffers.
func TestReadPacketDoesNotAllocate(t *testing.T) {
	dir := t.TempDir()
	var pkts []synthPacket
	for i := range 3000 {
		pkts = append(pkts, synthPacket{1e18 + int64(i), frame(i)})
	}
	for _, name := range []string{"x.pcap", "x.pcapng"} {
		p := filepath.Join(dir, name)
		if name == "x.pcap" {
			writePcap(t, p, pkts)
		} else {
			writePcapNg(t, p, pkts)
		}
		for _, mapped := range []bool{false, true} {
			src, err := OpenFiles(FileConfig{Paths: []string{p}, Map: mapped})
			if err != nil {
				t.Fatal(err)
			}
			src.ReadPacket() // first read sizes the buffers
			allocs := testing.AllocsPerRun(1000, func() {
				if _, _, _, _, err := src.ReadPacket(); err != nil {
					t.Fatal(err)
				}
			})
			src.Close()
			if allocs != 0 {
				t.Errorf("%s (mapped %v): %v allocations per packet", name, mapped, allocs)
			}
		}
	}
}

func BenchmarkReadPacket(b *testing.B) {
	p := filepath.Join(b.TempDir(), "bench.pcap")
	var pkts []synthPacket
	for i := range 100000 {
		pkts = append(pkts, synthPacket{1e18 + int64(i), frame(i)})
	}
	writePcap(b, p, pkts)
	b.ReportAllocs()
	b.ResetTimer()
	var src *FileSource
	for i := range b.N {
		if i%len(pkts) == 0 {
			b.StopTimer()
			if src != nil {
				src.Close()
			}
			src = openOne(b, p, 0)
			b.StartTimer()
		}
		if _, _, _, _, err := src.ReadPacket(); err != nil {
			b.Fatal(err)
		}
	}
}
