package e2e

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FTP transfers through real probe and collector processes and the
// loader: Zeek's FTP captures replayed by one probe whose only class
// selects port 21 (the data connections' random ports are kept by the
// sieve's expectations), the spool loaded into SQLite; ftp_transfers
// holds, in order, a transfer for every data channel of Zeek's ftp.log
// (PASV/EPSV/PORT/EPRT rows: passive, originator, responder, port) and,
// for every RETR row, its user, file name, size and reply code.
func TestFTPProcesses(t *testing.T) {
	const conf = `<tmon version="ftp" interval="10s">
  <transport maxPduSize="1200" maxBuildTime="100ms" minGap="200us" heartbeat="500ms"/>
  <collector name="c1" address="127.0.0.1:%d"/>
  <probe name="pa" id="1" key="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"><interface name="a0"/></probe>
  <flowClass name="ftp">
    <filter><or><match field="l4.dport" value="21"/><match field="l4.sport" value="21"/></or></filter>
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
			q, err := h.Query(`SELECT command, arg, user, reply_code, bytes, passive, data_orig_addr, data_resp_addr, data_resp_port,
				duration_ns, throughput_bps FROM ftp_transfers ORDER BY cmd_ns`)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			var channels, files []string
			for q.Next() {
				var cmd, arg, user, orig, resp string
				var reply, bytes, passive, port, dur, bps int64
				if err := q.Scan(&cmd, &arg, &user, &reply, &bytes, &passive, &orig, &resp, &port, &dur, &bps); err != nil {
					t.Fatal(err)
				}
				p := "F"
				if passive == 1 {
					p = "T"
				}
				channels = append(channels, fmt.Sprint(p, " ", orig, " ", resp, " ", port))
				if cmd == "RETR" {
					files = append(files, fmt.Sprint(user, " ", arg, " ", bytes, " ", reply))
				}
				if want := bytes * 8e9 / dur; bps < want-1 || bps > want+1 {
					t.Errorf("%s %s: throughput %d b/s, %d bytes in %d ns make %d", cmd, arg, bps, bytes, dur, want)
				}
			}
			var zch, zfiles []string
			f, err := os.Open(filepath.Join(corpusDir(t, "zeek"), "baseline", "ftp-"+name, "ftp.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var cols []string
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
				switch v["command"] {
				case "PASV", "EPSV", "PORT", "EPRT":
					zch = append(zch, fmt.Sprint(v["data_channel.passive"], " ", v["data_channel.orig_h"], " ", v["data_channel.resp_h"], " ", v["data_channel.resp_p"]))
				case "RETR":
					zfiles = append(zfiles, fmt.Sprint(v["user"], " ", path.Base(v["arg"]), " ", v["file_size"], " ", v["reply_code"]))
				}
			}
			if fmt.Sprint(channels) != fmt.Sprint(zch) || fmt.Sprint(files) != fmt.Sprint(zfiles) {
				t.Errorf("ftp_transfers\n%q\n%q\nZeek ftp.log\n%q\n%q", channels, files, zch, zfiles)
			}
		})
	}
}
