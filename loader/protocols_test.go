package loader

import (
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/spool"
)

// tcp_conns and ftp_transfers (docs/spool.md) written by the spool's own
// writer and loaded on SQLite and MariaDB: one row per spool line, every
// column as written, the empty fields of a transfer without a data
// connection (or a reply) NULL.
func TestProtocolTables(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		dir, w, t0 := ftpSpool(t)
		o, r := netip.MustParseAddrPort("[2001:db8::1]:50003"), netip.MustParseAddrPort("[2001:db8::2]:21")
		rows := []spool.TCPConnRow{
			{Start: t0.UnixNano(), Class: "ftp", Flow: 3, Probe: "pa", Iface: "a0", Conn: 7, Status: "open", State: "S1",
				First: t0.UnixNano() + 5, Duration: 1000, Orig: o, Resp: r, O: spool.TCPSide{Packets: 3, Bytes: 10}, R: spool.TCPSide{Packets: 2}, History: "ShAD"},
			{Start: t0.Add(time.Minute).UnixNano(), Class: "ftp", Flow: 3, Probe: "pa", Iface: "a0", Conn: 7, Status: "fin", State: "SF",
				First: t0.UnixNano() + 5, Duration: 61e9, Orig: o, Resp: r, O: spool.TCPSide{Packets: 9, Bytes: 180, Retrans: 1, OutOfOrder: 2, ZeroWindow: 3},
				R: spool.TCPSide{Packets: 8, Bytes: 3146, Retrans: 4, OutOfOrder: 5, ZeroWindow: 6}, History: "ShAdDfFa"},
		}
		for _, x := range rows {
			if err := w.WriteTCPConn(x); err != nil {
				t.Fatal(err)
			}
		}
		for _, x := range []spool.FTPRow{
			{Start: t0.UnixNano(), Class: "ftp", Flow: 3, Probe: "pa", Iface: "a0", Cmd: t0.UnixNano() + 100, End: t0.UnixNano() + 100 + 2e9,
				Command: "RETR", Arg: "dir/a b.txt", User: "anonymous", Reply: 226, Bytes: 1e6, Data: true,
				DataFirst: t0.UnixNano() + 200, DataLast: t0.UnixNano() + 1e9, Passive: true, Client: o, Server: r,
				DataOrig: netip.MustParseAddrPort("[2001:db8::1]:40000"), DataResp: netip.MustParseAddrPort("[2001:db8::2]:57086")},
			{Start: t0.UnixNano(), Class: "ftp", Flow: 3, Probe: "pa", Iface: "a0", Cmd: t0.UnixNano() + 300, End: t0.UnixNano() + 300,
				Command: "STOR", Arg: "x", Client: o, Server: r},
		} {
			if err := w.WriteFTP(x); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if st, _ := load(t, db, Config{Spools: []Spool{{"c1", dir}}}); st.Bad != 0 {
			t.Fatalf("bad lines: %+v", st)
		}
		h := db.open(t)
		got := query(t, h, `SELECT conn, status, conn_state, first_ns, duration_ns, orig_addr, orig_port, resp_addr, resp_port, orig_pkts, orig_bytes,
			orig_retrans, orig_ooo, orig_zero_win, resp_pkts, resp_bytes, resp_retrans, resp_ooo, resp_zero_win, history FROM tcp_conns`)
		want := []string{
			// query sorts the rows
			"7|fin|SF|" + itoa(t0.UnixNano()+5) + "|61000000000|2001:db8::1|50003|2001:db8::2|21|9|180|1|2|3|8|3146|4|5|6|ShAdDfFa",
			"7|open|S1|" + itoa(t0.UnixNano()+5) + "|1000|2001:db8::1|50003|2001:db8::2|21|3|10|0|0|0|2|0|0|0|0|ShAD",
		}
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("tcp_conns\n%q\nwant\n%q", got, want)
		}
		got = query(t, h, `SELECT command, arg, user, reply_code, bytes, throughput_bps, data_start_ns, data_duration_ns, passive,
			data_orig_addr, data_orig_port, data_resp_addr, data_resp_port, duration_ns FROM ftp_transfers ORDER BY cmd_ns`)
		want = []string{
			// 10⁶ bytes in 2 s: 4 Mb/s
			"RETR|dir/a b.txt|anonymous|226|1000000|4000000|" + itoa(t0.UnixNano()+200) + "|999999800|1|2001:db8::1|40000|2001:db8::2|57086|2000000000",
			"STOR|x|NULL|NULL|0|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|0",
		}
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("ftp_transfers\n%q\nwant\n%q", got, want)
		}
	})
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// An FTP transfer whose names are not UTF-8 is loaded, not refused: the
// file name (Latin-1) with its byte escaped, and a user name the probe cut
// inside a character at 64 bytes (pdu.MaxFTPUser) cut before that
// character, as its escape would not fit the column (docs/loader.md).
func TestFTPNamesNotUTF8(t *testing.T) {
	eachDB(t, func(t *testing.T, db testDB) {
		dir, w, t0 := ftpSpool(t)
		euros := strings.Repeat("€", 21) // 63 bytes
		o, r := netip.MustParseAddrPort("10.0.0.1:50003"), netip.MustParseAddrPort("10.0.0.2:21")
		x := spool.FTPRow{Start: t0.UnixNano(), Class: "ftp", Flow: 3, Probe: "pa", Iface: "a0", Cmd: t0.UnixNano() + 300, End: t0.UnixNano() + 300,
			Command: "RETR", Arg: "caf\xe9.txt", User: euros + "\xe2", Client: o, Server: r}
		if err := w.WriteFTP(x); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if st, _ := load(t, db, Config{Spools: []Spool{{"c1", dir}}}); st.Bad != 0 || st.Rows != 2 {
			t.Fatalf("stats %+v, want 2 rows (flow, transfer), no bad line", st)
		}
		got := query(t, db.open(t), `SELECT user, arg FROM ftp_transfers`)
		if want := euros + `|caf\xE9.txt`; len(got) != 1 || got[0] != want {
			t.Errorf("ftp_transfers user|arg = %q, want %q", got, want)
		}
	})
}

// ftpSpool returns a spool writer in a new directory c1 with flow 3 of
// class ftp defined at t0.
func ftpSpool(t *testing.T) (dir string, w *spool.Writer, t0 time.Time) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "c1")
	w, err := spool.New(dir, &conf.Config{Interval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if err := w.WriteFlow(t0, 3, "ftp", "ip.src=10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	return dir, w, t0
}
