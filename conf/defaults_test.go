package conf

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/tmon-project/tmon/flow"
)

func TestDefaults(t *testing.T) {
	c, err := Load("testdata/good-minimal.xml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Interval != 60*time.Second || !c.ValidFrom.IsZero() || c.Version != "" {
		t.Errorf("root: interval %v, validFrom %v, version %q", c.Interval, c.ValidFrom, c.Version)
	}
	want := Transport{
		MaxPDUSize: 1400, MaxBuildTime: time.Second, MinGap: 20 * time.Microsecond, Window: 64,
		InitialTimeout: 500 * time.Millisecond, TimeoutIncrement: 500 * time.Millisecond,
		TimeoutMultiplier: 1, MaxRetries: 5, FinalTimeout: 10 * time.Minute,
		BreakBorder: 30 * time.Second, Heartbeat: 5 * time.Second,
	}
	if c.Transport != want {
		t.Errorf("transport %+v, want %+v", c.Transport, want)
	}
	if got := c.Probes[0].Core; got != -1 {
		t.Errorf("core %d, want -1", got)
	}
	col := c.Collectors[0]
	if col.Spool != "spool/c1" || col.Address != netip.MustParseAddrPort("127.0.0.1:47390") || col.Line != 4 {
		t.Errorf("collector %+v", col)
	}
}

func TestTransportPartialDefaults(t *testing.T) {
	c, err := parseString(body(`<transport maxPduSize="9000" heartbeat="1s"/>`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultTransport()
	want.MaxPDUSize, want.Heartbeat, want.Line = 9000, time.Second, 5
	if c.Transport != want {
		t.Errorf("transport %+v, want %+v", c.Transport, want)
	}
}

func TestOneWayDefaults(t *testing.T) {
	c, err := parseString(body(cls(`<oneWay hops="A B C" maxTransit="300ms"/>`)...))
	if err != nil {
		t.Fatal(err)
	}
	ow := c.Classes[0].OneWay
	if ow.MaxTransit != 300*time.Millisecond || ow.Timeout != 600*time.Millisecond ||
		ow.DupWindow != time.Millisecond || ow.Resolution != time.Nanosecond || ow.Size || ow.PerPacket || ow.Line != 6 {
		t.Errorf("one-way %+v", ow)
	}
	wantPairs := []HopPair{{From: 0, To: 2, Slices: []time.Duration{
		time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
		20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
		500 * time.Millisecond, time.Second}}}
	if !reflect.DeepEqual(ow.Pairs, wantPairs) {
		t.Errorf("pairs %+v, want %+v", ow.Pairs, wantPairs)
	}

	c, err = parseString(body(cls(`<oneWay hops="A B C">`, `<hopPair from="A" to="B"/>`, `</oneWay>`)...))
	if err != nil {
		t.Fatal(err)
	}
	ow = c.Classes[0].OneWay
	if ow.Timeout != 2*time.Second || len(ow.Pairs) != 1 || ow.Pairs[0].To != 1 || len(ow.Pairs[0].Slices) != 10 || ow.Pairs[0].Line != 7 {
		t.Errorf("one-way %+v", ow)
	}
}

func TestDefaultSlicesFresh(t *testing.T) {
	a := DefaultSlices()
	a[0] = 0
	if DefaultSlices()[0] != time.Millisecond {
		t.Fatal("DefaultSlices shares its slice")
	}
}

func TestValidFromUTC(t *testing.T) {
	c, err := parseString(doc(`<tmon validFrom="2026-03-01T12:00:00.5+01:00">`, head[1], head[2], `</tmon>`))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 3, 1, 11, 0, 0, 5e8, time.UTC)
	if !c.ValidFrom.Equal(want) || c.ValidFrom.Location() != time.UTC {
		t.Errorf("validFrom %v, want %v", c.ValidFrom, want)
	}
}

func TestFilterModel(t *testing.T) {
	c, err := parseString(body(filt(
		`<match field="ip.src" value="10.0.0.1, 2001:db8::/32" not="1"/>`,
		`<nor>`,
		`<match field="proto" value="tcp,20-30"/>`,
		`<nand><match field="sport" value="1"/><match field="dport" value="2"/></nand>`,
		`</nor>`,
	)...))
	if err != nil {
		t.Fatal(err)
	}
	got := stripLines(c).Classes[0].Filter
	want := Filter{Groups: []OrGroup{
		{Terms: []AndTerm{{Preds: []Pred{{Field: flow.Src, Not: true, Prefixes: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("2001:db8::/32")}}}}}},
		{Not: true, Terms: []AndTerm{
			{Preds: []Pred{{Field: flow.Proto, Ranges: []Range{{6, 6}, {20, 30}}}}},
			{Not: true, Preds: []Pred{{Field: flow.SrcPort, Ranges: []Range{{1, 1}}}, {Field: flow.DstPort, Ranges: []Range{{2, 2}}}}},
		}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("filter\n%+v\nwant\n%+v", got, want)
	}
	f := c.Classes[0].Filter
	if f.Line != 6 || f.Groups[0].Line != 7 || f.Groups[1].Line != 8 || f.Groups[1].Terms[1].Line != 10 || f.Groups[1].Terms[1].Preds[1].Line != 10 {
		t.Errorf("lines %+v", f)
	}
}

func TestLookups(t *testing.T) {
	c, err := Load("testdata/good-full.xml")
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := c.ProbeByName("relay-b"); !ok || i != 2 {
		t.Errorf("ProbeByName relay-b = %d, %v", i, ok)
	}
	if _, ok := c.ProbeByName("nope"); ok {
		t.Error("ProbeByName nope found")
	}
	if i, ok := c.ProbeByID(13); !ok || i != 3 {
		t.Errorf("ProbeByID 13 = %d, %v", i, ok)
	}
	if i, ok := c.CollectorByName("backup"); !ok || i != 1 {
		t.Errorf("CollectorByName backup = %d, %v", i, ok)
	}
	if _, ok := c.CollectorByName("ground"); ok {
		t.Error("CollectorByName ground found")
	}
	if i, ok := c.ClassByName("rest"); !ok || i != 2 {
		t.Errorf("ClassByName rest = %d, %v", i, ok)
	}
	// Operational settings: given, defaulted by <metrics/>, absent.
	if o := c.Collectors[0].Ops; o.Metrics != "192.0.2.10:9464" || o.LogLevel != "warn" || o.MetricsLine != 8 {
		t.Errorf("collector main ops %+v", o)
	}
	if o := c.Collectors[1].Ops; o.Metrics != "" || o.LogLevel != DefaultLogLevel {
		t.Errorf("collector backup ops %+v", o)
	}
	if o := c.Probes[0].Ops; o.Metrics != DefaultMetricsListen || o.LogLevel != "debug" {
		t.Errorf("probe ground ops %+v", o)
	}
	if c.Collectors[1].Spool != "spool/backup" || c.Collectors[0].Spool != "/var/spool/tmon" {
		t.Errorf("spools %q %q", c.Collectors[0].Spool, c.Collectors[1].Spool)
	}
	for _, tc := range []struct {
		probe, iface int
		hop          string
		index        int
		ok           bool
	}{
		{0, 0, "G", 0, true},
		{0, 1, "", 0, false},
		{1, 0, "R", 1, true},
		{2, 0, "R", 1, true}, // the alternative route
		{3, 0, "S", 2, true},
		{4, 0, "", 0, false},
		{-1, 0, "", 0, false},
		{0, 2, "", 0, false},
	} {
		if got := c.HopOf(tc.probe, tc.iface); got != tc.hop {
			t.Errorf("HopOf(%d, %d) = %q, want %q", tc.probe, tc.iface, got, tc.hop)
		}
		i, ok := c.Classes[0].HopIndex(tc.probe, tc.iface)
		if i != tc.index || ok != tc.ok {
			t.Errorf("HopIndex(%d, %d) = %d, %v, want %d, %v", tc.probe, tc.iface, i, ok, tc.index, tc.ok)
		}
	}
	if _, ok := c.Classes[1].HopIndex(0, 0); ok {
		t.Error("HopIndex on a class without one-way")
	}
	r := c.Classes[0].OneWay.Hops[1]
	if want := []ProbeInterface{{1, 0}, {2, 0}}; !reflect.DeepEqual(r.Interfaces, want) {
		t.Errorf("hop R interfaces %v, want %v", r.Interfaces, want)
	}
	if got, want := c.SignatureMask(), flow.Set(0).With(flow.DSCP).With(flow.ECN); got != want {
		t.Errorf("SignatureMask %v, want %v", got, want)
	}
}

// TestValidateInCode holds a Config built in code to the same rules.
func TestValidateInCode(t *testing.T) {
	c := &Config{
		Interval:   time.Minute,
		Transport:  DefaultTransport(),
		Probes:     []Probe{{Name: "p", ID: 1, Core: -1, Interfaces: []Interface{{Name: "a0", Hop: "A"}}}, {Name: "q", ID: 2, Core: -1, Interfaces: []Interface{{Name: "b0", Hop: "B"}}}},
		Collectors: []Collector{{Name: "c", Address: netip.MustParseAddrPort("127.0.0.1:1"), Spool: "s"}},
		Classes: []Class{{Name: "ow", OneWay: &OneWay{
			Hops:       []Hop{{Name: "A", Interfaces: []ProbeInterface{{0, 0}}}, {Name: "B", Interfaces: []ProbeInterface{{1, 0}}}},
			Pairs:      []HopPair{{From: 0, To: 1, Slices: DefaultSlices()}},
			MaxTransit: time.Second, Timeout: 2 * time.Second, Resolution: time.Nanosecond,
		}}},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Classes[0].OneWay.Hops[1].Interfaces = nil
	c.Classes[0].Index = 3
	c.Classes[0].Filter.Groups = []OrGroup{{Terms: []AndTerm{{Preds: []Pred{{Field: flow.TTL, Ranges: []Range{{1, 300}}}}}}}}
	err := c.Validate()
	wantError(t, err, `config: <oneWay hops="A B">: hop "B": Interfaces [], want [{1 0}]`)
	wantError(t, err, `config: <flowClass name="ow">: Index is 3, want its position 0`)
	wantError(t, err, `config: <match field="ip.ttl">: value 1-300: out of range (0-255)`)
}
