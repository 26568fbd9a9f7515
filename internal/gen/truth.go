package gen

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// TruthHeader is the header line of truth.tsv (columns described in the
// package documentation).
const TruthHeader = "seq\tsrc\tdst\tproto\tsport\tdport\tfrag\tt_a_ns\tt_b_ns\tdelay_ns\tdup_t_b_ns\tclash\tip_len\tip_id\treordered"

// TruthRow is one packet sent at hop A and what became of it.
type TruthRow struct {
	Seq     int        // 0-based, in order of TA
	Src     netip.Addr // flow of the packet (of its datagram, for a fragment)
	Dst     netip.Addr
	Proto   uint8
	SrcPort uint16
	DstPort uint16
	Frag    int   // fragment index, -1 when the packet is not a fragment
	TA      int64 // capture time at A, ns since the Unix epoch
	Lost    bool  // never seen at B; then TB, Delay are 0
	TB      int64 // capture time at B
	Delay   int64 // TB − TA
	DupTB   int64 // capture time of the duplicate at B, 0 when none
	Clash   int   // clash group shared by two byte-identical packets, -1 when none
	IPLen   int   // IP total length (header included) of this packet
	IPID    int   // IPv4 identification, -1 for IPv6
	Frags   int   // Datagrams: fragments the datagram was sent as; 0 otherwise
	// Reordered: a packet of the same flow sent later reached B before it
	// (RFC 4737's definition, per flow; fragments count as packets).
	Reordered bool
}

func optInt(v int64, ok bool) string {
	if !ok {
		return ""
	}
	return strconv.FormatInt(v, 10)
}

func dashInt(v int) string {
	if v < 0 {
		return "-"
	}
	return strconv.Itoa(v)
}

// AppendTSV appends the row as one TSV line, newline included.
func (r *TruthRow) AppendTSV(b []byte) []byte {
	delay := "lost"
	if !r.Lost {
		delay = strconv.FormatInt(r.Delay, 10)
	}
	reo := "0"
	if r.Reordered {
		reo = "1"
	}
	cols := []string{
		strconv.Itoa(r.Seq), r.Src.String(), r.Dst.String(), strconv.Itoa(int(r.Proto)),
		strconv.Itoa(int(r.SrcPort)), strconv.Itoa(int(r.DstPort)), dashInt(r.Frag),
		strconv.FormatInt(r.TA, 10), optInt(r.TB, !r.Lost), delay, optInt(r.DupTB, r.DupTB != 0),
		dashInt(r.Clash), strconv.Itoa(r.IPLen), dashInt(r.IPID), reo,
	}
	b = append(b, strings.Join(cols, "\t")...)
	return append(b, '\n')
}

// WriteTruth writes the header and the rows.
func WriteTruth(w io.Writer, rows []TruthRow) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(TruthHeader + "\n")
	var line []byte
	for i := range rows {
		line = rows[i].AppendTSV(line[:0])
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadTruthFile reads a truth.tsv written by Generate.
func ReadTruthFile(path string) ([]TruthRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gen: read truth: %w", err)
	}
	defer f.Close()
	rows, err := ReadTruth(f)
	if err != nil {
		return nil, fmt.Errorf("gen: read truth %s: %w", path, err)
	}
	return rows, nil
}

// ReadTruth parses truth TSV. Errors name the line.
func ReadTruth(r io.Reader) ([]TruthRow, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("empty: want the header %q", TruthHeader)
	}
	if sc.Text() != TruthHeader {
		return nil, fmt.Errorf("line 1: header %q, want %q", sc.Text(), TruthHeader)
	}
	var rows []TruthRow
	for line := 2; sc.Scan(); line++ {
		row, err := parseTruthLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

func parseTruthLine(s string) (TruthRow, error) {
	var r TruthRow
	c := strings.Split(s, "\t")
	if len(c) != 15 {
		return r, fmt.Errorf("%d columns, want 15", len(c))
	}
	var err error
	field := func(i int, name string, parse func(string) error) {
		if err == nil {
			if e := parse(c[i]); e != nil {
				err = fmt.Errorf("column %s %q: %w", name, c[i], e)
			}
		}
	}
	integer := func(dst *int64, opt bool) func(string) error {
		return func(v string) (e error) {
			if opt && (v == "" || v == "-") {
				return nil
			}
			*dst, e = strconv.ParseInt(v, 10, 64)
			return e
		}
	}
	var seq, proto, sport, dport, frag, clash, iplen, ipid int64
	frag, clash, ipid = -1, -1, -1
	field(0, "seq", integer(&seq, false))
	field(1, "src", func(v string) (e error) { r.Src, e = netip.ParseAddr(v); return })
	field(2, "dst", func(v string) (e error) { r.Dst, e = netip.ParseAddr(v); return })
	field(3, "proto", integer(&proto, false))
	field(4, "sport", integer(&sport, false))
	field(5, "dport", integer(&dport, false))
	field(6, "frag", integer(&frag, true))
	field(7, "t_a_ns", integer(&r.TA, false))
	field(8, "t_b_ns", integer(&r.TB, true))
	field(9, "delay_ns", func(v string) error {
		if v == "lost" {
			r.Lost = true
			return nil
		}
		return integer(&r.Delay, false)(v)
	})
	field(10, "dup_t_b_ns", integer(&r.DupTB, true))
	field(11, "clash", integer(&clash, true))
	field(12, "ip_len", integer(&iplen, false))
	field(13, "ip_id", integer(&ipid, true))
	field(14, "reordered", func(v string) error {
		switch v {
		case "0", "1":
			r.Reordered = v == "1"
			return nil
		}
		return fmt.Errorf("want 0 or 1")
	})
	if err != nil {
		return r, err
	}
	r.Seq, r.Proto, r.SrcPort, r.DstPort = int(seq), uint8(proto), uint16(sport), uint16(dport)
	r.Frag, r.Clash, r.IPLen, r.IPID = int(frag), int(clash), int(iplen), int(ipid)
	if r.Lost != (c[8] == "") {
		return r, fmt.Errorf("t_b_ns %q and delay_ns %q disagree", c[8], c[9])
	}
	return r, nil
}

// Datagrams returns the truth as an observer that reassembles IP fragments
// sees it (tmon's sieve does, package reassembly): the rows of the
// fragments of one datagram become one row, the others are unchanged. The
// datagram is complete at a hop when its last fragment is captured there:
// TA is the latest fragment time at A; it is lost when any fragment is
// lost, else TB is the latest fragment time at B; a duplicated fragment
// does not duplicate the datagram (the reassembler drops the copy), so
// DupTB is 0; IPLen is the whole datagram's (one IPv4 header, every
// fragment's payload). Frag is -1 and Frags the number of fragments.
// Rows stay in order of TA (a datagram where its last fragment was).
// Reordered is left false for datagrams: a caller that needs reordering
// computes it from the times.
func Datagrams(rows []TruthRow) []TruthRow {
	type dkey struct {
		src, dst netip.Addr
		proto    uint8
		id       int
	}
	out := make([]TruthRow, 0, len(rows))
	open := map[dkey]int{} // datagram → index in out
	for _, r := range rows {
		if r.Frag < 0 {
			out = append(out, r)
			continue
		}
		k := dkey{r.Src, r.Dst, r.Proto, r.IPID}
		i, ok := open[k]
		if r.Frag == 0 || !ok {
			d := r
			d.Frag, d.Frags, d.DupTB, d.Reordered = -1, 1, 0, false
			open[k] = len(out)
			out = append(out, d)
			continue
		}
		d := &out[i]
		d.Frags++
		d.TA = max(d.TA, r.TA)
		d.IPLen += r.IPLen - 20
		if r.Lost || d.Lost {
			d.Lost, d.TB, d.Delay = true, 0, 0
		} else {
			d.TB = max(d.TB, r.TB)
			d.Delay = d.TB - d.TA
		}
	}
	slices.SortStableFunc(out, func(a, b TruthRow) int { return cmp.Compare(a.TA, b.TA) })
	for i := range out {
		out[i].Seq = i
	}
	return out
}
