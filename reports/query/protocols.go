package query

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tmon-project/tmon/hist"
)

// The protocol analyses' record tables (docs/loader.md): TCP connections
// (tcp_conns) and FTP transfers (ftp_transfers), a row per connection or
// transfer for the report's sortable tables.

// TCPConn is a TCP connection as the report shows it: its last row in the
// period (the final one, or the latest "open" one while it lasted).
type TCPConn struct {
	Collector, Class, Flow string
	Probe, Iface           string
	Conn                   int64
	Status, State          string
	First                  time.Time
	Duration               time.Duration
	Orig, Resp             string // address:port
	OPkts, OBytes          int64
	ORetrans, OOOO, OZW    int64
	RPkts, RBytes          int64
	RRetrans, ROOO, RZW    int64
	History                string
}

// Limit of the protocol tables: rows read from the database.
const protoLimit = 20000

// flowFilter is the WHERE part selecting the flows of s (table alias f).
func flowFilter(s Selection, args *[]any) string {
	w := ""
	if s.Collector != "" {
		w += " AND f.collector = ?"
		*args = append(*args, s.Collector)
	}
	if s.Class != "" {
		w += " AND f.class = ?"
		*args = append(*args, s.Class)
		if s.Flow != "" {
			w += " AND f.flow_key = ?"
			*args = append(*args, s.Flow)
		}
	}
	return w
}

// TCPConns returns the connections with a row in the period, one each
// (its latest row), longest first; truncated when the period held more
// rows than the table reads.
func (d *DB) TCPConns(ctx context.Context, s Selection) (out []TCPConn, truncated bool, err error) {
	args := []any{s.From.UnixNano(), s.To.UnixNano()}
	q := `SELECT f.collector, f.class, COALESCE(f.flow_key, ''), t.probe, t.iface, t.conn, t.status, t.conn_state, t.first_ns, t.duration_ns,
		t.orig_addr, t.orig_port, t.resp_addr, t.resp_port, t.orig_pkts, t.orig_bytes, t.orig_retrans, t.orig_ooo, t.orig_zero_win,
		t.resp_pkts, t.resp_bytes, t.resp_retrans, t.resp_ooo, t.resp_zero_win, COALESCE(t.history, ''), t.start_ns
		FROM tcp_conns t JOIN flows f ON f.id = t.flow_id WHERE t.start_ns >= ? AND t.start_ns < ?` + flowFilter(s, &args) +
		fmt.Sprintf(" ORDER BY t.start_ns DESC LIMIT %d", protoLimit+1)
	type key struct {
		collector, probe string
		conn, first      int64
	}
	latest := map[key]int{}
	n := 0
	err = d.rows(ctx, q, args, func(r *sql.Rows) error {
		if n++; n > protoLimit {
			truncated = true
			return nil
		}
		var c TCPConn
		var first, dur, start, op, rp int64
		var oa, ra string
		if err := r.Scan(&c.Collector, &c.Class, &c.Flow, &c.Probe, &c.Iface, &c.Conn, &c.Status, &c.State, &first, &dur,
			&oa, &op, &ra, &rp, &c.OPkts, &c.OBytes, &c.ORetrans, &c.OOOO, &c.OZW,
			&c.RPkts, &c.RBytes, &c.RRetrans, &c.ROOO, &c.RZW, &c.History, &start); err != nil {
			return err
		}
		c.First, c.Duration = time.Unix(0, first).UTC(), time.Duration(dur)
		c.Orig, c.Resp = hostPort(oa, op), hostPort(ra, rp)
		k := key{c.Collector, c.Probe, c.Conn, first}
		if i, ok := latest[k]; ok {
			// Rows come newest first: the one kept is the final row,
			// else the latest open one.
			if out[i].Status == "open" && c.Status != "open" {
				out[i] = c
			}
			return nil
		}
		latest[k] = len(out)
		out = append(out, c)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Duration > out[j].Duration })
	return out, truncated, err
}

func hostPort(a string, p int64) string {
	if len(a) > 0 && a[0] != '[' && strings.Contains(a, ":") {
		return fmt.Sprintf("[%s]:%d", a, p)
	}
	return fmt.Sprintf("%s:%d", a, p)
}

// FTPTransfer is a listing or file transfer as the report shows it.
type FTPTransfer struct {
	Collector, Class, Flow string
	Probe                  string
	Start                  time.Time
	Duration               time.Duration
	Command, Arg, User     string
	Reply                  int64 // 0: none
	Bytes                  int64
	Throughput             int64 // bits/s; -1 unknown
	Passive                string
	Client, Server         string
	Data                   string // data connection, "" without one
}

// FTPTransfers returns the transfers whose final reply falls in the
// period, newest first.
func (d *DB) FTPTransfers(ctx context.Context, s Selection) (out []FTPTransfer, truncated bool, err error) {
	args := []any{s.From.UnixNano(), s.To.UnixNano()}
	q := `SELECT f.collector, f.class, COALESCE(f.flow_key, ''), t.probe, t.cmd_ns, t.duration_ns, t.command, t.arg, COALESCE(t.user, ''),
		COALESCE(t.reply_code, 0), t.bytes, COALESCE(t.throughput_bps, -1), COALESCE(t.passive, -1),
		t.client_addr, t.client_port, t.server_addr, t.server_port,
		COALESCE(t.data_orig_addr, ''), COALESCE(t.data_orig_port, 0), COALESCE(t.data_resp_addr, ''), COALESCE(t.data_resp_port, 0)
		FROM ftp_transfers t JOIN flows f ON f.id = t.flow_id WHERE t.start_ns >= ? AND t.start_ns < ?` + flowFilter(s, &args) +
		fmt.Sprintf(" ORDER BY t.cmd_ns DESC LIMIT %d", protoLimit+1)
	n := 0
	err = d.rows(ctx, q, args, func(r *sql.Rows) error {
		if n++; n > protoLimit {
			truncated = true
			return nil
		}
		var x FTPTransfer
		var start, dur, passive, cp, sp, op, rp int64
		var ca, sa, oa, ra string
		if err := r.Scan(&x.Collector, &x.Class, &x.Flow, &x.Probe, &start, &dur, &x.Command, &x.Arg, &x.User,
			&x.Reply, &x.Bytes, &x.Throughput, &passive, &ca, &cp, &sa, &sp, &oa, &op, &ra, &rp); err != nil {
			return err
		}
		x.Start, x.Duration = time.Unix(0, start).UTC(), time.Duration(dur)
		x.Client, x.Server = hostPort(ca, cp), hostPort(sa, sp)
		switch passive {
		case 1:
			x.Passive = "passive"
		case 0:
			x.Passive = "active"
		}
		if oa != "" {
			x.Data = hostPort(oa, op) + " → " + hostPort(ra, rp)
		}
		out = append(out, x)
		return nil
	})
	return out, truncated, err
}

// RTTStep is the round trips of one kind over one resolution step, every
// selected flow merged: counts add, the histograms merge bucket by bucket.
type RTTStep struct {
	T                 time.Time
	Count, Unanswered int64
	Min, Max          int64
	Hist              hist.Hist
}

// RTTKind is the round trips of one kind over the period: its steps and
// their merge.
type RTTKind struct {
	Kind  string
	Steps []*RTTStep
	Total RTTStep
}

// RTT returns the round trips of the selected flows per kind, at the
// period's resolution (rtt_stats_1m, _1h or _1d).
func (d *DB) RTT(ctx context.Context, s Selection) ([]*RTTKind, error) {
	lv := s.Resolution()
	args := []any{s.From.UnixNano(), s.To.UnixNano()}
	q := `SELECT t.kind, t.start_ns, t.count, t.unanswered, t.min_ns, t.max_ns, COALESCE(t.rtt_hist, '')
		FROM rtt_stats_` + lv.Suffix + ` t JOIN flows f ON f.id = t.flow_id WHERE t.start_ns >= ? AND t.start_ns < ?` + flowFilter(s, &args) +
		" ORDER BY t.kind, t.start_ns"
	var out []*RTTKind
	err := d.rows(ctx, q, args, func(r *sql.Rows) error {
		var kind, h string
		var start, count, unans int64
		var mn, mx sql.NullInt64
		if err := r.Scan(&kind, &start, &count, &unans, &mn, &mx, &h); err != nil {
			return err
		}
		if len(out) == 0 || out[len(out)-1].Kind != kind {
			out = append(out, &RTTKind{Kind: kind})
		}
		k := out[len(out)-1]
		t := time.Unix(0, start).UTC()
		if n := len(k.Steps); n == 0 || !k.Steps[n-1].T.Equal(t) {
			k.Steps = append(k.Steps, &RTTStep{T: t})
		}
		for _, st := range []*RTTStep{k.Steps[len(k.Steps)-1], &k.Total} {
			if mn.Valid && count > 0 {
				if st.Count == 0 || mn.Int64 < st.Min {
					st.Min = mn.Int64
				}
				st.Max = max(st.Max, mx.Int64)
			}
			st.Count += count
			st.Unanswered += unans
			if h != "" {
				if err := st.Hist.AddSparse(h); err != nil {
					return fmt.Errorf("rtt_hist: %w", err)
				}
			}
		}
		return nil
	})
	for _, k := range out {
		for _, st := range append(k.Steps, &k.Total) {
			if st.Count > 0 {
				st.Hist.SetRange(st.Min, st.Max)
			}
		}
	}
	return out, err
}
