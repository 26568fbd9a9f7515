package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// TestCorpusNoPanic reads every file of the corpus to its end: many are
// malformed on purpose. Each must give packets, a clean error or a counted
// truncation, in bounded time and memory.
func TestCorpusNoPanic(t *testing.T) {
	root := corpusDir(t, "")
	var files, ok, failed, trunc int
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".md") || strings.HasSuffix(p, ".tsv") || strings.HasSuffix(p, ".log") {
			return err
		}
		files++
		src, err := OpenFiles(FileConfig{Paths: []string{p}})
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("open error does not name the file: %v", err)
			}
			failed++
			return nil
		}
		defer src.Close()
		_, err = readAll(t, src)
		switch {
		case err != nil:
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "packet ") {
				t.Errorf("read error does not name the file and packet: %v", err)
			}
			failed++
		case src.Stats()[0].Truncated:
			trunc++
		default:
			ok++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d files: %d read to the end, %d truncated, %d rejected", files, ok, trunc, failed)
	if ok < files*3/4 {
		t.Errorf("only %d of %d corpus files read to the end", ok, files)
	}
}

// pcapBoundaries returns the end offsets of the header and of every record
// of a little-endian classic pcap file.
func pcapBoundaries(b []byte) []int {
	out := []int{pcapFileHeaderLen}
	for off := pcapFileHeaderLen; off+pcapRecordHeaderLen <= len(b); {
		off += pcapRecordHeaderLen + int(binary.LittleEndian.Uint32(b[off+8:]))
		if off > len(b) {
			break
		}
		out = append(out, off)
	}
	return out
}

// ngBoundaries returns the end offsets of every block of a little-endian
// pcapng file, and of the first packet block (before it no packet exists).
func ngBoundaries(b []byte) (ends []int, packetEnds []int) {
	for off := 0; off+8 <= len(b); {
		typ := binary.LittleEndian.Uint32(b[off:])
		off += int(binary.LittleEndian.Uint32(b[off+4:]))
		ends = append(ends, off)
		if typ == ngEPB || typ == ngSPB || typ == ngPB {
			packetEnds = append(packetEnds, off)
		}
	}
	return ends, packetEnds
}

// TestTruncatedCopies cuts files at random offsets: the source must deliver
// exactly the complete records before the cut, flag the cut record as
// truncated (never when the cut falls between records), or refuse the file
// with an error when the cut is inside the file header.
func TestTruncatedCopies(t *testing.T) {
	dir := t.TempDir()
	var pkts []synthPacket
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		d := make([]byte, 60+rng.IntN(1400))
		fillRandom(rng, d)
		pkts = append(pkts, synthPacket{ts: 1_700_000_000e9 + int64(i)*1000, data: d})
	}
	pcapPath, ngPath := filepath.Join(dir, "full.pcap"), filepath.Join(dir, "full.pcapng")
	writePcap(t, pcapPath, pkts)
	writePcapNg(t, ngPath, pkts)

	for _, tc := range []struct {
		path   string
		bounds func([]byte) (all, packets []int)
	}{
		{pcapPath, func(b []byte) ([]int, []int) { e := pcapBoundaries(b); return e, e[1:] }},
		{ngPath, ngBoundaries},
	} {
		full, err := os.ReadFile(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		all, packetEnds := tc.bounds(full)
		if len(packetEnds) != len(pkts) {
			t.Fatalf("%s: %d packet records, want %d", tc.path, len(packetEnds), len(pkts))
		}
		cuts := []int{0, 1, 3, 4, 10, 23, 24, 25, 39, all[0], all[0] + 1, len(full) - 1, len(full)}
		for range 150 {
			cuts = append(cuts, rng.IntN(len(full)+1))
		}
		for i, cut := range cuts {
			p := filepath.Join(dir, "cut")
			if err := os.WriteFile(p, full[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			mapped := i%2 == 1 // read and mapped alike (FileConfig.Map)
			src, err := OpenFiles(FileConfig{Paths: []string{p}, Map: mapped})
			if err != nil {
				if cut >= all[0]+40 {
					t.Errorf("%s cut at %d: open: %v", tc.path, cut, err)
				}
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error does not name the file: %v", err)
				}
				continue
			}
			got, err := readAll(t, src)
			st := src.Stats()[0]
			src.Close()
			if err != nil {
				t.Errorf("%s cut at %d: %v", tc.path, cut, err)
				continue
			}
			want := 0
			for _, e := range packetEnds {
				if e <= cut {
					want++
				}
			}
			atBoundary := false
			for _, e := range all {
				atBoundary = atBoundary || e == cut
			}
			if len(got) != want || st.Truncated == atBoundary {
				t.Errorf("%s cut at %d (mapped %v): %d packets, truncated %v; want %d, %v", tc.path, cut, mapped, len(got), st.Truncated, want, !atBoundary)
			}
			for i := range got {
				if !bytes.Equal(got[i].Data, pkts[i].data) || got[i].TS != pkts[i].ts {
					t.Fatalf("%s cut at %d: packet %d differs", tc.path, cut, i)
				}
			}
		}
	}
}

// TestGarbage feeds files that are not captures, or captures with corrupt
// records: each must give an error naming the file, never a panic.
func TestGarbage(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 5000)
	fillRandom(rng, random)

	pcapHdr := func(snap uint32) []byte {
		b := make([]byte, 24)
		binary.LittleEndian.PutUint32(b, 0xA1B2C3D4)
		binary.LittleEndian.PutUint16(b[4:], 2)
		binary.LittleEndian.PutUint16(b[6:], 4)
		binary.LittleEndian.PutUint32(b[16:], snap)
		binary.LittleEndian.PutUint32(b[20:], 1)
		return b
	}
	record := func(capLen, wireLen uint32, data []byte) []byte {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint32(b[8:], capLen)
		binary.LittleEndian.PutUint32(b[12:], wireLen)
		return append(b, data...)
	}
	ngBlock := func(typ uint32, body []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, typ)
		b = binary.LittleEndian.AppendUint32(b, uint32(12+len(body)))
		b = append(b, body...)
		return binary.LittleEndian.AppendUint32(b, uint32(12+len(body)))
	}
	shb := ngBlock(ngSHB, []byte{0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	idb := ngBlock(ngIDB, []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}) // snap length 4 GiB
	epbHuge := ngBlock(ngEPB, append(make([]byte, 12), 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f))
	// if_tsresol = 2^-100: pcapgo divides by zero on the next packet.
	idbBadRes := ngBlock(ngIDB, []byte{1, 0, 0, 0, 0, 0, 1, 0, 9, 0, 1, 0, 0x80 | 100, 0, 0, 0, 0, 0, 0, 0})
	epb := ngBlock(ngEPB, append(make([]byte, 12), 4, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4))

	cases := map[string][]byte{
		"empty":           nil,
		"text":            []byte("this is not a capture file\n"),
		"random":          random,
		"pcap-garbage":    append(pcapHdr(65535), random...),
		"pcap-huge-rec":   append(pcapHdr(0xffffffff), record(0x7fffffff, 0x7fffffff, random[:100])...),
		"pcap-cap>wire":   append(pcapHdr(65535), record(100, 50, random[:100])...),
		"pcap-bad-major":  append([]byte{0xd4, 0xc3, 0xb2, 0xa1, 9, 0}, make([]byte, 18)...),
		"ng-garbage":      append(bytes.Clone(shb), random...),
		"ng-huge-caplen":  concat(shb, idb, epbHuge),
		"ng-bad-tsresol":  concat(shb, idbBadRes, epb),
		"ng-no-interface": concat(shb, epb),
		"ng-bad-bom":      ngBlock(ngSHB, make([]byte, 16)),
		"ng-short-block":  concat(shb, []byte{1, 0, 0, 0, 4, 0, 0, 0}),
		"gzip-garbage":    append([]byte{0x1f, 0x8b}, random...),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, content, 0o644); err != nil {
				t.Fatal(err)
			}
			src, err := OpenFiles(FileConfig{Paths: []string{p}})
			if err == nil {
				_, err = readAll(t, src)
				src.Close()
			}
			if err == nil {
				t.Fatalf("no error")
			}
			if errors.Is(err, ErrTruncated) {
				return
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error does not name the file: %v", err)
			}
			t.Log(err)
		})
	}
	if _, err := OpenFiles(FileConfig{Paths: []string{filepath.Join(dir, "missing")}}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// FuzzReadFile checks that no byte sequence makes the reader panic or hang.
func FuzzReadFile(f *testing.F) {
	dir := f.TempDir()
	writePcap(f, filepath.Join(dir, "a"), []synthPacket{{1e18, frame(1)}, {1e18 + 5, frame(2)}})
	writePcapNg(f, filepath.Join(dir, "b"), []synthPacket{{1e18, frame(1)}, {1e18 + 5, frame(2)}})
	for _, n := range []string{"a", "b"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := OpenFiles(FileConfig{Paths: []string{p}})
		if err != nil {
			return
		}
		defer src.Close()
		readAll(t, src)
	})
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// TestMappedFileCut cuts a mapped file under the reader: touching the lost
// pages faults, which under debug.SetPanicOnFault (as tmon owd sets it) is
// a panic of the reading goroutine carrying the address, not the process
// killed by SIGBUS.
func TestMappedFileCut(t *testing.T) {
	var pkts []synthPacket
	for i := range 5000 {
		pkts = append(pkts, synthPacket{ts: 1e18 + int64(i), data: bytes.Repeat([]byte{byte(i)}, 1000)})
	}
	p := filepath.Join(t.TempDir(), "cut.pcap")
	writePcap(t, p, pkts)
	src, err := OpenFiles(FileConfig{Paths: []string{p}, Map: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, _, _, _, err := src.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var fault any
	func() {
		defer func() { fault = recover() }()
		for {
			data, _, _, _, err := src.ReadPacket()
			if err != nil {
				t.Errorf("read on after the cut: %v", err)
				return
			}
			_ = data[len(data)-1]
		}
	}()
	if _, ok := fault.(interface{ Addr() uintptr }); !ok {
		t.Errorf("recovered %v, want a fault with its address", fault)
	}
}
