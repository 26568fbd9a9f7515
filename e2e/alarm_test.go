package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/tmon-project/tmon/alarm"
	"github.com/tmon-project/tmon/hist"
	"github.com/tmon-project/tmon/internal/gen"
)

// TestThresholds replays generated traffic whose delay steps from 20 ms to
// 40 ms for four seconds and back, through two probes and a collector with
// two thresholds on the hop pair: a static one on the median delay (above
// 30 ms for two intervals in a row, clear at 25 ms) and a learned one on
// the 99th percentile. Crossings and recoveries must fall on the intervals
// the step dictates, once each (hysteresis), as events in the spool, as
// webhook POSTs and as SNMP traps received by listeners the test runs.
func TestThresholds(t *testing.T) {
	t0 := gen.DefaultStart
	var all gen.Result
	for i, seg := range []struct {
		delay string
		start time.Duration
		dur   time.Duration
	}{
		// A segment's last packets leave a little after its duration:
		// each ends 100 ms before the next interval.
		{"uniform:19ms:21ms", 0, 4900 * time.Millisecond},
		{"uniform:39ms:41ms", 5 * time.Second, 3900 * time.Millisecond},
		{"uniform:19ms:21ms", 9 * time.Second, 3 * time.Second},
	} {
		gc := gen.DefaultConfig()
		gc.Seed, gc.Rate, gc.Start, gc.Duration = uint64(20+i), 400, t0.Add(seg.start), seg.dur
		gc.Loss, gc.Dup, gc.Clashes = 0, 0, 0
		d, err := gen.ParseDist(seg.delay)
		if err != nil {
			t.Fatal(err)
		}
		gc.Delay = d
		r, err := gen.Build(gc)
		if err != nil {
			t.Fatal(err)
		}
		all.A = append(all.A, r.A...)
		all.B = append(all.B, r.B...)
		all.Truth = append(all.Truth, r.Truth...)
	}
	// The B capture of a segment ends after the next segment's starts.
	sort.SliceStable(all.B, func(i, j int) bool { return all.B[i].TS < all.B[j].TS })
	dir := t.TempDir()
	if _, err := all.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}

	// The receivers.
	var mu sync.Mutex
	var hooks []alarm.Notice
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var n alarm.Notice
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &n) != nil {
			t.Errorf("webhook: %s %s %q", r.Method, r.Header.Get("Content-Type"), body)
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		mu.Lock()
		hooks = append(hooks, n)
		mu.Unlock()
	}))
	defer web.Close()
	trapPort := freePort(t)
	type trap struct {
		oid, community string
		vars           map[string]string
	}
	var traps []trap
	tl := gosnmp.NewTrapListener()
	tl.Params = &gosnmp.GoSNMP{Community: "noc", Version: gosnmp.Version2c}
	tl.OnNewTrap = func(p *gosnmp.SnmpPacket, _ *net.UDPAddr) {
		tr := trap{community: p.Community, vars: map[string]string{}}
		for _, v := range p.Variables {
			switch {
			case v.Name == ".1.3.6.1.6.3.1.1.4.1.0":
				tr.oid, _ = v.Value.(string)
			case strings.HasPrefix(v.Name, alarm.OIDVars+"."):
				b, _ := v.Value.([]byte)
				tr.vars[strings.TrimPrefix(v.Name, alarm.OIDVars+".")] = string(b)
			}
		}
		mu.Lock()
		traps = append(traps, tr)
		mu.Unlock()
	}
	go tl.Listen(fmt.Sprintf("127.0.0.1:%d", trapPort))
	defer tl.Close()
	select {
	case <-tl.Listening():
	case <-time.After(10 * time.Second):
		t.Fatal("trap listener not listening")
	}

	cfg := fmt.Sprintf(`<tmon version="alarm-1" interval="1s">
  <alarms webhook="%s/hook" trap="127.0.0.1:%d" community="noc"/>
  <transport maxPduSize="1200" maxBuildTime="100ms" minGap="200us" heartbeat="500ms"/>
  <collector name="c1" address="127.0.0.1:%d"/>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2" key="f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"><interface name="b0" hop="B"/></probe>
  <flowClass name="site">
    <filter>
      <match field="ip.src" value="10.1.0.0/16"/>
      <match field="ip.dst" value="10.2.0.0/16"/>
      <or>
        <match field="ip.proto" value="udp"/>
        <and><match field="ip.proto" value="tcp"/><match field="l4.dport" value="5000-5999"/></and>
      </or>
    </filter>
    <granular fields="ip.src ip.dst l4.dport"/>
    <oneWay hops="A B" maxTransit="1s" timeout="2s">
      <hopPair from="A" to="B">
        <threshold metric="delay.p50" above="30ms" clear="25ms" after="2"/>
        <threshold metric="delay.p99" learn="3" factor="1.4"/>
      </hopPair>
    </oneWay>
  </flowClass>
</tmon>`, web.URL, trapPort, freePort(t))
	spoolDir := runPath(t, cfg, map[string]string{"pa": filepath.Join(dir, "hop-a.pcap"), "pb": filepath.Join(dir, "hop-b.pcap")})

	at := func(s int) string { return t0.Add(time.Duration(s) * time.Second).Format(time.RFC3339) }
	// kind metric interval_start: the step starts at 5 s and ends at 9 s.
	want := []string{
		"threshold.crossed delay.p50 " + at(6), // the second interval over 30 ms
		"threshold.cleared delay.p50 " + at(9),
		"threshold.crossed delay.p99 " + at(5), // over 1.4 × the learned ~21 ms at once
		"threshold.cleared delay.p99 " + at(9),
	}
	sort.Strings(want)

	var events []string
	for _, r := range spoolEvents(t, spoolDir) {
		if strings.HasPrefix(r[2], "threshold.") {
			m := strings.Fields(r[3])
			kv := map[string]string{}
			for _, f := range m {
				k, v, _ := strings.Cut(f, "=")
				kv[k] = v
			}
			events = append(events, r[2]+" "+kv["metric"]+" "+kv["interval_start"])
		}
	}
	sort.Strings(events)
	if !slices.Equal(events, want) {
		t.Errorf("threshold events in the spool:\n%q\nwant\n%q", events, want)
	}

	// The notifications: delivered once the collector stopped (it drains).
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n, m := len(hooks), len(traps)
		mu.Unlock()
		if n >= len(want) && m >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, h := range hooks {
		got = append(got, h.Kind+" "+h.Metric+" "+h.IntervalStart.Format(time.RFC3339))
		if h.Collector != "c1" || h.Class != "site" || h.From != "A" || h.To != "B" || h.Unit != "s" || h.IntervalLen != 1 {
			t.Errorf("webhook notice %+v", h)
		}
		switch {
		case h.Kind == alarm.KindCrossed && !(h.Value > h.Limit):
			t.Errorf("crossed, but value %v ≤ limit %v", h.Value, h.Limit)
		case h.Kind == alarm.KindCleared && !(h.Value <= h.Clear):
			t.Errorf("cleared, but value %v > clear %v", h.Value, h.Clear)
		}
		if h.Metric == "delay.p50" && h.Kind == alarm.KindCrossed {
			// Against the generator: the median delay of the packets
			// sent at A in that interval, nearest rank.
			var ds []int64
			for _, r := range all.Truth {
				if inClass(r) && !r.Lost && r.TA >= h.IntervalStart.UnixNano() && r.TA < h.IntervalStart.UnixNano()+int64(time.Second) {
					ds = append(ds, r.Delay)
				}
			}
			slices.Sort(ds)
			med := float64(ds[(len(ds)+1)/2-1]) / 1e9
			if d := h.Value - med; d > med*hist.RelErr || -d > med*hist.RelErr {
				t.Errorf("median delay notified %v s, the generator's %v s", h.Value, med)
			}
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("webhook notices:\n%q\nwant\n%q", got, want)
	}
	got = got[:0]
	for _, tr := range traps {
		kind := map[string]string{alarm.OIDCrossed: "threshold.crossed", alarm.OIDCleared: "threshold.cleared"}[strings.TrimPrefix(tr.oid, ".")]
		if kind == "" {
			kind = map[string]string{alarm.OIDCrossed: "threshold.crossed", alarm.OIDCleared: "threshold.cleared"}[tr.oid]
		}
		got = append(got, kind+" "+tr.vars["4"]+" "+tr.vars["9"])
		if tr.community != "noc" || tr.vars["1"] != "site" || tr.vars["2"] != "A" || tr.vars["3"] != "B" || tr.vars["8"] != "c1" {
			t.Errorf("trap %+v", tr)
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("SNMP traps:\n%q\nwant\n%q", got, want)
	}
}
