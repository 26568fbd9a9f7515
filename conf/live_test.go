package conf

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestLiveRules covers the live capture and clock attributes: <capture>,
// <clock>, and an interface's pair, fanout and cores.
func TestLiveRules(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"capture twice", body(`<capture/>`, `<capture/>`), `t.xml:6: <capture>: given twice (allowed once)`},
		{"blockSize", body(`<capture blockSize="1000"/>`), `t.xml:5: <capture>: blockSize="1000": want a multiple of 4096 bytes`},
		{"blocks", body(`<capture blocks="-1"/>`), `t.xml:5: <capture>: blocks="-1": want 1-65536`},
		{"retire", body(`<capture retire="100us"/>`), `t.xml:5: <capture>: retire="100µs": want at least 1ms`},
		{"timestamps", body(`<capture timestamps="gps"/>`), `t.xml:5: <capture>: timestamps="gps": want auto, kernel or hardware`},
		{"offload", body(`<capture offload="maybe"/>`), `t.xml:5: <capture>: offload="maybe": bad boolean`},
		{"capture attr", body(`<capture ring="1"/>`), `t.xml:5: <capture>: unknown attribute "ring"`},
		{"clock period", body(`<clock period="100ms"/>`), `t.xml:5: <clock>: period="100ms": want at least 1s`},
		{"clock budget", body(`<clock budget="-1ms"/>`), `t.xml:5: <clock>: budget="-1ms": want a positive duration`},
		{"clock server", body(`<clock servers="a/b"/>`), `t.xml:5: <clock>: servers: "a/b" is not a host or host:port`},
		{"clock assume", body(`<clock assumeSynced="yes"/>`), `t.xml:5: <clock>: assumeSynced="yes": bad boolean`},
		{"fanout", body(`<probe name="q" id="7">`, `<interface name="e0" fanout="65"/>`, `</probe>`), `t.xml:6: <interface name="e0">: fanout="65": want 1-64`},
		{"cores count", body(`<probe name="q" id="7">`, `<interface name="e0" fanout="2" cores="1"/>`, `</probe>`), `t.xml:6: <interface name="e0">: cores=[1]: want one CPU per fanout goroutine (2)`},
		{"cores syntax", body(`<probe name="q" id="7">`, `<interface name="e0" cores="1;2"/>`, `</probe>`), `t.xml:6: <interface name="e0">: cores="1;2": want comma-separated CPU numbers`},
		{"core number", body(`<probe name="q" id="7">`, `<interface name="e0" cores="-2"/>`, `</probe>`), `t.xml:6: <interface name="e0">: cores: -2 is not a CPU number`},
		{"pair self", body(`<probe name="q" id="7">`, `<interface name="e0" pair="e0"/>`, `</probe>`), `t.xml:6: <interface name="e0">: pair="e0": the other port of a tap`},
		{"pair taken", body(`<probe name="q" id="7">`, `<interface name="e0" pair="e1"/>`, `<interface name="e1"/>`, `</probe>`), `t.xml:6: <interface name="e0">: pair="e1": already captured by the interface on line 7`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseString(tc.doc)
			if err == nil {
				t.Fatal("no error")
			}
			wantError(t, err, tc.want)
		})
	}
}

func TestLiveParse(t *testing.T) {
	c, err := parseString(body(
		`<capture blockSize="2097152" blocks="8" retire="5ms" poll="50ms" timestamps="kernel" offload="false" reorder="20ms"/>`,
		`<clock servers="127.0.0.1:1123 ntp.example" period="16s" budget="500us" assumeSynced="true"/>`,
		`<probe name="q" id="7">`, `<interface name="tap0" pair="tap1" hop="A" fanout="2" cores="1,2"/>`, `</probe>`))
	if err != nil {
		t.Fatal(err)
	}
	want := Capture{BlockSize: 2 << 20, Blocks: 8, Retire: 5 * time.Millisecond, Poll: 50 * time.Millisecond,
		Timestamps: "kernel", Offload: false, Reorder: 20 * time.Millisecond, Line: 5}
	if c.Capture != want {
		t.Errorf("capture %+v, want %+v", c.Capture, want)
	}
	if !slices.Equal(c.Clock.Servers, []string{"127.0.0.1:1123", "ntp.example"}) || c.Clock.Period != 16*time.Second ||
		c.Clock.Budget != 500*time.Microsecond || !c.Clock.AssumeSynced {
		t.Errorf("clock %+v", c.Clock)
	}
	in := c.Probes[len(c.Probes)-1].Interfaces[0]
	if in.Pair != "tap1" || in.Fanout != 2 || !slices.Equal(in.Cores, []int{1, 2}) {
		t.Errorf("interface %+v", in)
	}
	// Defaults when absent, and a Config built in code resolves zeros.
	d, err := parseString(body())
	if err != nil {
		t.Fatal(err)
	}
	if dc := DefaultCapture(); d.Capture != dc || !reflect.DeepEqual(d.Clock, DefaultClock()) {
		t.Errorf("defaults %+v %+v", d.Capture, d.Clock)
	}
	if (Capture{Offload: true}).Resolved() != DefaultCapture() || (Clock{}).Resolved().Period != 64*time.Second {
		t.Error("Resolved does not fill the defaults")
	}
	// Round trip through WriteXML.
	var buf bytes.Buffer
	if err := c.WriteXML(&buf); err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(&buf, "again.xml")
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(c2.Clock.Servers, c.Clock.Servers) || c2.Probes[len(c2.Probes)-1].Interfaces[0].Pair != "tap1" ||
		c2.Capture.Reorder != c.Capture.Reorder || c2.Capture.Offload {
		t.Errorf("round trip: %+v %+v", c2.Capture, c2.Clock)
	}
}
