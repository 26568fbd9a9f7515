package pdu

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzDecode seeds")

// FuzzDecode feeds arbitrary datagrams to the whole decoding path: it must
// never panic, and whatever decodes must encode again to the same records.
func FuzzDecode(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	b := NewBuilder(MaxPDUSize)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := Parse(data)
		if err != nil {
			return
		}
		if err := Validate(&fr); err != nil {
			return
		}
		b.Reset()
		switch fr.Header.Type {
		case TypeSightings:
			var r SightingReader
			var s Sighting
			var in []want
			r.Reset(fr.Body)
			for r.Next(&s) {
				fc := flowClass{r.Resolution(), r.HasSize()}
				if !b.AddSighting(s.Flow, fc.exp, fc.hasSize, s) {
					return // a hostile PDU may encode more densely than the builder
				}
				in = append(in, want{s, fc})
			}
			if r.Err() != nil {
				t.Fatalf("Validate passed, reader failed: %v", r.Err())
			}
			out := decodeAll(t, b.Finish(fr.Header))
			if len(out) != len(in) {
				t.Fatalf("re-encoded %d sightings, decoded %d", len(in), len(out))
			}
			for i := range in {
				if in[i] != out[i] {
					t.Fatalf("sighting %d: %+v became %+v", i, in[i], out[i])
				}
			}
		case TypeFlowDef:
			var rec recorder
			if _, err := Decode(data, &rec); err != nil {
				t.Fatalf("Validate passed, Decode failed: %v", err)
			}
			for _, d := range rec.defs {
				if !b.AddFlowDef(d) {
					return
				}
			}
			var again recorder
			if _, err := Decode(b.Finish(fr.Header), &again); err != nil {
				t.Fatal(err)
			}
			for i := range rec.defs {
				if rec.defs[i] != again.defs[i] {
					t.Fatalf("definition %d: %+v became %+v", i, rec.defs[i], again.defs[i])
				}
			}
		case TypeEvents:
			var rec recorder
			if _, err := Decode(data, &rec); err != nil {
				t.Fatalf("Validate passed, Decode failed: %v", err)
			}
		case TypeCounters:
			var r CountersReader
			var c Counters
			var in []Counters
			r.Reset(fr.Body)
			for r.Next(&c) {
				if !b.AddCounters(c) {
					return // a hostile PDU may encode more densely (non-minimal varints are refused, but not longer ones)
				}
				in = append(in, c)
			}
			f2, err := Parse(b.Finish(fr.Header))
			if err != nil {
				t.Fatal(err)
			}
			r.Reset(f2.Body)
			for i := range in {
				if !r.Next(&c) || c != in[i] {
					t.Fatalf("counters record %d: %+v became %+v", i, in[i], c)
				}
			}
		case TypeRTT:
			var r RTTReader
			var x RTT
			var in []RTT
			r.Reset(fr.Body)
			for r.Next(&x) {
				c := x
				c.Hist = append([]Bucket(nil), x.Hist...)
				if !b.AddRTT(&c) {
					return
				}
				in = append(in, c)
			}
			f2, err := Parse(b.Finish(fr.Header))
			if err != nil {
				t.Fatal(err)
			}
			r.Reset(f2.Body)
			for i := range in {
				if !r.Next(&x) || x.Count != in[i].Count || x.Sum != in[i].Sum || x.Min != in[i].Min || x.Max != in[i].Max ||
					x.SumSqLo != in[i].SumSqLo || len(x.Hist) != len(in[i].Hist) {
					t.Fatalf("rtt record %d: %+v became %+v", i, in[i], x)
				}
			}
		case TypeTCPConn:
			var r TCPConnReader
			var x TCPConn
			var in []TCPConn
			r.Reset(fr.Body)
			for r.Next(&x) {
				c := x
				c.History = append([]byte{}, x.History...)
				if !b.AddTCPConn(&c) {
					return
				}
				in = append(in, c)
			}
			f2, err := Parse(b.Finish(fr.Header))
			if err != nil {
				t.Fatal(err)
			}
			r.Reset(f2.Body)
			for i := range in {
				if !r.Next(&x) || !reflect.DeepEqual(x, in[i]) {
					t.Fatalf("tcp connection record %d: %+v became %+v", i, in[i], x)
				}
			}
		case TypeFTP:
			var r FTPReader
			var x FTPTransfer
			var in []FTPTransfer
			r.Reset(fr.Body)
			for r.Next(&x) {
				c := x
				c.Command = append([]byte{}, x.Command...)
				c.User = append([]byte{}, x.User...)
				c.Arg = append([]byte{}, x.Arg...)
				if !b.AddFTPTransfer(&c) {
					return
				}
				in = append(in, c)
			}
			f2, err := Parse(b.Finish(fr.Header))
			if err != nil {
				t.Fatal(err)
			}
			r.Reset(f2.Body)
			for i := range in {
				if !r.Next(&x) || !reflect.DeepEqual(x, in[i]) {
					t.Fatalf("ftp record %d: %+v became %+v", i, in[i], x)
				}
			}
		case TypeClock:
			var r ClockReader
			var c Clock
			var in []Clock
			r.Reset(fr.Body)
			for r.Next(&c) {
				if !b.AddClock(c) {
					t.Fatalf("clock record %+v decoded but does not encode", c)
				}
				in = append(in, c)
			}
			f2, err := Parse(b.Finish(fr.Header))
			if err != nil {
				t.Fatal(err)
			}
			r.Reset(f2.Body)
			for i := range in {
				if !r.Next(&c) || c != in[i] {
					t.Fatalf("clock record %d: %+v became %+v", i, in[i], c)
				}
			}
		}
	})
}

// seeds returns valid PDUs of every type and corrupted ones: bit flips
// (caught by the CRC), truncations, spoofed lengths, and bodies broken
// behind a valid CRC (so that the fuzzer reaches the body decoders).
func seeds(tb testing.TB) [][]byte {
	var out [][]byte
	b := NewBuilder(512)
	for _, g := range golden {
		b.Reset()
		v := append([]byte(nil), g.build(b)...)
		out = append(out, v)
		flip := append([]byte(nil), v...)
		flip[len(flip)/2] ^= 0x04
		out = append(out, flip, v[:len(v)-3])
		spoof := append([]byte(nil), v...)
		spoof[offBodyLen] = 0xff
		out = append(out, spoof)
		if len(v) > Overhead {
			broken := append([]byte(nil), v...)
			broken[HeaderSize+len(v)-Overhead-1] = 0xff
			seal(broken)
			out = append(out, broken)
		}
	}
	// A dense sightings PDU with many flows and every resolution.
	b.Reset()
	for i := 0; b.AddSighting(uint32(i%150), uint8(i%7), i%3 == 0, Sighting{Sig: uint32(i), TS: int64(i*i) * 977, Size: uint32(i)}); i++ {
	}
	out = append(out, append([]byte(nil), b.Finish(Header{Probe: 1, Session: 2, Seq: 3})...))
	// Sightings with spans (reassembled datagrams) among others.
	b.Reset()
	for i := 0; i < 20; i++ {
		b.AddSighting(uint32(i%3), 3, i%2 == 0, Sighting{Sig: uint32(i), TS: int64(i) * 5000, Size: 100, Span: uint32(i%4) * 1000})
	}
	out = append(out, append([]byte(nil), b.Finish(Header{Probe: 1, Session: 2, Seq: 4})...))
	// A clock PDU (pdu/clock.go), whole and with a body broken behind a
	// valid CRC.
	b.Reset()
	b.AddClock(goldenClock)
	b.AddClock(Clock{TS: 1, Assumed: true, Synced: true})
	c := append([]byte(nil), b.Finish(goldenHeader)...)
	bad := append([]byte(nil), c...)
	bad[HeaderSize+25] = 0xff
	seal(bad)
	out = append(out, c, bad)
	return out
}

// TestFuzzCorpusCurrent checks that the kept seed corpus holds the seeds of
// today's wire format (a format change must refresh it); with
// -update-corpus it rewrites the corpus.
func TestFuzzCorpusCurrent(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if *updateCorpus {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range seeds(t) {
		name := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if *updateCorpus {
			if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil || string(got) != body {
			t.Errorf("%s is not the current seed (err %v): run go test ./pdu -run FuzzCorpusCurrent -update-corpus", name, err)
		}
	}
}

// FuzzBody fuzzes the body decoders behind a valid header and CRC, which
// mutations of whole datagrams rarely get past.
func FuzzBody(f *testing.F) {
	for _, s := range seeds(f) {
		if fr, err := Parse(s); err == nil {
			f.Add(uint8(fr.Header.Type), append([]byte(nil), fr.Body...))
		}
	}
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		if len(body) > MaxPDUSize-Overhead {
			return
		}
		p := appendFrame(nil, Header{Type: Type(typ)}, body)
		fr, err := Parse(p)
		if err != nil {
			return
		}
		if err := Validate(&fr); err != nil {
			return
		}
		var rec recorder
		if _, err := Decode(p, &rec); err != nil {
			t.Fatalf("Validate passed, Decode failed: %v", err)
		}
	})
}
