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
	Pages = append(Pages, struct{ Path, Name string }{"/tcp", "TCP connections"}, struct{ Path, Name string }{"/ftp", "FTP transfers"})
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
