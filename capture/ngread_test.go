package capture

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// ngFile builds pcapng blocks by hand in one byte order.
type ngFile struct {
	o interface {
		binary.ByteOrder
		binary.AppendByteOrder
	}
	buf []byte
}

func (f *ngFile) block(typ uint32, body []byte) {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	f.buf = f.o.AppendUint32(f.buf, typ)
	f.buf = f.o.AppendUint32(f.buf, n)
	f.buf = append(f.buf, body...)
	f.buf = f.o.AppendUint32(f.buf, n)
}

func (f *ngFile) opt(b []byte, code uint16, val []byte) []byte {
	b = f.o.AppendUint16(b, code)
	b = f.o.AppendUint16(b, uint16(len(val)))
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (f *ngFile) shb() {
	b := f.o.AppendUint32(nil, ngByteOrderMagic)
	b = f.o.AppendUint16(b, 1)
	b = f.o.AppendUint16(b, 0)
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	b = f.opt(b, 4, []byte("tmon test")) // shb_userappl
	b = f.opt(b, 0, nil)
	f.block(ngSHB, b)
}

func (f *ngFile) idb(link uint16, snap uint32, tsresol byte, tsoffset uint64) {
	b := f.o.AppendUint16(nil, link)
	b = append(b, 0, 0)
	b = f.o.AppendUint32(b, snap)
	b = f.opt(b, 2, []byte("eth9")) // if_name
	if tsresol != 0 {
		b = f.opt(b, ngOptTSResol, []byte{tsresol})
	}
	if tsoffset != 0 {
		b = f.opt(b, ngOptTSOffset, f.o.AppendUint64(nil, tsoffset))
	}
	b = f.opt(b, 0, nil)
	f.block(ngIDB, b)
}

func (f *ngFile) epb(typ uint32, iface uint32, ts uint64, data []byte, wire uint32) {
	var b []byte
	if typ == ngPB {
		b = f.o.AppendUint16(nil, uint16(iface))
		b = append(b, 0, 0) // drops
	} else {
		b = f.o.AppendUint32(nil, iface)
	}
	b = f.o.AppendUint32(b, uint32(ts>>32))
	b = f.o.AppendUint32(b, uint32(ts))
	b = f.o.AppendUint32(b, uint32(len(data)))
	b = f.o.AppendUint32(b, wire)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	b = f.opt(b, 1, []byte("a packet comment")) // opt_comment
	f.block(typ, b)
}

// TestNgReaderBlocks reads a hand-built pcapng file of two sections in
// opposite byte orders, with interfaces of different link types, stamp
// resolutions (default µs, ns, 2^-20 s: half a second is 2^19 units) and an
// if_tsoffset (1000 s), enhanced,
// obsolete and simple packet blocks, statistics and unknown blocks: every
// packet with the stamp and link type worked out by hand, and as the old
// reader (pcapgo behind the guard) read it.
func TestNgReaderBlocks(t *testing.T) {
	data := func(n int) []byte { return bytes.Repeat([]byte{byte(n)}, 60+n) }
	le := &ngFile{o: binary.LittleEndian}
	le.shb()
	le.idb(1, 65535, 0, 0)        // Ethernet, µs
	le.idb(113, 0, 9, 0)          // Linux SLL, ns
	le.idb(276, 0, 0x80|20, 1000) // SLL2 (> 255), 2^-20 s, offset 1000 s
	le.block(0x0BADBEEF, []byte("unknown block skipped"))
	le.epb(ngEPB, 0, 1_700_000_000_123456, data(1), 100)
	le.epb(ngEPB, 1, 1_700_000_000_987654321, data(2), 42+2)
	le.epb(ngPB, 2, 1_699_999_000<<20|1<<19, data(3), 43)
	isb := le.o.AppendUint32(nil, 1)
	isb = append(isb, make([]byte, 8)...)
	le.block(ngISB, le.opt(isb, 0, nil))
	spb := le.o.AppendUint32(nil, 60)
	le.block(ngSPB, append(spb, data(20)[:60]...))
	be := &ngFile{o: binary.BigEndian}
	be.shb()
	be.idb(1, 48, 6, 0) // snap 48: a simple packet block is cut to it
	be.epb(ngEPB, 0, 1_700_000_001_000001, data(4), 44)
	spb = be.o.AppendUint32(nil, 60)
	be.block(ngSPB, append(spb, data(5)[:48]...))

	p := filepath.Join(t.TempDir(), "mixed.pcapng")
	if err := os.WriteFile(p, append(le.buf, be.buf...), 0o644); err != nil {
		t.Fatal(err)
	}
	got, old := newRead(p), oldRead(p)
	if got.openErr != nil || got.err != nil || got.truncated {
		t.Fatalf("read: %+v", got)
	}
	want := []record{
		{data(1), 1_700_000_000_123456_000, 100, 1},
		{data(2), 1_700_000_000_987654321, 44, 113},
		{data(3), (1_699_999_000+1000)*1e9 + 5e8, 43, 276},
		{data(20)[:60], zeroTimeNs, 60, 1},
		{data(4), 1_700_000_001_000001_000, 44, 1},
		{data(5)[:48], zeroTimeNs, 60, 1},
	}
	if len(got.recs) != len(want) || len(old.recs) != len(want) {
		t.Fatalf("%d records, old reader %d (%+v); want %d", len(got.recs), len(old.recs), old, len(want))
	}
	for i, w := range want {
		g, o := got.recs[i], old.recs[i]
		if !bytes.Equal(g.data, w.data) || g.ts != w.ts || g.wire != w.wire || g.link != w.link {
			t.Errorf("record %d: %d bytes at %d, wire %d, link %d; want %d bytes at %d, wire %d, link %d",
				i+1, len(g.data), g.ts, g.wire, g.link, len(w.data), w.ts, w.wire, w.link)
		}
		if i == 2 {
			// pcapgo scaled a 2^-20 s fraction by 953, not 953.67…
			o.ts += 5e8 - (1<<19)*953
		}
		if !bytes.Equal(o.data, g.data) || o.ts != g.ts || o.wire != g.wire || uint8(o.link) != uint8(g.link) {
			t.Errorf("record %d: the old reader read %d bytes at %d, wire %d, link %d", i+1, len(o.data), o.ts, o.wire, o.link)
		}
	}

	// Cut anywhere: the packets of the complete blocks, then truncated;
	// never a record that was not whole.
	full := append(le.buf, be.buf...)
	shbLen := int(binary.LittleEndian.Uint32(full[4:]))
	for cut := shbLen; cut < len(full); cut += 4 {
		if err := os.WriteFile(p, full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		g := newRead(p)
		if g.err != nil || g.openErr != nil {
			t.Fatalf("cut at %d: %v %v", cut, g.openErr, g.err)
		}
		for i, r := range g.recs {
			if !bytes.Equal(r.data, want[i].data) || r.ts != want[i].ts {
				t.Fatalf("cut at %d: record %d differs", cut, i+1)
			}
		}
	}
}

// TestGzipPcap reads a gzip-compressed pcap as the same records as the
// plain file, and a compressed file cut short as truncated after the
// records it holds whole.
func TestGzipPcap(t *testing.T) {
	dir := t.TempDir()
	var pkts []synthPacket
	for i := range 300 {
		pkts = append(pkts, synthPacket{ts: 1_700_000_000e9 + int64(i)*1000, data: bytes.Repeat([]byte{byte(i)}, 60+i)})
	}
	plain := filepath.Join(dir, "a.pcap")
	writePcap(t, plain, pkts)
	gz := filepath.Join(dir, "a.pcap.gz")
	writeGzip(t, plain, gz)
	want, got := newRead(plain), newRead(gz)
	if got.err != nil || got.openErr != nil || got.truncated || len(got.recs) != len(pkts) {
		t.Fatalf("gzip: %d records, %+v", len(got.recs), got)
	}
	for i := range got.recs {
		if !bytes.Equal(got.recs[i].data, want.recs[i].data) || got.recs[i].ts != want.recs[i].ts {
			t.Fatalf("record %d differs", i+1)
		}
	}
	src, err := OpenFiles(FileConfig{Paths: []string{gz}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, src); err != nil || src.Stats()[0].Format != FormatGzip {
		t.Errorf("%v, stats %+v", err, src.Stats()[0])
	}
	src.Close()

	b, err := os.ReadFile(gz)
	if err != nil {
		t.Fatal(err)
	}
	// Cut inside the data, and inside the trailer (every record whole,
	// but the stream still cut).
	for _, cut := range []int{len(b) / 3, len(b) / 2, len(b) - 1} {
		if err := os.WriteFile(gz, b[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		g := newRead(gz)
		if !g.truncated || g.err != nil || len(g.recs) > len(pkts) || cut < len(b)/2+1 && len(g.recs) == len(pkts) {
			t.Errorf("cut at %d of %d: %d records, truncated %v, %v", cut, len(b), len(g.recs), g.truncated, g.err)
		}
		for i := range g.recs {
			if !bytes.Equal(g.recs[i].data, pkts[i].data) {
				t.Fatalf("cut at %d: record %d differs", cut, i+1)
			}
		}
	}
}

// TestPcapVariants writes a classic pcap in each byte order with
// microsecond and nanosecond stamps, by hand, and reads it mapped and read:
// every record's stamp (worked out from the fields written) and bytes.
func TestPcapVariants(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []struct {
		name  string
		o     binary.AppendByteOrder
		magic uint32
		unit  int64 // ns per unit of the fraction
	}{
		{"le-us", binary.LittleEndian, 0xA1B2C3D4, 1000},
		{"be-us", binary.BigEndian, 0xA1B2C3D4, 1000},
		{"le-ns", binary.LittleEndian, 0xA1B23C4D, 1},
		{"be-ns", binary.BigEndian, 0xA1B23C4D, 1},
	} {
		b := v.o.AppendUint32(nil, v.magic)
		b = v.o.AppendUint16(b, 2)
		b = v.o.AppendUint16(b, 4)
		b = append(b, make([]byte, 8)...)
		b = v.o.AppendUint32(b, 65535)
		b = v.o.AppendUint32(b, 1)
		type rec struct {
			ts   int64
			data []byte
		}
		var want []rec
		for i := range 50 {
			sec, frac := uint32(1_700_000_000+i), uint32(i*12345)
			data := bytes.Repeat([]byte{byte(i)}, 60+i)
			b = v.o.AppendUint32(b, sec)
			b = v.o.AppendUint32(b, frac)
			b = v.o.AppendUint32(b, uint32(len(data)))
			b = v.o.AppendUint32(b, uint32(len(data)+4))
			b = append(b, data...)
			want = append(want, rec{int64(sec)*1e9 + int64(frac)*v.unit, data})
		}
		p := filepath.Join(dir, v.name+".pcap")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, mapped := range []bool{false, true} {
			got := newReadAs(p, mapped)
			if got.openErr != nil || got.err != nil || got.truncated || len(got.recs) != len(want) {
				t.Fatalf("%s mapped %v: %d records, %+v", v.name, mapped, len(got.recs), got)
			}
			for i, r := range got.recs {
				if r.ts != want[i].ts || !bytes.Equal(r.data, want[i].data) || r.wire != len(r.data)+4 || r.link != 1 {
					t.Fatalf("%s mapped %v: record %d: %d bytes at %d (wire %d); want %d bytes at %d",
						v.name, mapped, i+1, len(r.data), r.ts, r.wire, len(want[i].data), want[i].ts)
				}
			}
		}
	}
}

// FuzzNgReader feeds the pcapng reader arbitrary bytes in memory (faster
// than FuzzReadFile's files): never a panic, never a record beyond
// MaxSnaplen, and an end within the input's length in records.
func FuzzNgReader(f *testing.F) {
	for _, o := range []*ngFile{{o: binary.LittleEndian}, {o: binary.BigEndian}} {
		o.shb()
		o.idb(1, 65535, 9, 0)
		o.idb(276, 0, 0x80|20, 7)
		o.epb(ngEPB, 0, 1_700_000_000_000000001, []byte("some packet bytes"), 17)
		o.epb(ngPB, 1, 1<<40, []byte("more"), 4)
		spb := o.o.AppendUint32(nil, 4)
		o.block(ngSPB, append(spb, "four"...))
		f.Add(o.buf)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := newNgReader(newChunkReader(bytes.NewReader(b), 64))
		if err != nil {
			return
		}
		for n := 0; ; n++ {
			data, _, _, _, err := r.next()
			if err != nil {
				return
			}
			if len(data) > MaxSnaplen || n > len(b) {
				t.Fatalf("record %d of %d bytes from %d bytes of input", n, len(data), len(b))
			}
		}
	})
}
