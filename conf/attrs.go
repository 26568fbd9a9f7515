package conf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// attrs holds the attributes of one element, checked against its grammar.
type attrs struct {
	p    *parser
	n    *node
	vals map[string]string
}

// attrs checks the attributes of n against known and returns them.
func (p *parser) attrs(n *node, known ...string) attrs {
	a := attrs{p: p, n: n, vals: make(map[string]string, len(n.attrs))}
	for _, at := range n.attrs {
		name := at.Name.Local
		if at.Name.Space != "" {
			name = at.Name.Space + ":" + name
		}
		switch {
		case !slices.Contains(known, name):
			if len(known) == 0 {
				p.errf(n, "unknown attribute %q (none allowed)", name)
			} else {
				p.errf(n, "unknown attribute %q (known: %s)", name, strings.Join(known, ", "))
			}
		case a.has(name):
			p.errf(n, "attribute %q given twice", name)
		default:
			a.vals[name] = at.Value
		}
	}
	if n.textLine != 0 {
		p.addf(n.textLine, label(n), "unexpected text inside the element")
	}
	return a
}

func (a attrs) has(name string) bool { _, ok := a.vals[name]; return ok }

// required returns the attribute, reporting it when missing or empty.
func (a attrs) required(name string) (string, bool) {
	v, ok := a.vals[name]
	if !ok || strings.TrimSpace(v) == "" {
		a.p.errf(a.n, "missing attribute %q", name)
		return "", false
	}
	return v, true
}

// bad reports a bad attribute value.
func (a attrs) bad(name string, err error) {
	a.p.errf(a.n, "%s=%q: %w", name, a.vals[name], err)
}

// The setters below leave *dst unchanged (the default) when the attribute is
// absent, and report a value that does not parse.

func (a attrs) duration(name string, dst *time.Duration) {
	if v, ok := a.vals[name]; ok {
		d, err := parseDuration(v)
		if err != nil {
			a.bad(name, err)
			return
		}
		*dst = d
	}
}

func (a attrs) boolean(name string, dst *bool) {
	if v, ok := a.vals[name]; ok {
		b, err := parseBool(v)
		if err != nil {
			a.bad(name, err)
			return
		}
		*dst = b
	}
}

func (a attrs) integer(name string, dst *int) {
	if v, ok := a.vals[name]; ok {
		i, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			a.bad(name, fmt.Errorf("not an integer"))
			return
		}
		*dst = int(i)
	}
}

func (a attrs) float(name string, dst *float64) {
	if v, ok := a.vals[name]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			a.bad(name, fmt.Errorf("not a number"))
			return
		}
		*dst = f
	}
}
