package sieve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
)

// corpusDir returns ../shared/corpus/<sub> as seen from the repository root,
// found by walking up from the test's directory, or skips the test.
func corpusDir(tb testing.TB, sub string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "corpus", sub)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skipf("capture corpus shared/corpus/%s not found above the test directory: skipping", sub)
		}
		dir = parent
	}
}

// frame is one captured frame of a file.
type frame struct {
	data []byte
	link uint16
	ts   int64
}

// readCapture reads every frame of a pcap or pcapng file; it stops at the
// first read error and returns the frames read so far with that error.
func readCapture(path string, max int) ([]frame, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var frames []frame
	if len(raw) >= 4 && bytes.Equal(raw[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("open pcapng: %w", err)
		}
		for len(frames) < max {
			data, ci, err := r.ReadPacketData()
			if err != nil {
				return frames, err
			}
			link := uint16(r.LinkType())
			if ifc, err := r.Interface(ci.InterfaceIndex); err == nil {
				link = uint16(ifc.LinkType)
			}
			frames = append(frames, frame{data, link, ci.Timestamp.UnixNano()})
		}
		return frames, nil
	}
	r, err := pcapgo.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("open pcap: %w", err)
	}
	// Like libpcap, accept records up to the maximum snap length whatever the
	// header says, and no more: a corrupt header must not make the reader
	// allocate gigabytes.
	r.SetSnaplen(262144)
	for len(frames) < max {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			return frames, err
		}
		frames = append(frames, frame{data, uint16(r.LinkType()), ci.Timestamp.UnixNano()})
	}
	return frames, nil
}

// checkRecord asserts the invariants of a dissected record.
func checkRecord(tb testing.TB, rec *Record, where string) {
	tb.Helper()
	fail := func(msg string) { tb.Errorf("%s: %s: %+v", where, msg, *rec) }
	switch rec.IPVersion {
	case 4:
		if [12]byte(rec.Src[4:]) != [12]byte{} || [12]byte(rec.Dst[4:]) != [12]byte{} || rec.FlowLabel != 0 {
			fail("IPv4 record with IPv6 bytes")
		}
		if rec.Length < 20 {
			fail("IPv4 length < 20")
		}
	case 6:
		if rec.Length < 40 {
			fail("IPv6 length < 40")
		}
	default:
		fail("IP version")
	}
	if rec.DSCP > 63 || rec.ECN > 3 || rec.VLAN > 4095 || rec.FlowLabel >= 1<<20 || rec.FragOff >= 1<<13 {
		fail("field out of range")
	}
	if rec.Flags&FlagNoL4 != 0 && (rec.SrcPort != 0 || rec.DstPort != 0 || rec.TCPFlags != 0) {
		fail("ports or flags without a transport header")
	}
	if rec.FragOff != 0 && rec.Flags&(FlagFragment|FlagNoL4) != FlagFragment|FlagNoL4 {
		fail("later fragment not flagged")
	}
	if rec.Flags&FlagMoreFrags != 0 && rec.Flags&FlagFragment == 0 {
		fail("more-fragments without fragment")
	}
	icmp := rec.Proto == protoICMP || rec.Proto == protoICMPv6 || rec.Flags&FlagICMPError != 0
	if !icmp && (rec.ICMPType != 0 || rec.ICMPCode != 0) {
		fail("ICMP type without ICMP")
	}
	if rec.Proto != protoTCP && rec.TCPFlags != 0 {
		fail("TCP flags without TCP")
	}
	if rec.Proto != protoTCP && rec.Proto != protoUDP && (rec.SrcPort != 0 || rec.DstPort != 0) {
		fail("ports without TCP/UDP")
	}
}

func sumOK(st Stats) bool {
	return st.Packets == st.Wanted+st.Unwanted+st.NotIP+st.UnsupportedLink+st.Truncated+st.Malformed+st.Held
}

// TestCorpus runs every capture of the tcpdump test suite (many of them
// deliberately malformed) through the sieve: no panic, no hang, counters
// that add up, consistent records.
func TestCorpus(t *testing.T) {
	dir := corpusDir(t, "tcpdump")
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	cfg := testConfig()
	cfg.Classes[len(cfg.Classes)-1].OneWay = &conf.OneWay{}              // sign everything
	cfg.Classes[len(cfg.Classes)-1].Mask = 1<<flow.Src | 1<<flow.SrcPort // NAT paths too
	var total Stats
	var files, unreadable, readErrs int
	links := map[uint16]int{}
	for _, name := range names {
		s, err := Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		frames, rerr := readCapture(name, 1<<20)
		if frames == nil && rerr != nil && !errors.Is(rerr, io.EOF) {
			unreadable++
			t.Logf("%s: cannot read: %v", filepath.Base(name), rerr)
			continue
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			readErrs++
		}
		files++
		done := make(chan string, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					done <- fmt.Sprintf("panic: %v", p)
				}
			}()
			var rec Record
			for i, f := range frames {
				links[f.link]++
				if ok, _ := s.Packet(f.data, f.ts, 0, f.link, &rec); ok {
					checkRecord(t, &rec, fmt.Sprintf("%s #%d", filepath.Base(name), i+1))
				}
			}
			done <- ""
		}()
		select {
		case msg := <-done:
			if msg != "" {
				t.Errorf("%s: %s", filepath.Base(name), msg)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no result after 20 s", filepath.Base(name))
		}
		st := s.Stats()
		if !sumOK(st) || st.Packets != uint64(len(frames)) {
			t.Errorf("%s: stats do not add up: %+v", filepath.Base(name), st)
		}
		total.Packets += st.Packets
		total.Wanted += st.Wanted
		total.Unwanted += st.Unwanted
		total.NotIP += st.NotIP
		total.UnsupportedLink += st.UnsupportedLink
		total.Truncated += st.Truncated
		total.Malformed += st.Malformed
		total.Held += st.Held
		total.Fragments += st.Fragments
		total.ICMPErrors += st.ICMPErrors
		total.Signed += st.Signed
	}
	t.Logf("%d files run, %d unreadable as pcap/pcapng, %d ended by a read error; %d link types", files, unreadable, readErrs, len(links))
	t.Logf("totals: %+v", total)
	if files < 700 {
		t.Errorf("only %d of %d files could be read", files, len(names))
	}
}
