package web

import (
	"context"
	"fmt"

	"github.com/tmon-project/tmon/reports/query"
)

// The protocol analyses' pages: TCP connections and FTP transfers as
// sortable tables (a row per connection or transfer) with a few totals.
// They plug into the server through protoPages (server.go looks a path up
// there when it is none of its own).

func init() {
	Pages = append(Pages, struct{ Path, Name string }{"/rtt", "Round trips"},
		struct{ Path, Name string }{"/tcp", "TCP connections"}, struct{ Path, Name string }{"/ftp", "FTP transfers"})
	protoPages["/rtt"] = protoPage{"rtt", "Round trips", (*Server).rttPage}
	protoPages["/tcp"] = protoPage{"tcp", "TCP connections", (*Server).tcpPage}
	protoPages["/ftp"] = protoPage{"ftp", "FTP transfers", (*Server).ftpPage}
	funcs["bytesf"] = humanBytes
	funcs["bps"] = func(v int64) string {
		if v < 0 {
			return "–"
		}
		return humanRate(v)
	}
}

type protoPage struct {
	template, title string
	fill            func(*Server, context.Context, *page) error
}

// protoPages are pages served besides the server's own, by path.
var protoPages = map[string]protoPage{}

// tcpData is the TCP connections page.
type tcpData struct {
	Conns       []query.TCPConn
	Truncated   bool
	Open, Ended int
	Bytes       int64
	Retrans     int64
	States      map[string]int
}

func (s *Server) tcpPage(ctx context.Context, p *page) error {
	cs, trunc, err := s.db.TCPConns(ctx, p.Sel)
	if err != nil {
		return err
	}
	d := &tcpData{Conns: cs, Truncated: trunc, States: map[string]int{}}
	for _, c := range cs {
		if c.Status == "open" {
			d.Open++
		} else {
			d.Ended++
		}
		d.Bytes += c.OBytes + c.RBytes
		d.Retrans += c.ORetrans + c.RRetrans
		d.States[c.State]++
	}
	p.Data = d
	return nil
}

// ftpData is the FTP transfers page.
type ftpData struct {
	Transfers       []query.FTPTransfer
	Truncated       bool
	Bytes           int64
	Failed, NoReply int
	Listings, Files int
}

func (s *Server) ftpPage(ctx context.Context, p *page) error {
	xs, trunc, err := s.db.FTPTransfers(ctx, p.Sel)
	if err != nil {
		return err
	}
	d := &ftpData{Transfers: xs, Truncated: trunc}
	for _, x := range xs {
		d.Bytes += x.Bytes
		switch {
		case x.Reply == 0:
			d.NoReply++
		case x.Reply >= 400:
			d.Failed++
		}
		switch x.Command {
		case "LIST", "NLST", "MLSD":
			d.Listings++
		default:
			d.Files++
		}
	}
	p.Data = d
	return nil
}

func humanBytes(v int64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(v)/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(v)/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(v)/(1<<10))
	}
	return fmt.Sprintf("%d B", v)
}

func humanRate(v int64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2f Gb/s", float64(v)/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2f Mb/s", float64(v)/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f kb/s", float64(v)/1e3)
	}
	return fmt.Sprintf("%d b/s", v)
}

// rttKind is a kind of transaction on the round-trips page.
type rttKind struct {
	Kind                    string
	Count, Unanswered       int64
	P50, P90, P99, Min, Max string // ms
	Chart                   string
}

// rttPage: per kind of transaction, the round-trip percentiles over time
// (every selected flow merged per step) and over the period.
func (s *Server) rttPage(ctx context.Context, p *page) error {
	kinds, err := s.db.RTT(ctx, p.Sel)
	if err != nil {
		return err
	}
	var out []rttKind
	for _, k := range kinds {
		r := rttKind{Kind: k.Kind, Count: k.Total.Count, Unanswered: k.Total.Unanswered, P50: "–", P90: "–", P99: "–", Min: "–", Max: "–"}
		if k.Total.Count > 0 {
			qs := []*string{&r.P50, &r.P90, &r.P99}
			for i, q := range []float64{0.5, 0.9, 0.99} {
				v, _ := k.Total.Hist.Quantile(q)
				*qs[i] = fmt.Sprintf("%.3f", float64(v)/1e6)
			}
			r.Min, r.Max = fmt.Sprintf("%.3f", float64(k.Total.Min)/1e6), fmt.Sprintf("%.3f", float64(k.Total.Max)/1e6)
		}
		r.Chart = p.chart(rttChart(k))
		out = append(out, r)
	}
	p.Data = out
	return nil
}

// rttChart: p50/p90/p99/max of one kind's round trips per step, in ms.
func rttChart(k *query.RTTKind) Chart {
	c := Chart{ID: "rtt-" + k.Kind, Title: "Round trips: " + k.Kind, Kind: "time", YLabel: "ms"}
	names := []string{"p50", "p90", "p99", "max"}
	colors := []string{"#1f77b4", "#2ca02c", "#ff7f0e", "#d62728"}
	data := make([][]*float64, 4)
	for _, st := range k.Steps {
		c.X = append(c.X, unix(st.T))
		for i, q := range []float64{0.5, 0.9, 0.99} {
			if st.Count == 0 {
				data[i] = append(data[i], nil)
				continue
			}
			v, _ := st.Hist.Quantile(q)
			data[i] = append(data[i], ms(v))
		}
		if st.Count > 0 {
			data[3] = append(data[3], ms(st.Max))
		} else {
			data[3] = append(data[3], nil)
		}
	}
	for i := range names {
		c.Series = append(c.Series, Series{Label: names[i], Color: colors[i], Data: data[i]})
	}
	c.Bands = [][2]int{{3, 2}, {2, 1}, {1, 0}}
	return c
}
