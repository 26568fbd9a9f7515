package e2e

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/spool"
)

// Counters of every class, one-way or not, through real probe and
// collector processes: the site class (one-way) and a counted-only IPv6
// class against the generator's truth, the counted-only class "other"
// (everything not from 10.1/16, background included, as in the demo)
// against the captures read with gopacket — per class, probe and interval:
// packets, bytes, fragments, size sum of squares, min and max.
const countersConf = `<tmon version="counters" interval="%s">
  <transport maxPduSize="1200" maxBuildTime="100ms" minGap="200us" heartbeat="500ms"/>
  <collector name="c1" address="127.0.0.1:%d"/>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2" key="f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"><interface name="b0" hop="B"/></probe>
  <flowClass name="v6">
    <filter><match field="ip.src" value="fd00:1::/64"/></filter>
    <granular fields="ip.src ip.dst"/>
  </flowClass>
  <flowClass name="other">
    <filter not="true"><match field="ip.src" value="10.1.0.0/16"/></filter>
  </flowClass>
` + siteClass

type ctrKey struct {
	class, probe string
	start        int64
}

type ctr struct {
	packets, bytes, frags, sq uint64
	min, max                  uint64
}

func (c *ctr) add(size, frags int) {
	s := uint64(size)
	if c.packets == 0 || s < c.min {
		c.min = s
	}
	c.max = max(c.max, s)
	c.packets++
	c.bytes += s
	c.sq += s * s
	c.frags += uint64(frags)
}

func TestCountersGenerated(t *testing.T) {
	const interval = 2 * time.Second
	iv := int64(interval)
	gc := gen.DefaultConfig()
	gc.Seed = 11
	gc.Count = 8000
	gc.Rate = 3000
	gc.Loss, gc.Dup, gc.Frag, gc.IPv6, gc.Background = 0.02, 0.005, 0.03, 0.15, 0.05
	dir := t.TempDir()
	if _, _, err := gen.Generate(gc, dir); err != nil {
		t.Fatal(err)
	}
	truth, err := gen.ReadTruthFile(filepath.Join(dir, gen.FileTruth))
	if err != nil {
		t.Fatal(err)
	}
	hopA, hopB := filepath.Join(dir, gen.FileHopA), filepath.Join(dir, gen.FileHopB)
	spoolDir := runPath(t, fmt.Sprintf(countersConf, interval, freePort(t), slicesAttr()), map[string]string{"pa": hopA, "pb": hopB})

	want := map[ctrKey]*ctr{}
	at := func(class, probe string, ts int64) *ctr {
		k := ctrKey{class, probe, ts - ts%iv}
		if want[k] == nil {
			want[k] = &ctr{}
		}
		return want[k]
	}
	// Site and v6 from the truth, fragments reassembled into datagrams:
	// every row was sent at A; at B unless lost, plus its duplicate.
	for _, r := range gen.Datagrams(truth) {
		class := ""
		switch {
		case inClass(r):
			class = "site"
		case r.Src.Is6():
			class = "v6"
		default:
			continue
		}
		at(class, "pa", r.TA).add(r.IPLen, r.Frags)
		if !r.Lost {
			at(class, "pb", r.TB).add(r.IPLen, r.Frags)
			if r.DupTB != 0 {
				at(class, "pb", r.DupTB).add(r.IPLen, r.Frags)
			}
		}
	}
	// other: every IP packet of each capture not from 10.1/16, read with
	// gopacket.
	for probe, file := range map[string]string{"pa": hopA, "pb": hopB} {
		readOther(t, file, func(ts int64, size int, frag bool) {
			if frag {
				t.Fatalf("%s: a fragment outside the site's traffic: the oracle does not reassemble", file)
			}
			at("other", probe, ts).add(size, 0)
		})
	}

	got := map[ctrKey]*ctr{}
	files, _ := filepath.Glob(filepath.Join(spoolDir, spool.TypeCounters, "*.tsv"))
	if len(files) == 0 {
		t.Fatal("no flow_counters file in the spool")
	}
	classes := map[string]bool{}
	for _, f := range files {
		hdr, rows, err := spool.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		col := map[string]int{}
		for i, h := range hdr {
			col[h] = i
		}
		for _, row := range rows {
			n := func(c string) uint64 {
				v, err := strconv.ParseUint(row[col[c]], 10, 64)
				if err != nil && row[col[c]] != "" {
					t.Fatalf("%s: %s %q: %v", f, c, row[col[c]], err)
				}
				return v
			}
			start, _ := strconv.ParseInt(row[col["interval_start"]], 10, 64)
			k := ctrKey{row[col["class"]], row[col["probe"]], start}
			classes[k.class] = true
			g := got[k]
			if g == nil {
				g = &ctr{min: 1 << 62}
				got[k] = g
			}
			if ic := n("icmp_errors"); ic != 0 {
				t.Errorf("%+v: %d ICMP errors, the generator makes none", k, ic)
			}
			g.packets += n("packets")
			g.bytes += n("bytes")
			g.frags += n("fragments")
			g.sq += n("size_sumsq")
			if n("packets") > 0 {
				g.min = min(g.min, n("size_min"))
				g.max = max(g.max, n("size_max"))
			}
		}
	}
	for _, c := range []string{"site", "v6", "other"} {
		if !classes[c] {
			t.Errorf("class %s has no counters", c)
		}
	}
	for k, w := range want {
		g := got[k]
		if g == nil {
			t.Errorf("%+v: no counters, want %+v", k, *w)
			continue
		}
		if *g != *w {
			t.Errorf("%+v: got %+v, want %+v", k, *g, *w)
		}
	}
	for k := range got {
		if want[k] == nil {
			t.Errorf("%+v: counters where nothing was sent", k)
		}
	}
	t.Logf("checked %d (class, probe, interval) counters", len(want))
}

// readOther calls f for every IPv4/IPv6 packet of a capture whose source is
// not in 10.1.0.0/16.
func readOther(t *testing.T, file string, f func(ts int64, size int, frag bool)) {
	t.Helper()
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r, err := pcapgo.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	site := netip.MustParsePrefix("10.1.0.0/16")
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		ts := ci.Timestamp.UnixNano()
		if ip4, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			src, _ := netip.AddrFromSlice(ip4.SrcIP)
			if !site.Contains(src.Unmap()) {
				f(ts, int(ip4.Length), ip4.Flags&layers.IPv4MoreFragments != 0 || ip4.FragOffset != 0)
			}
			continue
		}
		if ip6, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
			f(ts, 40+int(ip6.Length), p.Layer(layers.LayerTypeIPv6Fragment) != nil)
		}
	}
}
