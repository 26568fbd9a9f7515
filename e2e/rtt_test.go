package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tmon-project/tmon/spool"
)

// Round trips through real probe and collector processes: Zeek's DNS
// capture replayed by one probe; the spool's rtt_stats rows add up to the
// eleven query → response times tcpdump shows (`tcpdump -tt -nr
// long-connection.pcap`: response time − query time of the same id, in
// µs), e.g. id 63343: 1112172471.333401 − 1112172470.501268 = 832133 µs.
func TestRTTProcesses(t *testing.T) {
	const conf = `<tmon version="rtt" interval="60s">
  <transport maxPduSize="1200" maxBuildTime="100ms" minGap="200us" heartbeat="500ms"/>
  <collector name="c1" address="127.0.0.1:%d"/>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="a0"/></probe>
  <flowClass name="dns">
    <filter><or><match field="l4.dport" value="53"/><match field="l4.sport" value="53"/></or></filter>
    <granular fields="ip.proto"/>
  </flowClass>
</tmon>`
	file := filepath.Join(corpusDir(t, "zeek"), "dns", "long-connection.pcap")
	spoolDir := runPath(t, fmt.Sprintf(conf, freePort(t)), map[string]string{"pa": file})
	want := []int64{832133, 139024, 506, 48911, 237668, 387, 16538, 16665, 233143, 212992, 72604}
	var wsum, wmin, wmax int64
	for i, v := range want {
		v *= 1000
		wsum += v
		if i == 0 || v < wmin {
			wmin = v
		}
		wmax = max(wmax, v)
	}
	files, _ := filepath.Glob(filepath.Join(spoolDir, spool.TypeRTT, "*.tsv"))
	var count, unans, sum, mn, mx int64
	for _, f := range files {
		hdr, rows, err := spool.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		col := map[string]int{}
		for i, h := range hdr {
			col[h] = i
		}
		for _, r := range rows {
			n := func(c string) int64 {
				v, _ := strconv.ParseInt(r[col[c]], 10, 64)
				return v
			}
			if r[col["kind"]] != "dns" || r[col["class"]] != "dns" || r[col["probe"]] != "pa" || r[col["iface"]] != "a0" {
				t.Errorf("row %v", r)
			}
			if n("count") > 0 {
				if count == 0 || n("min_ns") < mn {
					mn = n("min_ns")
				}
				mx = max(mx, n("max_ns"))
			}
			count += n("count")
			unans += n("unanswered")
			sum += n("sum_ns")
		}
	}
	if count != int64(len(want)) || sum != wsum || mn != wmin || mx != wmax || unans != 0 {
		t.Errorf("count %d sum %d min %d max %d unanswered %d; want %d %d %d %d 0 (%d files)", count, sum, mn, mx, unans, len(want), wsum, wmin, wmax, len(files))
	}
}
