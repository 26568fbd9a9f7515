package capture

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/google/gopacket/pcapgo"
)

// TestRawPcapAgreesWithPcapgo reads every classic pcap of the corpus (the
// tcpdump test suite's captures, many malformed, and the two-point and Zeek
// captures) with the in-place reader and with pcapgo: the same records, the
// same stamps and lengths, and an error where pcapgo has one.
func TestRawPcapAgreesWithPcapgo(t *testing.T) {
	dir := corpusDir(t, "")
	files := corpusFiles(dir)
	var compared, records int
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if f, err := sniffFormat(b); err != nil || (f != FormatPcap && f != FormatPcapNs) {
			continue
		}
		compared++
		ref, refErr := pcapgo.NewReader(bytes.NewReader(b))
		raw, rawErr := newRawPcap(newChunkReader(bufio.NewReader(bytes.NewReader(b)), 4096)) // small: records grow it
		if (refErr == nil) != (rawErr == nil) {
			t.Errorf("%s: header: pcapgo %v, raw %v", p, refErr, rawErr)
			continue
		}
		if refErr != nil {
			continue
		}
		// pcapgo keeps the link type in a byte (layers.LinkType): 258
		// (PKTAP) comes out as 2. The raw reader keeps all 16 bits.
		if uint8(raw.link) != uint8(ref.LinkType()) {
			t.Errorf("%s: link type %d, pcapgo %d", p, raw.link, ref.LinkType())
		}
		ref.SetSnaplen(MaxSnaplen)
		for n := 1; ; n++ {
			want, ci, werr := ref.ZeroCopyReadPacketData()
			got, ts, wire, gerr := raw.next()
			if werr != nil || gerr != nil {
				// pcapgo says EOF for a record whose header is cut;
				// both say something for a record whose data is.
				wantEnd := werr == io.EOF && ci.Timestamp.IsZero()
				if wantEnd != (gerr == io.EOF) || (werr == nil) != (gerr == nil) && !(werr == io.EOF && errors.Is(gerr, ErrTruncated)) {
					t.Errorf("%s: record %d: pcapgo %v, raw %v", p, n, werr, gerr)
				}
				break
			}
			records++
			wantTS := ci.Timestamp.UnixNano()
			if ts != wantTS {
				// A fraction out of range (≥ 10⁶ µs): pcapgo multiplies
				// it in 32 bits and wraps; the raw reader does not.
				h := raw.buf[raw.pos-len(got)-pcapRecordHeaderLen:]
				sec, frac := int64(raw.order.Uint32(h)), raw.order.Uint32(h[4:])
				if wantTS == sec*1e9+int64(frac*uint32(raw.factor)) && ts == sec*1e9+int64(frac)*raw.factor {
					wantTS = ts
				}
			}
			if !bytes.Equal(got, want) || ts != wantTS || wire != ci.Length {
				t.Errorf("%s: record %d: %d bytes at %d (wire %d), pcapgo %d bytes at %d (wire %d)",
					p, n, len(got), ts, wire, len(want), ci.Timestamp.UnixNano(), ci.Length)
				break
			}
		}
	}
	if compared < 100 {
		t.Fatalf("only %d classic pcap files under %s", compared, dir)
	}
	t.Logf("%d files, %d records read alike", compared, records)
}
