package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/internal/gen"
	"github.com/tmon-project/tmon/reports"
)

// A probe announces every flow instance under a new id and never reuses
// one; a collector refuses ids past <limits maxFlows> over all sessions
// (it does not ack, and the probe would wait for ever). Sparse traffic
// with a short flowIdle makes the flows come and go — a new id nearly every
// packet, about 60 per probe — so that one session per probe would need
// three times the table: the probes must roll to new sessions (at interval boundaries,
// like a configuration switch) and the collector release the ended
// sessions' ids, and every figure must still be exactly the generator's.
func TestFlowIDRoll(t *testing.T) {
	const maxFlows = 40 // a session's share: 40 / (2 × 2 probes) = 10 ids
	interval := time.Second
	gc := gen.DefaultConfig()
	gc.Seed, gc.Count, gc.Rate = 11, 120, 2 // a minute of traffic, ~6 s between packets of a flow
	gc.Loss, gc.Dup, gc.Frag, gc.Clashes, gc.IPv6 = 0.05, 0.02, 0, 2, 0
	dir, truth := generate(t, gc)
	conf := fmt.Sprintf(genConf, interval, freePort(t), slicesAttr())
	conf = strings.Replace(conf, `<collector `, fmt.Sprintf(`<limits maxFlows="%d"/>
  <analyses flowIdle="1s"/>
  <collector `, maxFlows), 1)
	// Paced (30× real time), so that the analyser sees the flows go idle
	// between their packets rather than a whole file in one batch.
	cfgPath := filepath.Join(t.TempDir(), "tmon.xml")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	spoolDir := filepath.Join(t.TempDir(), "spool")
	coll := start(t, "tmon-collector", "-config", cfgPath, "-name", "c1", "-spool", spoolDir)
	waitListening(t, coll)
	var ps []*proc
	for name, file := range map[string]string{"pa": "hop-a.pcap", "pb": "hop-b.pcap"} {
		ps = append(ps, start(t, "tmon-probe", "-config", cfgPath, "-name", name, "-read", filepath.Join(dir, file), "-speed", "30"))
	}
	for _, p := range ps {
		p.wait(t, 3*time.Minute)
		// A share of 10 ids is far below the sieve ring: said at start.
		if !strings.Contains(p.log.String(), "smaller than the sieve ring") {
			t.Error("the probe did not warn that its share of flow ids is below its ring")
		}
	}
	coll.stop(t)
	s, err := reports.ReadSpool(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstTruth(t, s, truth, interval)
	ev := readEvents(t, spoolDir)
	rolls := strings.Count(ev, "probe.roll")
	if rolls < 4 {
		t.Errorf("%d probe.roll events, want at least 2 per probe (%d flow ids per session, ~60 per probe)", rolls, maxFlows/4)
	}
	if strings.Contains(ev, "collector.limit") || strings.Contains(ev, "probe.restart") {
		t.Errorf("the collector refused flow ids, or took a roll for a restart:\n%s", ev)
	}
	t.Logf("%d rolls", rolls)
}
