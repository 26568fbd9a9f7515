package conf

import (
	"strings"
	"testing"
)

func TestParseSample(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"1", 1, true}, {"1/1", 1, true}, {"1/16", 16, true}, {" 1/256 ", 256, true},
		{"1/0", 0, false}, {"2/16", 0, false}, {"16", 0, false}, {"1/x", 0, false}, {"0.5", 0, false},
	} {
		got, err := parseSample(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSample(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestSampleAttribute(t *testing.T) {
	const doc = `<tmon>
  <collector name="c" address="127.0.0.1:1"/>
  <probe name="p" id="1"><interface name="i" hop="A"/><interface name="j" hop="B"/></probe>
  <flowClass name="k"><oneWay hops="A B" sample="%s"/></flowClass>
</tmon>`
	c, err := Parse(strings.NewReader(strings.Replace(doc, "%s", "1/16", 1)), "t.xml")
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Classes[0].OneWay.Sample; n != 16 {
		t.Fatalf("Sample %d, want 16", n)
	}
	// The encoder writes it back.
	var b strings.Builder
	if err := c.WriteXML(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `sample="1/16"`) {
		t.Errorf("encoded config lacks the sample:\n%s", b.String())
	}
	for _, bad := range []string{"1/0", "3/4", "1/2000000"} {
		if _, err := Parse(strings.NewReader(strings.Replace(doc, "%s", bad, 1)), "t.xml"); err == nil || !strings.Contains(err.Error(), "sample") {
			t.Errorf("sample=%q: error %v, want one naming sample", bad, err)
		}
	}
}
