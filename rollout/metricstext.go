package rollout

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// The few figures `tmon config status` reads from a daemon's /metrics,
// parsed here rather than by the Prometheus client's expfmt: that would
// link the client and protobuf into every tmon command (their package
// initialisation costs about 4 ms of CPU at each start), for reading three
// labels. The text exposition format's sample line:
//
//	name{label="value",...} value [timestamp]
//
// with \\, \" and \n escaped in label values; lines starting with # are
// comments (HELP, TYPE). TestFirstLabelsAgreesWithExpfmt compares it with
// the client's parser.

// maxMetricsText bounds what is read of an answer: a daemon's metrics are
// a few hundred kilobytes at most.
const maxMetricsText = 16 << 20

// firstLabels returns, for each of families present in the text, the
// labels of its first sample.
func firstLabels(r io.Reader, families ...string) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string, len(families))
	sc := bufio.NewScanner(io.LimitReader(r, maxMetricsText))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ \t")
		if end < 0 {
			return nil, fmt.Errorf("metrics text line %d: no value", n)
		}
		name := line[:end]
		want := false
		for _, f := range families {
			want = want || f == name
		}
		if !want || out[name] != nil {
			continue
		}
		labels := map[string]string{}
		if line[end] == '{' {
			var err error
			if labels, err = parseLabels(line[end+1:]); err != nil {
				return nil, fmt.Errorf("metrics text line %d: %s: %w", n, name, err)
			}
		}
		out[name] = labels
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics text: %w", err)
	}
	return out, nil
}

// parseLabels parses `a="x",b="y"}` (what follows the brace).
func parseLabels(s string) (map[string]string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, "}") {
			return labels, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("label without a value")
		}
		name := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		if !strings.HasPrefix(s, `"`) {
			return nil, fmt.Errorf("label %s: value not quoted", name)
		}
		var v strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] != '\\' {
				v.WriteByte(s[i])
				continue
			}
			if i++; i == len(s) {
				break
			}
			switch s[i] {
			case 'n':
				v.WriteByte('\n')
			case '\\', '"':
				v.WriteByte(s[i])
			default:
				return nil, fmt.Errorf("label %s: escape \\%c", name, s[i])
			}
		}
		if i >= len(s) {
			return nil, fmt.Errorf("label %s: value not closed", name)
		}
		labels[name] = v.String()
		s = strings.TrimLeft(s[i+1:], " \t")
		s = strings.TrimPrefix(s, ",")
	}
}
