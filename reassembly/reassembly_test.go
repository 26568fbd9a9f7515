package reassembly

import (
	"bytes"
	"encoding/binary"
	"github.com/tmon-project/tmon/conf"
	"math/rand/v2"
	"testing"
	"time"
)

// datagram4 builds an IPv4 datagram of n payload bytes and cuts it into
// fragments of per bytes.
func frags4(id uint32, n, per int, ts int64) ([]Fragment, []byte) {
	hdr := make([]byte, 20)
	hdr[0] = 0x45
	hdr[9] = 17
	binary.BigEndian.PutUint16(hdr[2:], uint16(20+n))
	pay := make([]byte, n)
	for i := range pay {
		pay[i] = byte(int(id) + i*13)
	}
	var out []Fragment
	for off := 0; off < n; off += per {
		end := min(off+per, n)
		out = append(out, Fragment{Key: Key{ID: id, Version: 4, Proto: 17}, TS: ts + int64(off), Off: off, More: end < n,
			Hdr: hdr, NHAt: -1, Payload: pay[off:end]})
	}
	whole := append(append([]byte(nil), hdr...), pay...)
	return out, whole
}

// Every order of the fragments, with exact duplicates mixed in, gives the
// datagram once, with the bytes of the original and the first and last
// fragment times; copies after completion are duplicates.
func TestReassembleAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	r := New(Config{})
	for i := range 500 {
		n := 100 + rng.IntN(4000)
		per := max(8*(1+rng.IntN(200)), (n/conf.DefaultAnalyses().FragMaxFrags+8)&^7)
		fs, whole := frags4(uint32(i), n, per, int64(i)*1e6)
		rng.Shuffle(len(fs), func(a, b int) { fs[a], fs[b] = fs[b], fs[a] })
		var seq []Fragment
		for _, f := range fs {
			seq = append(seq, f)
			if rng.IntN(4) == 0 {
				seq = append(seq, f) // a duplicate on the path
			}
		}
		n, dups := 0, 0
		before := r.Stats().Duplicate
		for _, f := range seq {
			d, ok := r.Add(&f)
			if !ok {
				continue
			}
			n++
			if !bytes.Equal(d.IP, whole) || d.Fragments != len(fs) || d.First != int64(i)*1e6 || d.Last != fs[0].TS && d.Last < d.First {
				t.Fatalf("datagram %d: %d bytes (want %d), %d fragments (want %d), first %d", i, len(d.IP), len(whole), d.Fragments, len(fs), d.First)
			}
			var mx int64
			for _, f := range fs {
				mx = max(mx, f.TS)
			}
			if d.Last != mx {
				t.Fatalf("datagram %d: last %d, want %d", i, d.Last, mx)
			}
		}
		dups = len(seq) - len(fs)
		if n != 1 || int(r.Stats().Duplicate-before) != dups {
			t.Fatalf("datagram %d: %d datagrams, %d duplicates (want 1, %d)", i, n, r.Stats().Duplicate-before, dups)
		}
	}
	r.Close()
	st := r.Stats()
	if st.Datagrams != 500 || st.Incomplete != 0 || st.Overlap != 0 || st.HeldBytes != 0 || st.Held != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A lost fragment leaves the set incomplete at its timeout; an overlap
// with other bytes drops the set and the rest of its fragments.
func TestIncompleteAndOverlap(t *testing.T) {
	r := New(Config{Timeout: time.Second})
	fs, _ := frags4(1, 3000, 1000, 0)
	r.Add(&fs[0])
	r.Add(&fs[2])
	r.Expire(int64(time.Second) - 1)
	if r.Stats().Incomplete != 0 || r.Stats().Held != 1 {
		t.Fatalf("expired early: %+v", r.Stats())
	}
	r.Expire(int64(time.Second))
	if st := r.Stats(); st.Incomplete != 1 || st.Held != 0 || st.HeldBytes != 0 {
		t.Fatalf("after the timeout: %+v", st)
	}
	fs, _ = frags4(2, 3000, 1000, 5e9)
	r.Add(&fs[0])
	bad := fs[1]
	bad.Payload = append([]byte{0xff}, fs[1].Payload[1:]...) // same bounds, other bytes
	r.Add(&bad)                                              // held: nothing to compare it with yet
	if _, ok := r.Add(&fs[1]); ok {
		t.Fatal("completed a set dropped for overlap")
	}
	r.Add(&fs[2]) // the set is gone: discarded, not a new set
	r.Close()
	if st := r.Stats(); st.Overlap != 1 || st.Discarded != 1 || st.Datagrams != 0 || st.Incomplete != 1 {
		t.Fatalf("overlap: %+v", st)
	}
}

// A flood of fragments that never complete stays within MaxSets and
// MaxBytes; every set is accounted for.
func TestFloodBounded(t *testing.T) {
	const maxSets, maxBytes = 500, 1 << 20
	r := New(Config{MaxSets: maxSets, MaxBytes: maxBytes, Timeout: time.Hour})
	n := 100_000
	for i := range n {
		fs, _ := frags4(uint32(i), 2000+i%3000, 1480, int64(i))
		r.Add(&fs[0]) // the rest never comes
		st := r.Stats()
		if st.Held > maxSets || st.HeldBytes > maxBytes {
			t.Fatalf("after %d: %+v", i, st)
		}
	}
	r.Close()
	st := r.Stats()
	if st.Incomplete != uint64(n) || st.Evicted != uint64(n-maxSets) && st.Evicted < uint64(n-maxSets) || st.HeldBytes != 0 {
		t.Errorf("stats %+v", st)
	}
	if len(r.free) > maxFree {
		t.Errorf("%d recycled sets", len(r.free))
	}
}

func TestAddAllocs(t *testing.T) {
	r := New(Config{})
	fs, _ := frags4(1, 3000, 1480, 0)
	var id uint32
	add := func() {
		id++
		ts := int64(id) * 1e9 // each set expires before the next: recycled
		for i := range fs {
			f := fs[i]
			f.Key.ID, f.TS = id, ts
			r.Add(&f)
		}
	}
	for range 10 {
		add()
	}
	if n := testing.AllocsPerRun(1000, add); n != 0 {
		t.Errorf("%.1f allocs per datagram", n)
	}
}

// FuzzReassemble feeds arbitrary fragment sequences: no panic, memory
// within bounds, every datagram within 64 KiB, and every set accounted.
func FuzzReassemble(f *testing.F) {
	f.Add([]byte{0, 0, 1, 10, 1, 0, 1, 10, 0, 2, 1, 3})
	f.Add([]byte{0, 0, 1, 200, 0, 8, 0, 200, 0, 0, 1, 200})
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := New(Config{MaxSets: 8, MaxBytes: 1 << 16, MaxFrags: 8})
		hdr := make([]byte, 20)
		hdr[0] = 0x45
		buf := make([]byte, 4096)
		for i := 0; i+4 <= len(prog); i += 4 {
			p := prog[i : i+4]
			f := Fragment{Key: Key{ID: uint32(p[0] % 4), Version: 4}, TS: int64(i), Off: int(p[1]) * 8,
				More: p[2]&1 != 0, Hdr: hdr, NHAt: -1, Payload: buf[:int(p[3])*8+int(p[2]>>1)%8]}
			if d, ok := r.Add(&f); ok && (len(d.IP) > 65535+20 || len(d.IP) < 20) {
				t.Fatalf("datagram of %d bytes", len(d.IP))
			}
			if st := r.Stats(); st.Held > 8 || st.HeldBytes > 1<<16 || st.HeldBytes < 0 {
				t.Fatalf("stats %+v", st)
			}
		}
		r.Close()
		if st := r.Stats(); st.HeldBytes != 0 || st.Held != 0 {
			t.Fatalf("after Close %+v", st)
		}
	})
}
