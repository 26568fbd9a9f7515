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

// rolloutSite writes the probes' key files into dir and returns the text
// of a configuration: collector c1 on udp (TCP for the configuration
// exchange), c2… on the more ports, probes pa (hop A) and pb (hop B), keys in key files (a
// published file travels in clear), the site class named class, and the
// given attributes on <tmon>.
func rolloutSite(t *testing.T, dir string, udp int, transport string, more ...int) func(version, extra, class string) string {
	t.Helper()
	for name, k := range map[string]string{"pa.key": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"pb.key": "f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(k+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	colls := fmt.Sprintf(`<collector name="c1" address="127.0.0.1:%d"/>`, udp)
	for i, port := range more {
		colls += fmt.Sprintf(`
  <collector name="c%d" address="127.0.0.1:%d"/>`, i+2, port)
	}
	return func(version, extra, class string) string {
		return fmt.Sprintf(`<tmon version="%s" %s interval="1s">
  <transport %s/>
  %s
  <probe name="pa" id="1" keyFile="pa.key"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2" keyFile="pb.key"><interface name="b0" hop="B"/></probe>
`, version, extra, transport, colls) + strings.Replace(fmt.Sprintf(siteClass, slicesAttr()), `name="site"`, `name="`+class+`"`, 1)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConfigPush publishes new versions with tmon config push at the
// collector while it and two probes (one without a metrics endpoint) run:
// both probes fetch each version over the authenticated exchange; a good
// one is held by all three, a broken one rejected by all three with the
// version in force kept; tmon config status shows every component, the
// probe without an endpoint as reported to the collector; the events
// reach the spool.
func TestConfigPush(t *testing.T) {
	gc := gen.DefaultConfig()
	gc.Seed, gc.Rate, gc.Duration = 9, 200, 15*time.Second
	dir := t.TempDir()
	if _, _, err := gen.Generate(gc, dir); err != nil {
		t.Fatal(err)
	}
	site := rolloutSite(t, dir, freePort(t), `maxPduSize="1200" maxBuildTime="100ms" minGap="200us" heartbeat="500ms"`)
	cfgPath := filepath.Join(dir, "tmon.xml")
	writeFile(t, cfgPath, site("v1", "", "site"))
	spoolDir := filepath.Join(dir, "spool")
	coll := start(t, "tmon-collector", "-config", cfgPath, "-name", "c1", "-spool", spoolDir)
	waitListening(t, coll)
	pa := start(t, "tmon-probe", "-config", cfgPath, "-name", "pa", "-read", filepath.Join(dir, "hop-a.pcap"), "-speed", "1")
	pb := start(t, "tmon-probe", "-config", cfgPath, "-name", "pb", "-read", filepath.Join(dir, "hop-b.pcap"), "-speed", "1")

	from := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	v2 := filepath.Join(dir, "v2.xml")
	writeFile(t, v2, site("v2", `validFrom="`+from.Format(time.RFC3339)+`"`, "site2"))
	code, out := runTool(t, "tmon", "config", "push", v2)
	if code != 0 || !strings.Contains(out, `published; version "v2" accepted and held by this collector`) {
		t.Fatalf("push v2: exit %d\n%s", code, out)
	}
	for _, p := range []*proc{coll, pa, pb} {
		waitLog(t, p, `version \"v2\" from`, 20*time.Second)
	}
	for _, p := range []*proc{pa, pb} {
		if !strings.Contains(p.log.String(), `version \"v2\" from collector 127.0.0.1:`) || !strings.Contains(p.log.String(), "config.accepted") {
			t.Errorf("%s did not take v2 from the collector:\n%s", p.name, p.log.String())
		}
	}
	// Status: nobody has an endpoint: every row from the collector.
	waitStatus := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, out := runTool(t, "tmon", "config", "status", "-config", cfgPath)
			ok := true
			for _, n := range []string{"collector c1", "probe pa", "probe pb"} {
				ok = ok && regexp.MustCompile(`(?m)^`+strings.ReplaceAll(n, " ", `\s+`)+`\s+-\s+`+want).MatchString(out)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("tmon config status never showed %q for all:\n%s", want, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitStatus(`v1\s+v2\s+` + regexp.QuoteMeta(from.Format(time.RFC3339)) + `\s+\(reported to c1, `)

	// A broken version, published with the configuration in force: every
	// component rejects it, v1 stays, v2 stays held.
	bad := filepath.Join(dir, "bad.xml")
	writeFile(t, bad, strings.Replace(site("v3", "", "site"), "<transport ", "<transprt ", 1))
	code, out = runTool(t, "tmon", "config", "push", "-config", cfgPath, bad)
	if code != 0 || !strings.Contains(out, "published; rejected by this collector, its version v1 stays in force") || !strings.Contains(out, "<transprt>: unknown element") {
		t.Fatalf("push of a broken file: exit %d\n%s", code, out)
	}
	for _, p := range []*proc{coll, pa, pb} {
		waitLog(t, p, "config.rejected", 20*time.Second)
		if !regexp.MustCompile(`rejected, version \\"v1\\" stays in force: .*tmon.xml:2: <transprt>: unknown element`).MatchString(p.log.String()) {
			t.Errorf("%s's rejection does not say why:\n%s", p.name, p.log.String())
		}
	}
	waitStatus(`v1\s+v2\s+`)

	pa.wait(t, time.Minute)
	pb.wait(t, time.Minute)
	coll.stop(t)
	n := map[string]int{}
	for _, r := range spoolEvents(t, spoolDir) {
		if strings.HasPrefix(r[2], "config.") {
			n[r[1]+" "+r[2]]++
		}
	}
	for _, who := range []string{"collector:c1", "probe:pa", "probe:pb"} {
		for _, k := range []string{"config.rejected", "config.accepted"} {
			if n[who+" "+k] != 1 {
				t.Errorf("%d events %s %s, want 1 (all: %v)", n[who+" "+k], who, k, n)
			}
		}
	}
}
