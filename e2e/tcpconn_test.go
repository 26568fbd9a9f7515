package e2e

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// zeekConns returns Zeek's conn.log rows of TCP connections as
// "orig_h orig_p resp_h resp_p duration_µs orig_bytes resp_bytes orig_pkts
// resp_pkts conn_state history", sorted.
func zeekConns(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cols, out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "#fields\t"); ok {
			cols = strings.Split(rest, "\t")
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		v := map[string]string{}
		for i, x := range strings.Split(line, "\t") {
			v[cols[i]] = x
		}
		if v["proto"] != "tcp" {
			continue
		}
		// duration in µs: Zeek prints 6 decimals.
		d := strings.Replace(v["duration"], ".", "", 1)
		us, err := strconv.ParseInt(d, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintln(v["id.orig_h"], v["id.orig_p"], v["id.resp_h"], v["id.resp_p"], us,
			v["orig_bytes"], v["resp_bytes"], v["orig_pkts"], v["resp_pkts"], v["conn_state"], v["history"]))
	}
	slices.Sort(out)
	return out
}

// TCP connections through real probe and collector processes and the
// loader: Zeek's FTP captures (IPv4 and IPv6) replayed by one probe, the
// spool loaded into SQLite; the final row of every connection in
// tcp_conns equals Zeek's conn.log field by field (addresses and ports,
// duration to the µs of the capture, payload bytes and packets each way,
// conn_state, history).
func TestTCPConnProcesses(t *testing.T) {
	const conf = `<tmon version="tcp" interval="10s">
  <transport maxPduSize="1200" maxBuildTime="100ms" minGap="200us" heartbeat="500ms"/>
  <collector name="c1" address="127.0.0.1:%d"/>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="a0"/></probe>
  <flowClass name="tcp">
    <filter><match field="ip.proto" value="6"/></filter>
    <granular fields="ip.src ip.dst"/>
  </flowClass>
</tmon>`
	for _, name := range []string{"ipv4", "ipv6"} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(corpusDir(t, "zeek"), "ftp", name+".pcap")
			spoolDir := runPath(t, fmt.Sprintf(conf, freePort(t)), map[string]string{"pa": file})
			db := filepath.Join(t.TempDir(), "tmon.db")
			out, err := exec.Command(filepath.Join(binDir, "tmon-loader"), "-spool", "c1="+spoolDir, "-db", "sqlite:"+db).CombinedOutput()
			if err != nil {
				t.Fatalf("tmon-loader: %v\n%s", err, out)
			}
			h, err := sql.Open("sqlite", db)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			q, err := h.Query(`SELECT orig_addr, orig_port, resp_addr, resp_port, duration_ns, orig_bytes, resp_bytes,
				orig_pkts, resp_pkts, conn_state, history, status FROM tcp_conns WHERE status <> 'open'`)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			var got []string
			for q.Next() {
				var oa, ra, state, hist, status string
				var op, rp, dur, ob, rb, opk, rpk int64
				if err := q.Scan(&oa, &op, &ra, &rp, &dur, &ob, &rb, &opk, &rpk, &state, &hist, &status); err != nil {
					t.Fatal(err)
				}
				if status != "fin" {
					t.Errorf("%s:%d status %s, want fin", oa, op, status)
				}
				got = append(got, fmt.Sprintln(oa, op, ra, rp, dur/1000, ob, rb, opk, rpk, state, hist))
			}
			slices.Sort(got)
			want := zeekConns(t, filepath.Join(corpusDir(t, "zeek"), "baseline", "ftp-"+name, "conn.log"))
			if !slices.Equal(got, want) {
				t.Errorf("tcp_conns\n%s\nZeek conn.log\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// The control connection lasts 38 s (IPv4) or 27 s (IPv6):
			// reported open at the end of the 10 s intervals it spans.
			var open int
			if err := h.QueryRow(`SELECT COUNT(*) FROM tcp_conns WHERE status = 'open' AND resp_port = 21`).Scan(&open); err != nil {
				t.Fatal(err)
			}
			if open < 2 {
				t.Errorf("control connection reported open %d times", open)
			}
		})
	}
}
