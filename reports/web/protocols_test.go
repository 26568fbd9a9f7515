package web_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tmon-project/tmon/collector"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/internal/testenv"
	"github.com/tmon-project/tmon/loader"
	"github.com/tmon-project/tmon/probe"
	"github.com/tmon-project/tmon/reports/export"
	"github.com/tmon-project/tmon/reports/query"
	"github.com/tmon-project/tmon/reports/web"
)

func zeekDir(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, "shared", "corpus", "zeek")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("corpus zeek not found above the test directory")
		}
		dir = filepath.Dir(dir)
	}
}

// protoDB replays Zeek's FTP capture (IPv4) through a probe to a collector
// in process, with a class on port 21 only, and loads the spool into a
// SQLite database: the tcp_conns and ftp_transfers rows of the pages.
func protoDB(t *testing.T) *query.DB {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	x := fmt.Sprintf(`<tmon interval="10s">
  <transport maxBuildTime="20ms" minGap="100us" heartbeat="500ms"/>
  <collector name="c1" address="127.0.0.1:%d"/>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="a0"/></probe>
  <flowClass name="ftp">
    <filter><or><match field="l4.dport" value="21"/><match field="l4.sport" value="21"/></or></filter>
    <granular fields="ip.src ip.dst"/>
  </flowClass>
</tmon>`, port)
	cfg, err := conf.Parse(strings.NewReader(x), "ftp.xml")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- collector.Run(ctx, collector.Options{Config: cfg, Name: "c1", Spool: spool, Logger: quiet, Ready: ready})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("collector: %v", err)
	}
	_, err = probe.Run(context.Background(), probe.Options{Config: cfg, Name: "pa", Logger: quiet, DrainTimeout: 30 * time.Second,
		Files: []string{filepath.Join(zeekDir(t), "ftp", "ipv4.pcap")}})
	cancel()
	if cerr := <-done; err != nil || cerr != nil {
		t.Fatalf("probe: %v; collector: %v", err, cerr)
	}
	dbPath := filepath.Join(dir, "tmon.db")
	l, err := loader.New(loader.Config{DB: "sqlite:" + dbPath, Spools: []loader.Spool{{Collector: "c1", Dir: spool}}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	st, err := l.RunOnce(context.Background())
	l.Close()
	if err != nil || st.Bad != 0 {
		t.Fatalf("load: %+v %v", st, err)
	}
	db, err := query.Open("sqlite:" + dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// zeekRows returns a conn.log or ftp.log as maps by column.
func zeekRows(t *testing.T, file string) []map[string]string {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cols []string
	var out []map[string]string
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
		out = append(out, v)
	}
	return out
}

var cellRE = regexp.MustCompile(`<td[^>]*>([^<]*)</td>`)

// tableRows returns the text of the cells of every body row of table id.
func tableRows(t *testing.T, html, id string) [][]string {
	t.Helper()
	i := strings.Index(html, `id="`+id+`"`)
	if i < 0 {
		return nil
	}
	body := html[i:]
	body = body[strings.Index(body, "<tbody>"):strings.Index(body, "</tbody>")]
	var out [][]string
	for _, tr := range strings.Split(body, "<tr>")[1:] {
		var cells []string
		for _, m := range cellRE.FindAllStringSubmatch(tr, -1) {
			cells = append(cells, m[1])
		}
		out = append(out, cells)
	}
	return out
}

// TestProtocolPages: the TCP connections and FTP transfers pages of a
// database filled by a real probe, collector and loader from Zeek's FTP
// capture show, a row each, the five connections of Zeek's conn.log
// (endpoints, duration, packets, bytes, conn_state, history) and the four
// transfers (the two RETRs of Zeek's ftp.log with their size and reply,
// the two listings of the 342-byte data connections).
func TestProtocolPages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a probe and a collector")
	}
	db := protoDB(t)
	srv := web.New(db, nil, nil)
	// The capture's day (1329843161 s is 2012-02-21 16:52 UTC).
	sel, err := db.Selection(context.Background(), map[string][]string{"period": {"custom"},
		"from": {"2012-02-21T00:00:00Z"}, "to": {"2012-02-22T00:00:00Z"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	render := func(path string) string {
		var buf bytes.Buffer
		if err := srv.Render(context.Background(), &buf, path, sel, sel.Values(), false); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return buf.String()
	}
	conns := tableRows(t, render("/tcp"), "tcp")
	var got []string
	for _, c := range conns {
		// duration, originator, responder, status, state, orig pkts/bytes, resp pkts/bytes, history
		got = append(got, strings.Join([]string{c[2], c[3], c[1], c[6], c[7], c[8], c[9], c[5], c[13]}, " "))
	}
	var want []string
	for _, z := range zeekRows(t, filepath.Join(zeekDir(t), "baseline", "ftp-ipv4", "conn.log")) {
		want = append(want, strings.Join([]string{z["id.orig_h"] + ":" + z["id.orig_p"], z["id.resp_h"] + ":" + z["id.resp_p"], z["duration"],
			z["orig_pkts"], z["orig_bytes"], z["resp_pkts"], z["resp_bytes"], z["conn_state"], z["history"]}, " "))
	}
	if fmt.Sprint(sortedCopy(got)) != fmt.Sprint(sortedCopy(want)) {
		t.Errorf("TCP page rows\n%s\nZeek conn.log\n%s", strings.Join(sortedCopy(got), "\n"), strings.Join(sortedCopy(want), "\n"))
	}
	xs := tableRows(t, render("/ftp"), "ftp")
	got = nil
	for _, x := range xs {
		got = append(got, strings.Join(x[1:6], " ")) // command, file, user, reply, bytes
	}
	want = []string{"RETR robots.txt anonymous 226 77", "LIST  anonymous 226 342", "RETR robots.txt anonymous 226 77", "LIST  anonymous 226 342"}
	for _, z := range zeekRows(t, filepath.Join(zeekDir(t), "baseline", "ftp-ipv4", "ftp.log")) {
		if z["command"] == "RETR" && (z["file_size"] != "77" || z["reply_code"] != "226" || z["user"] != "anonymous") {
			t.Fatalf("Zeek's ftp.log changed: %v", z)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("FTP page rows (newest first)\n%q\nwant\n%q", got, want)
	}
	// The TCP handshakes of the five connections, both halves, as the
	// round-trip analysis's own corpus test has them from tcpdump
	// (analyse/rtt TestCorpusRoundTrips): SYN → SYN/ACK 55533, 55284,
	// 54829, 45, 36 µs; SYN/ACK → ACK 33, 44, 30, 55759, 55660 µs; the
	// TCP timestamp echoes there from tshark's fields: 48 answered, 1
	// unanswered, 25 µs to 111742 µs.
	rtts := tableRows(t, render("/rtt"), "rtt")
	got = nil
	for _, r := range rtts {
		got = append(got, strings.Join([]string{r[0], r[1], r[2], r[3], r[7]}, " "))
	}
	if w := "[tcp_syn 5 0 0.036 55.533 tcp_synack 5 0 0.030 55.759 tcp_ts 48 1 0.025 111.742]"; fmt.Sprint(got) != w {
		t.Errorf("round trips %v, want %s", got, w)
	}
	if !testing.Short() {
		browserCheck(t, srv, sel)
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// browserCheck opens both pages in headless chromium: no console error,
// and a click on a column header sorts the table by it.
func browserCheck(t *testing.T, srv *web.Server, sel query.Selection) {
	browser, err := export.Chromium("")
	if err != nil {
		testenv.Skipf(t, "%v", err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx, console := browse(t, &env{browser: browser})
	shots := screenshotDir(t)
	for _, pg := range []struct{ path, id string }{{"/rtt", "rtt"}, {"/tcp", "tcp"}, {"/ftp", "ftp"}} {
		url := ts.URL + pg.path + "?" + sel.Values().Encode()
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`))); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		// Sort by bytes (the 6th column of both tables… the orig bytes of
		// TCP, the bytes of FTP): twice, ascending then descending.
		col := map[string]int{"rtt": 2, "tcp": 8, "ftp": 6}[pg.id]
		read := fmt.Sprintf(`Array.from(document.querySelectorAll("#%s tbody tr")).map(r => +r.cells[%d].dataset.v).join(",")`, pg.id, col-1)
		click := fmt.Sprintf(`document.querySelectorAll("#%s th")[%d].click()`, pg.id, col-1)
		sortRead := func() string {
			s, err := chromedp.Run(ctx, chromedp.Evaluate[string](click+`; `+read))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		asc := sortRead()
		desc := sortRead()
		if !sortedNums(asc, 1) || !sortedNums(desc, -1) || asc == "" {
			t.Errorf("%s: sorted %q then %q", pg.path, asc, desc)
		}
		if pg.id == "rtt" {
			drawn, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`["rtt-tcp_syn", "rtt-tcp_synack"].every(id => { const c = window.tmonCharts[id]; return c && c.plot && c.plot.root.querySelector("canvas") !== null && c.def.x.length > 0 })`))
			if err != nil || !drawn {
				t.Errorf("round-trip charts not drawn (%v)", err)
			}
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			_ = os.WriteFile(filepath.Join(shots, strings.TrimPrefix(pg.path, "/")+".png"), png, 0o644)
		}
	}
	for _, m := range console() {
		if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleWarning {
			t.Errorf("console %s: %s (%s:%d)", m.Type, m, m.URL, m.Line+1)
		}
	}
}

func sortedNums(s string, dir int) bool {
	var prev float64
	for i, f := range strings.Split(s, ",") {
		var v float64
		fmt.Sscan(f, &v)
		if i > 0 && (dir > 0 && v < prev || dir < 0 && v > prev) {
			return false
		}
		prev = v
	}
	return true
}
