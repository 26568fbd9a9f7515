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

func TestSampleRangeAttribute(t *testing.T) {
	const doc = `<tmon>
  <collector name="c" address="127.0.0.1:1"/>
  <probe name="p" id="1"><interface name="i" hop="A"/><interface name="j" hop="B"/></probe>
  <flowClass name="k">
    <oneWay hops="A B" %s/>
  </flowClass>
</tmon>`
	parse := func(attr string) (*Config, error) {
		return Parse(strings.NewReader(strings.Replace(doc, "%s", attr, 1)), "t.xml")
	}
	c, err := parse(`sampleRange="0x10000000-0x1fffffff"`)
	if err != nil {
		t.Fatal(err)
	}
	ow := c.Classes[0].OneWay
	if !ow.SampleRange || ow.SampleLo != 0x10000000 || ow.SampleHi != 0x1fffffff || ow.Sample != 16 {
		t.Fatalf("range %v %#x-%#x sample %d, want 0x10000000-0x1fffffff, 1/16", ow.SampleRange, ow.SampleLo, ow.SampleHi, ow.Sample)
	}
	if lo, hi := ow.HashRange(); lo != 0x10000000 || hi != 0x1fffffff {
		t.Errorf("HashRange %#x-%#x", lo, hi)
	}
	var b strings.Builder
	if err := c.WriteXML(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `sampleRange="0x10000000-0x1fffffff"`) || strings.Contains(b.String(), `sample="`) {
		t.Errorf("encoded config lacks the range or has a ratio:\n%s", b.String())
	}
	c2, err := Parse(strings.NewReader(b.String()), "re.xml")
	if err != nil {
		t.Fatal(err)
	}
	if ow2 := c2.Classes[0].OneWay; !ow2.SampleRange || ow2.SampleLo != ow.SampleLo || ow2.SampleHi != ow.SampleHi || ow2.Sample != 16 {
		t.Errorf("round trip: %+v", ow2)
	}
	// The whole range is every packet.
	if c, err := parse(`sampleRange="0-0xffffffff"`); err != nil || c.Classes[0].OneWay.Sample != 1 {
		t.Errorf("whole range: %v", err)
	}
	// The 1/N form selects the range starting at 0.
	if c, err := parse(`sample="1/16"`); err != nil {
		t.Fatal(err)
	} else if lo, hi := c.Classes[0].OneWay.HashRange(); lo != 0 || hi != 0x0fffffff {
		t.Errorf("1/16: HashRange %#x-%#x", lo, hi)
	}
	for _, bad := range []struct{ attr, want string }{
		{`sampleRange="0x0-0xf" sample="1/16"`, "exclusive"},
		{`sampleRange="0x0-0x2"`, "power of two"},
		{`sampleRange="0x20-0x1f"`, "empty"},
		{`sampleRange="0x0"`, "LO-HI"},
		{`sampleRange="0x0-0x1ffffffff"`, "32-bit"},
		{`sampleRange="0x0-0xff"`, "at least"}, // 1 in 2^24: sparser than MaxSample
	} {
		_, err := parse(bad.attr)
		if err == nil {
			t.Errorf("%s: no error", bad.attr)
			continue
		}
		// The message names the file, the line and the element.
		if msg := err.Error(); !strings.Contains(msg, "t.xml:5") || !strings.Contains(msg, "oneWay") || !strings.Contains(msg, bad.want) {
			t.Errorf("%s: error %q, want t.xml:5, oneWay and %q", bad.attr, msg, bad.want)
		}
	}
}
