package probe

import (
	"context"
	"fmt"
	"github.com/tmon-project/tmon/internal/testenv"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/collector"
	"github.com/tmon-project/tmon/conf"
)

func corpus(t *testing.T, sub string) string {
	t.Helper()
	dir, _ := filepath.Abs("..")
	p := filepath.Join(filepath.Dir(dir), "shared", "corpus", sub)
	if _, err := os.Stat(p); err != nil {
		testenv.Skipf(t, "shared corpus not found at %s (expected ../shared/corpus beside the repository): %v", p, err)
	}
	return p
}

// everythingConf wants every IP packet in a one-way class, so that every
// packet goes through dissection, signing, flow discovery, PDU encoding and
// the collector's decoding.
func everythingConf(t testing.TB, port int) *conf.Config {
	t.Helper()
	x := fmt.Sprintf(`<tmon interval="1s">
  <transport maxBuildTime="20ms" minGap="100us" initialTimeout="100ms" timeoutIncrement="100ms" heartbeat="1s"/>
  <collector name="c1" address="127.0.0.1:%d"/>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="x0" hop="A"/></probe>
  <probe name="pb" id="2" key="f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"><interface name="y0" hop="B"/></probe>
  <flowClass name="all">
    <granular fields="ip.src ip.dst ip.proto l4.sport l4.dport icmp.type vlan.id"/>
    <oneWay hops="A B" maxTransit="1s" perPacket="true"/>
  </flowClass>
</tmon>`, port)
	cfg, err := conf.Parse(strings.NewReader(x), "corpus.xml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTcpdumpCorpus sends every capture of tcpdump's test suite (many of
// them deliberately malformed) through a real probe pipeline to a real
// collector over UDP: no panic, no hang, and every packet accounted for.
func TestTcpdumpCorpus(t *testing.T) {
	dir := corpus(t, "tcpdump")
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) < 800 {
		t.Fatalf("%d captures in %s, expected the 830 of the corpus", len(files), dir)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	cfg := everythingConf(t, port)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	collDone := make(chan error, 1)
	go func() {
		collDone <- collector.Run(ctx, collector.Options{Config: cfg, Name: "c1", Spool: memDir(t), Logger: quiet, Ready: ready})
	}()
	select {
	case <-ready:
	case err := <-collDone:
		t.Fatalf("collector: %v", err)
	}
	var ok, refused, packets, wanted, sightings uint64
	for _, f := range files {
		fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
		res, err := Run(fctx, Options{Config: cfg, Name: "pa", Files: []string{f}, Logger: quiet, DrainTimeout: 20 * time.Second})
		fcancel()
		if fctx.Err() == context.DeadlineExceeded {
			t.Errorf("%s: probe did not finish within 30s", filepath.Base(f))
		}
		if err != nil {
			// A file the capture layer cannot read is refused with a
			// message naming it; anything else is a failure.
			if !strings.Contains(err.Error(), filepath.Base(f)) {
				t.Errorf("%s: error does not name the file: %v", filepath.Base(f), err)
			}
			refused++
			continue
		}
		ok++
		s := res.Sieve
		if s.Packets < s.Wanted {
			t.Errorf("%s: wanted %d of %d packets", filepath.Base(f), s.Wanted, s.Packets)
		}
		if res.Transport.Collectors[0].GivenUp != 0 || res.Transport.Collectors[0].Pending != 0 {
			t.Errorf("%s: transport %+v", filepath.Base(f), res.Transport)
		}
		if res.Sightings != res.Analyser.Sightings {
			t.Errorf("%s: analyser made %d sightings, %d went into PDUs", filepath.Base(f), res.Analyser.Sightings, res.Sightings)
		}
		packets += s.Packets
		wanted += s.Wanted
		sightings += res.Sightings
	}
	cancel()
	if err := <-collDone; err != nil {
		t.Errorf("collector: %v", err)
	}
	t.Logf("%d captures through the probe (%d refused with a clear error): %d packets, %d wanted, %d sightings delivered", ok, refused, packets, wanted, sightings)
	if ok < 800 {
		t.Errorf("only %d captures read", ok)
	}
}

// memDir returns a temporary directory in memory (/dev/shm) where there is
// one, else on disk. The corpus test commits hundreds of spool sets, each
// with its fsyncs under the collector's lock; on a disk shared with other
// busy tests those took long enough to hold acks past the probes' drain
// (see the closing note: the collector's commits should leave its lock).
// What it tests is the pipeline, not durability.
func memDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "tmon-corpus-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}
