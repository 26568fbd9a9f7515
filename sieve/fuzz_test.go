package sieve

import (
	"encoding/binary"
	"testing"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
)

// FuzzDissect: no input makes Packet or Sign panic; wanted records are
// consistent; the counters add up.
func FuzzDissect(f *testing.F) {
	for _, seed := range [][]byte{fixUDP4, fixQinQTCP6, cat(u16(0x0800), fixICMPUnreach)} {
		f.Add(seed, LinkEthernet)
	}
	f.Add(fixICMPUnreach, LinkRaw)
	f.Add(ip6(0, "::1", "::2", cat(ext6(44, 0), frag6(17, 0, true, 9), udpHdr(1, 2, nil))), LinkIPv6)
	f.Add(cat([]byte{2, 0, 0, 0}, fixICMPUnreach), LinkNull)
	// TCP with the options Linux puts in a SYN (MSS, SACK permitted,
	// timestamps, NOP, window scale): the timestamps parser (tcp.go).
	syn := tcpHdr(40000, 80, 0x02, nil)
	syn[12] = 10 << 4
	f.Add(ip4(6, "10.0.0.1", "10.0.0.2", 0, nil, cat(syn[:20], []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7})), LinkRaw)
	cfg := testConfig()
	cfg.Classes[len(cfg.Classes)-1].OneWay = &conf.OneWay{}
	cfg.Classes[len(cfg.Classes)-1].Mask = 1<<flow.Src | 1<<flow.DstPort | 1<<flow.DSCP
	s, err := Compile(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, link uint16) {
		var rec Record
		before := s.Stats()
		ok, why := s.Packet(data, 1, 2, link, &rec)
		after := s.Stats()
		if after.Packets != before.Packets+1 || !sumOK(after) {
			t.Fatalf("stats %+v", after)
		}
		if ok != (why == Wanted) {
			t.Fatalf("ok %v reason %v", ok, why)
		}
		if ok {
			checkRecord(t, &rec, "fuzz")
			if rec.Classes == 0 || rec.TS != 1 || rec.Iface != 2 {
				t.Fatalf("record %+v", rec)
			}
		}
		_, _ = s.Sign(data)
	})
}

// bytePicker draws choices from fuzz input (zero when exhausted), so that
// FuzzCompile can reuse the random configuration generator.
type bytePicker struct{ b []byte }

func (p *bytePicker) next() uint64 {
	if len(p.b) == 0 {
		return 0
	}
	var buf [8]byte
	n := copy(buf[:], p.b[:min(2, len(p.b))])
	p.b = p.b[n:]
	return binary.LittleEndian.Uint64(buf[:])
}
func (p *bytePicker) IntN(n int) int          { return int(p.next() % uint64(n)) }
func (p *bytePicker) Int64N(n int64) int64    { return int64(p.next() % uint64(n)) }
func (p *bytePicker) Uint32N(n uint32) uint32 { return uint32(p.next() % uint64(n)) }

// FuzzCompile: configurations built from the input compile or fail cleanly,
// and the compiled sieve agrees with the reference evaluator.
func FuzzCompile(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte("configuration with several groups and terms, negated and not"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &bytePicker{b: data}
		cfg := randConfig(p)
		s, err := Compile(cfg)
		if err != nil {
			return
		}
		for range 8 {
			rec, absent, unknown := randRecord(p)
			checkAgree(t, s, cfg, &rec, absent, unknown)
		}
	})
}
