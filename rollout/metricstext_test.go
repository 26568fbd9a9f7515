package rollout

import (
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestFirstLabelsAgreesWithExpfmt checks the status's own reading of the
// metrics text against the Prometheus client's parser, on a text shaped
// as a daemon's endpoint writes it (HELP and TYPE lines, several samples
// of a family, labels with escaped quotes, backslashes and newlines, a
// trailing comma, a timestamp), and that broken label syntax is an error.
func TestFirstLabelsAgreesWithExpfmt(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 12
# HELP tmon_probe_info The probe, its configuration version.
# TYPE tmon_probe_info gauge
tmon_probe_info{config_version="v2 \"quoted\" a\\b",probe="pa"} 1
tmon_probe_info{config_version="later",probe="pb"} 1
# TYPE tmon_probe_config_held_info gauge
tmon_probe_config_held_info{config_version="v3\nnext",valid_from="2026-12-08T00:00:00Z",} 1 1765152000000
tmon_probe_sightings_total{class="x"} 4.2e+06
`
	families := []string{"tmon_probe_info", "tmon_probe_config_held_info", "tmon_probe_sightings_total", "tmon_collector_info"}
	got, err := firstLabels(strings.NewReader(text), families...)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range families {
		f, ok := fams[name]
		if _, have := got[name]; have != ok {
			t.Errorf("%s: present %v, expfmt %v", name, have, ok)
			continue
		}
		if !ok {
			continue
		}
		want := map[string]string{}
		for _, l := range f.GetMetric()[0].GetLabel() {
			want[l.GetName()] = l.GetValue()
		}
		if len(got[name]) != len(want) {
			t.Errorf("%s: labels %q, expfmt %q", name, got[name], want)
		}
		for k, v := range want {
			if got[name][k] != v {
				t.Errorf("%s: label %s = %q, expfmt %q", name, k, got[name][k], v)
			}
		}
	}
	if got["tmon_probe_info"]["config_version"] != "v2 \"quoted\" a\\b" {
		t.Errorf("escapes: %q", got["tmon_probe_info"]["config_version"])
	}

	for _, bad := range []string{
		`tmon_probe_info{config_version="v1} 1`,
		`tmon_probe_info{config_version=v1} 1`,
		`tmon_probe_info{config_version} 1`,
		`tmon_probe_info{config_version="v\x"} 1`,
	} {
		if _, err := firstLabels(strings.NewReader(bad+"\n"), "tmon_probe_info"); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
