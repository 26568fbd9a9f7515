package probe

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/analyse/counters"
	"github.com/tmon-project/tmon/analyse/ftp"
	"github.com/tmon-project/tmon/analyse/rtt"
	"github.com/tmon-project/tmon/analyse/tcpconn"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/reassembly"
	"github.com/tmon-project/tmon/sieve"
)

// TestAnalysesConfigured: every <analyses> value of the file reaches the
// analysis or the reassembly it bounds; what the file leaves out is
// conf.DefaultAnalyses's.
func TestAnalysesConfigured(t *testing.T) {
	const x = `<tmon interval="10s">
  <collector name="c" address="127.0.0.1:47390"/>
  <probe name="p" id="1"><interface name="i0"/></probe>
  <analyses rttTimeout="3s" rttMaxPending="1000" tcpIdle="2m" tcpCloseDelay="1s" tcpMaxConns="2000"
            ftpIdle="1m" ftpMaxSessions="300" countersMaxEntries="4000" fragTimeout="250ms"
            fragMaxSets="500" fragMaxBytes="1048576"/>
</tmon>`
	cfg, err := conf.Parse(strings.NewReader(x), "t.xml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range analyses(cfg, newOutput(1400)) {
		switch a := a.(type) {
		case *counters.Counter:
			got = append(got, "counters", itoa(a.MaxEntries()))
		case *rtt.Analysis:
			c := a.Config()
			got = append(got, "rtt", c.Timeout.String(), itoa(c.MaxPending))
		case *tcpconn.Analysis:
			c := a.Config()
			got = append(got, "tcp", c.Idle.String(), c.CloseDelay.String(), itoa(c.MaxConns))
		case *ftp.Analysis:
			c := a.Config()
			got = append(got, "ftp", c.Idle.String(), itoa(c.MaxSessions))
		}
	}
	sv, err := sieve.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fc := sv.ReassemblyConfig()
	want := reassembly.Config{Timeout: 250 * time.Millisecond, MaxSets: 500, MaxBytes: 1 << 20, MaxFrags: conf.DefaultAnalyses().FragMaxFrags}
	if fc != want {
		t.Errorf("reassembly %+v, want %+v", fc, want)
	}
	if w := "counters 4000 rtt 3s 1000 tcp 2m0s 1s 2000 ftp 1m0s 300"; strings.Join(got, " ") != w {
		t.Errorf("analyses %q, want %q", strings.Join(got, " "), w)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
