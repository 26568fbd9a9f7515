package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/internal/gen"
)

// TestConfigWatch runs a collector and a probe that watch their shared
// configuration file while they work. A broken new version is rejected by
// both (the old one stays in force); a good one with a later validFrom is
// accepted and held by both; tmon config status shows what each runs and
// holds; the events reach the spool.
func TestConfigWatch(t *testing.T) {
	gc := gen.DefaultConfig()
	gc.Seed, gc.Rate, gc.Duration = 9, 200, 10*time.Second
	dir := t.TempDir()
	if _, _, err := gen.Generate(gc, dir); err != nil {
		t.Fatal(err)
	}
	mc, ma := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)), fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	udp := freePort(t)
	config := func(version, extra string) string {
		return fmt.Sprintf(`<tmon version="%s" %s interval="1s">
  <transport maxPduSize="1200" maxBuildTime="100ms" minGap="200us" heartbeat="500ms"/>
  <collector name="c1" address="127.0.0.1:%d"><metrics listen="%s"/></collector>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="a0" hop="A"/><metrics listen="%s"/></probe>
  <probe name="pb" id="2" key="f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"><interface name="b0" hop="B"/></probe>
`, version, extra, udp, mc, ma) + fmt.Sprintf(siteClass, slicesAttr())
	}
	cfgPath := filepath.Join(dir, "tmon.xml")
	publish := func(content string) {
		t.Helper()
		tmp := cfgPath + ".new"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfgPath); err != nil {
			t.Fatal(err)
		}
	}
	publish(config("v1", ""))
	spoolDir := filepath.Join(dir, "spool")
	coll := start(t, "tmon-collector", "-config", cfgPath, "-name", "c1", "-spool", spoolDir)
	waitListening(t, coll)
	pa := start(t, "tmon-probe", "-config", cfgPath, "-name", "pa", "-read", filepath.Join(dir, "hop-a.pcap"), "-speed", "1")
	waitScrape(t, pa, ma, 30*time.Second, "the probe's endpoint", func(m metricSet) bool { return m["tmon_probe_info"] != nil })

	status := func(wantExit int) string {
		t.Helper()
		out, err := exec.Command(filepath.Join(binDir, "tmon"), "config", "status", "-config", cfgPath).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantExit {
			t.Errorf("tmon config status: exit %d, want %d\n%s", code, wantExit, out)
		}
		return string(out)
	}
	row := func(out, role, name string) string {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == role && f[1] == name {
				return strings.Join(f, " ")
			}
		}
		t.Fatalf("no %s %s in\n%s", role, name, out)
		return ""
	}
	out := status(1) // pb has no endpoint
	if r := row(out, "collector", "c1"); r != "collector c1 "+mc+" v1 - -" {
		t.Errorf("status of c1: %q", r)
	}
	if r := row(out, "probe", "pa"); r != "probe pa "+ma+" v1 - -" {
		t.Errorf("status of pa: %q", r)
	}
	if r := row(out, "probe", "pb"); !strings.Contains(r, "no <metrics> endpoint") {
		t.Errorf("status of pb: %q", r)
	}

	// A broken version: rejected by both, v1 stays.
	publish(strings.Replace(config("v2", ""), "<transport ", "<transprt ", 1))
	waitLog(t, coll, "config.rejected", 10*time.Second)
	waitLog(t, pa, "config.rejected", 10*time.Second)
	if !regexp.MustCompile(`rejected, version \\"v1\\" stays in force: .*tmon.xml:2: <transprt>: unknown element`).MatchString(coll.log.String()) {
		t.Errorf("the rejection does not say why:\n%s", coll.log.String())
	}
	// (tmon config status reads the broken file too: ask the endpoint.)
	m, err := scrape(mc)
	if err != nil {
		t.Fatal(err)
	}
	if f := m["tmon_collector_info"]; f == nil || !strings.Contains(f.String(), `value:"v1"`) || m["tmon_collector_config_held_info"] != nil {
		t.Errorf("after a rejected version: %v, held %v", f, m["tmon_collector_config_held_info"])
	}

	// A good version for later: accepted and held by both.
	from := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	publish(config("v2", `validFrom="`+from.Format(time.RFC3339)+`"`))
	waitLog(t, coll, "config.accepted", 10*time.Second)
	waitLog(t, pa, "config.accepted", 10*time.Second)
	out = status(1) // the file's v2 is not running yet
	if r := row(out, "collector", "c1"); r != "collector c1 "+mc+" v1 v2 "+from.Format(time.RFC3339) {
		t.Errorf("c1 holding v2: %q", r)
	}
	if r := row(out, "probe", "pa"); r != "probe pa "+ma+" v1 v2 "+from.Format(time.RFC3339) {
		t.Errorf("pa holding v2: %q", r)
	}

	pa.wait(t, time.Minute)
	coll.stop(t)
	n := map[string]int{}
	for _, r := range spoolEvents(t, spoolDir) {
		if strings.HasPrefix(r[2], "config.") {
			n[r[1]+" "+r[2]]++
		}
	}
	for _, k := range []string{"collector:c1 config.rejected", "collector:c1 config.accepted", "probe:pa config.rejected", "probe:pa config.accepted"} {
		if n[k] != 1 {
			t.Errorf("%d events %s, want 1 (all: %v)", n[k], k, n)
		}
	}
}
