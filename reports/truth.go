package reports

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/tmon-project/tmon/internal/gen"
)

// TruthCheck compares a spool with the ground truth of tmon-gen (what the
// traffic generator did to each packet it sent at hop A), figure by figure:
// every figure the summary prints is recomputed from the truth, in the
// collector's terms (docs/spool.md), and compared. It fails on missing,
// doubled or invented data, and when there is nothing to compare.
//
// Which packets: those of the truth whose flow is one of the spool's one-way
// flows (flows files: the key's fields, ip.src ip.dst l4.dport…, equal to
// the packet's; a later fragment has no ports, so its ports are 0). Packets
// of other flows are outside the one-way classes (the demo's IPv6 traffic)
// and are counted apart, with the generator's own totals over all traffic,
// so that its printout and the measured figures can be told apart.
type TruthCheck struct {
	Lines []CheckLine
	// Samples are the first packet-level differences, for the reader.
	Samples []string
	// Gen is the generator's own count over all traffic, per packet (its
	// printout: a fragment is a packet); Datagrams the same once fragments
	// are reassembled, as tmon measures (gen.Datagrams: a datagram is lost
	// when a fragment is, a duplicated fragment is no duplicate datagram);
	// InClass the datagrams of the one-way flows.
	Gen, Datagrams, InClass GenFigures
	Outside                 int // truth datagrams outside the one-way flows
}

// GenFigures are the generator's totals (cmd/tmon-gen's summary): lost,
// duplicated and reordered (RFC 4737 per 5-tuple over the whole capture,
// fragments counted as packets) packets, and clash pairs.
type GenFigures struct {
	Packets, Lost, Duplicated, Reordered, ClashPairs int
}

// CheckLine is one compared figure.
type CheckLine struct {
	Figure   string
	Truth    string // what the truth gives, in the collector's terms
	Measured string
	OK       bool
	Note     string // how the truth figure is derived, when not obvious
}

// OK reports whether every figure agrees (and there was something to check).
func (c *TruthCheck) OK() bool {
	if len(c.Lines) == 0 {
		return false
	}
	for _, l := range c.Lines {
		if !l.OK {
			return false
		}
	}
	return true
}

func (c *TruthCheck) line(figure string, truth, measured any, ok bool, note string) {
	c.Lines = append(c.Lines, CheckLine{figure, fmt.Sprint(truth), fmt.Sprint(measured), ok, note})
}

func (c *TruthCheck) eq(figure string, truth, measured any, note string) {
	c.line(figure, truth, measured, fmt.Sprint(truth) == fmt.Sprint(measured), note)
}

func (c *TruthCheck) sample(format string, args ...any) {
	if len(c.Samples) < 10 {
		c.Samples = append(c.Samples, fmt.Sprintf(format, args...))
	}
}

// flowMatcher maps a truth packet to the key of its one-way flow.
type flowMatcher struct {
	keys  []map[string]string // field → value, per flow
	texts []string
}

func newFlowMatcher(keys []string) (*flowMatcher, error) {
	m := &flowMatcher{}
	for _, k := range keys {
		f := map[string]string{}
		for _, kv := range strings.Fields(k) {
			name, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("flow key %q: %q is not field=value", k, kv)
			}
			switch name {
			case "ip.src", "ip.dst", "ip.proto", "l4.sport", "l4.dport":
			default:
				return nil, fmt.Errorf("flow key %q: field %s is not in the generator's record", k, name)
			}
			f[name] = v
		}
		m.keys = append(m.keys, f)
		m.texts = append(m.texts, k)
	}
	return m, nil
}

// match returns the index of r's flow, or -1.
func (m *flowMatcher) match(r *gen.TruthRow) int {
	sport, dport := r.SrcPort, r.DstPort
	if r.Frag > 0 {
		sport, dport = 0, 0 // a later fragment has no ports
	}
	vals := map[string]string{
		"ip.src": r.Src.String(), "ip.dst": r.Dst.String(), "ip.proto": strconv.Itoa(int(r.Proto)),
		"l4.sport": strconv.Itoa(int(sport)), "l4.dport": strconv.Itoa(int(dport)),
	}
	for i, k := range m.keys {
		ok := true
		for f, v := range k {
			if vals[f] != v {
				ok = false
				break
			}
		}
		if ok {
			return i
		}
	}
	return -1
}

// CompareTruth compares the spool s with the truth rows. Fragments are
// compared as the datagrams tmon reassembles (gen.Datagrams).
func CompareTruth(s *Summary, packets []gen.TruthRow) TruthCheck {
	var c TruthCheck
	for _, r := range packets {
		c.Gen.add(r)
	}
	rows := gen.Datagrams(packets)
	for _, r := range rows {
		c.Datagrams.add(r)
	}
	if len(s.Pairs) != 1 {
		c.line("hop pairs in the spool", 1, len(s.Pairs), false, "the truth is of a two-point path (A → B)")
		return c
	}
	p := s.Pairs[0]
	fm, err := newFlowMatcher(s.FlowKeys[p.Class])
	if err != nil {
		c.line("flows", "keys of the truth's fields", err, false, "")
		return c
	}
	type pkt struct{ a, b int64 }
	type fk struct {
		flow     int
		interval int64
	}
	perFlowInterval := map[fk][]pkt{}
	var delays []int64
	var clashPkts, dups, lost int
	var lostFound, lostMeasured, exact, wrong, calledLost, missing int
	var sum int64
	for i := range rows {
		r := &rows[i]
		fi := fm.match(r)
		if fi < 0 {
			c.Outside++
			if _, ok := s.Packets[r.TA]; ok {
				c.sample("seq %d outside the one-way flows, yet measured", r.Seq)
				wrong++
			}
			continue
		}
		c.InClass.add(*r)
		if r.Clash >= 0 {
			clashPkts++
		}
		d, measured := s.Packets[r.TA]
		if r.Lost {
			lost++
			if s.Lost[r.TA] {
				lostFound++
			} else {
				c.sample("seq %d lost, not reported lost", r.Seq)
			}
			if measured {
				lostMeasured++
				c.sample("seq %d lost, yet measured with delay %d", r.Seq, d)
			}
			continue
		}
		if r.DupTB != 0 {
			dups++
		}
		delays = append(delays, r.Delay)
		sum += r.Delay
		switch {
		case measured && d == r.Delay:
			exact++
		case measured:
			wrong++
			c.sample("seq %d measured %d ns, truth %d ns", r.Seq, d, r.Delay)
		case s.Lost[r.TA]:
			calledLost++
			c.sample("seq %d delivered (delay %d ns), reported lost", r.Seq, r.Delay)
		default:
			missing++
			c.sample("seq %d delivered (delay %d ns), nowhere in the spool", r.Seq, r.Delay)
		}
		if s.IntervalNs > 0 {
			k := fk{fi, floorDiv(r.TA, s.IntervalNs)}
			perFlowInterval[k] = append(perFlowInterval[k], pkt{r.TA, r.TB})
		}
	}
	n := len(delays)
	if n+lost == 0 {
		c.line("packets of the spool's flows in the truth", "> 0", 0, false, "nothing to compare: no flow of the truth is in the spool")
		return c
	}
	c.eq("delays measured exactly (ns), per packet", n, exact, "")
	c.eq("delivered packets measured wrong / reported lost / nowhere", "0 / 0 / 0", fmt.Sprintf("%d / %d / %d", wrong, calledLost, missing), "")
	c.eq("lost packets reported lost, per packet", lost, lostFound, "")
	c.eq("lost packets given a delay", 0, lostMeasured, "")
	c.eq("per-packet rows (owd_packet, lost owd_incomplete)", fmt.Sprintf("%d, %d", n, lost),
		fmt.Sprintf("%d, %d", s.PacketRows, s.LostRows), "each packet once: more rows would be data counted twice")
	c.eq("delays measured (owd_stats count)", n, p.Count, "")
	c.eq("lost (owd_stats)", lost, p.Lost, c.explain(c.Gen.Lost, c.Datagrams.Lost, c.InClass.Lost, "lost"))
	c.eq("missed", 0, p.Missed, "every packet at B was sent at A")
	c.eq("duplicates", dups, p.Duplicate, c.explain(c.Gen.Duplicated, c.Datagrams.Duplicated, c.InClass.Duplicated, "duplicated"))
	reordered := 0
	for _, ps := range perFlowInterval {
		slices.SortFunc(ps, func(x, y pkt) int { return cmp.Compare(x.b, y.b) })
		var maxA int64
		for i, q := range ps {
			if i > 0 && q.a < maxA {
				reordered++
			}
			maxA = max(maxA, q.a)
		}
	}
	c.eq("reordered", reordered, p.Reordered, fmt.Sprintf("generator: %d packets reordered per 5-tuple over the whole capture, fragments as packets, all traffic; the collector's terms: reassembled datagrams of the one-way flows, per flow instance and per interval (cut at interval boundaries, docs/spool.md), in arrival order at B: %d",
		c.Gen.Reordered, reordered))
	c.eq("signature clashes", clashPkts/2, p.Clashes, "pairs of byte-identical packets the generator made")
	if n > 0 {
		slices.Sort(delays)
		c.eq("delay min / max / sum (ns)", fmt.Sprintf("%d / %d / %d", delays[0], delays[n-1], sum),
			fmt.Sprintf("%d / %d / %d", p.Min, p.Max, int64(p.SumNs)), "")
	}
	// Histogram bins over the configured slices.
	if len(p.Slices) > 0 || n > 0 {
		var want, got []string
		binned := 0
		for _, sl := range p.Slices {
			if !sl.Seen {
				continue
			}
			k := 0
			for _, d := range delays {
				if (!sl.HasLo || d >= sl.Lo) && (!sl.HasHi || d < sl.Hi) {
					k++
				}
			}
			binned += k
			want = append(want, strconv.Itoa(k))
			got = append(got, strconv.FormatUint(sl.Count, 10))
		}
		c.eq("histogram bins (non-empty slices of the spool)", strings.Join(want, " "), strings.Join(got, " "), "")
		c.eq("delays in the histogram", n, binned, "every delay in one slice: a bin the spool lacks would lose some")
	}
	if m := p.M; m != nil && n > 0 {
		c.eq("delays in the merged delay histogram (owd_metrics)", n, m.Delay.Count(), "")
		for _, q := range quantileLabels {
			exactQ, _ := Percentile(delays, q.q)
			v, e := m.Delay.Quantile(q.q)
			c.line("delay "+q.label+" within its bound", fmt.Sprintf("%d", exactQ), fmt.Sprintf("%d ± %d", v, e),
				abs64(v-exactQ) <= e, "exact nearest-rank quantile of the truth's delays")
		}
		c.eq("duplicates, reordered (owd_metrics)", fmt.Sprintf("%d, %d", dups, reordered), fmt.Sprintf("%d, %d", m.Duplicate, m.Reordered), "")
		c.eq("delays, lost (owd_metrics)", fmt.Sprintf("%d, %d", n, lost), fmt.Sprintf("%d, %d", m.Count, m.Lost), "")
	}
	return c
}

func (g *GenFigures) add(r gen.TruthRow) {
	g.Packets++
	if r.Lost {
		g.Lost++
	}
	if r.DupTB != 0 {
		g.Duplicated++
	}
	if r.Reordered {
		g.Reordered++
	}
	if r.Clash >= 0 {
		g.ClashPairs++ // halved when printed
	}
}

// explain relates the generator's total to the figure of the one-way flows.
func (c *TruthCheck) explain(pkts, dgrams, in int, what string) string {
	return fmt.Sprintf("generator: %d packets %s in all traffic; %d datagrams once fragments are reassembled; %d of them outside the one-way flows, %d in them",
		pkts, what, dgrams, dgrams-in, in)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// WriteText prints what was checked, figure by figure.
func (c *TruthCheck) WriteText(w io.Writer) {
	fmt.Fprintf(w, "\nground truth (the generator's record of every packet): checked figure by figure\n")
	fmt.Fprintf(w, "  generator, all traffic: %d packets, %d lost, %d duplicated, %d reordered, %d clash pairs\n",
		c.Gen.Packets, c.Gen.Lost, c.Gen.Duplicated, c.Gen.Reordered, c.Gen.ClashPairs/2)
	fmt.Fprintf(w, "  reassembled into datagrams (as tmon measures): %d, %d lost, %d duplicated\n", c.Datagrams.Packets, c.Datagrams.Lost, c.Datagrams.Duplicated)
	fmt.Fprintf(w, "  of which in the spool's one-way flows: %d datagrams (%d outside: not measured by definition)\n", c.InClass.Packets, c.Outside)
	for _, l := range c.Lines {
		mark := "ok      "
		if !l.OK {
			mark = "MISMATCH"
		}
		fmt.Fprintf(w, "  %s %-52s truth %-28s measured %s\n", mark, l.Figure, l.Truth, l.Measured)
		if l.Note != "" {
			fmt.Fprintf(w, "           (%s)\n", l.Note)
		}
	}
	for _, s := range c.Samples {
		fmt.Fprintf(w, "  e.g. %s\n", s)
	}
	if c.OK() {
		fmt.Fprintf(w, "  => all %d figures match the ground truth\n", len(c.Lines))
	} else {
		fmt.Fprintln(w, "  => MISMATCH with the ground truth")
	}
}
