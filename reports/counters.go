package reports

import (
	"fmt"
	"io"
	"sort"
)

// Counted is what the counters analysis saw of one class at one probe
// interface over the whole spool (flow_counters, docs/spool.md).
type Counted struct {
	Class, Probe, Iface                   string
	Flows                                 map[string]bool
	Packets, Bytes, Fragments, ICMPErrors uint64
}

// readCounted sums the flow_counters rows per class, probe and interface.
func readCounted(dir string) ([]*Counted, error) {
	m := map[[3]string]*Counted{}
	err := eachRow(dir, "flow_counters", func(r map[string]string) error {
		k := [3]string{r["class"], r["probe"], r["iface"]}
		c := m[k]
		if c == nil {
			c = &Counted{Class: k[0], Probe: k[1], Iface: k[2], Flows: map[string]bool{}}
			m[k] = c
		}
		c.Flows[r["flow"]] = true
		for col, dst := range map[string]*uint64{"packets": &c.Packets, "bytes": &c.Bytes, "fragments": &c.Fragments, "icmp_errors": &c.ICMPErrors} {
			v, err := uintCol(r, col)
			if err != nil {
				return err
			}
			*dst += v
		}
		return nil
	})
	out := make([]*Counted, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Class+"\x00"+a.Probe+"\x00"+a.Iface < b.Class+"\x00"+b.Probe+"\x00"+b.Iface
	})
	return out, err
}

func writeCounted(w io.Writer, cs []*Counted) {
	if len(cs) == 0 {
		return
	}
	fmt.Fprintf(w, "\ncounted (every class, per probe interface):\n")
	for _, c := range cs {
		fmt.Fprintf(w, "  class %-16s %s/%s: %d flow(s), %d packets, %d bytes, %d fragments, %d ICMP errors\n",
			c.Class, c.Probe, c.Iface, len(c.Flows), c.Packets, c.Bytes, c.Fragments, c.ICMPErrors)
	}
}
