package conf

import (
	"fmt"
	"strings"
	"testing"
)

// cls wraps class content in a flow class: line 5 is <flowClass name="k">,
// the content starts on line 6.
func cls(lines ...string) []string {
	return append(append([]string{`<flowClass name="k">`}, lines...), `</flowClass>`)
}

// filt wraps filter content: line 6 is <filter>, the content starts on line 7.
func filt(lines ...string) []string {
	return cls(append(append([]string{`<filter>`}, lines...), `</filter>`)...)
}

// TestRules has one case per rule of the grammar and of validation, each
// asserting file, line, element and message of the error.
func TestRules(t *testing.T) {
	hops9 := `<probe name="p9" id="9">`
	for i := 0; i < 9; i++ {
		hops9 += fmt.Sprintf(`<interface name="i%d" hop="H%d"/>`, i, i)
	}
	hops9 += `</probe>`
	many := make([]string, 0, 65)
	for i := 0; i < 65; i++ {
		many = append(many, fmt.Sprintf(`<flowClass name="k%d"/>`, i))
	}
	edges := strings.Repeat("1ms ", 0)
	for i := 1; i <= 65; i++ {
		edges += fmt.Sprintf("%dms ", i)
	}

	tests := []struct {
		name string
		doc  string
		want string
	}{
		// Document and XML level.
		{"syntax", body(`<probe name="x" id="3">`, `</tmon>`), `t.xml:6: XML syntax: element <probe> closed by </tmon>`},
		{"empty file", "", `t.xml: no <tmon> element`},
		{"root name", `<config/>`, `t.xml:1: <config>: root element must be <tmon>`},
		{"namespace", `<tmon xmlns="urn:x"/>`, `t.xml:1: <{urn:x}tmon>: root element must be <tmon>`},
		{"second root", doc(`<tmon/>`, `<tmon/>`), `t.xml:2: <tmon>: second root element`},
		{"doctype", doc(`<!DOCTYPE tmon>`, `<tmon/>`), `t.xml:1: <!DOCTYPE> and other directives are not supported`},
		{"text outside", doc(`<tmon/>`, ``, `junk`), `t.xml:3: text outside the root element`},
		{"text inside", body(``, `  hello`), `t.xml:6: <tmon>: unexpected text inside the element`},
		{"unknown element", body(`<probes/>`), `t.xml:5: <probes>: unknown element in <tmon> (known: transport, limits, analyses, capture, clock, alarms, collector, probe, flowClass)`},
		{"unknown root attribute", doc(`<tmon colour="red">`, `</tmon>`), `t.xml:1: <tmon>: unknown attribute "colour" (known: version, validFrom, interval)`},
		{"duplicate attribute", body(`<collector name="c2" name="c3" address="127.0.0.1:1"/>`), `t.xml:5: <collector name="c2">: attribute "name" given twice`},
		{"missing attribute", body(`<collector name="c2"/>`), `t.xml:5: <collector name="c2">: missing attribute "address"`},
		{"empty attribute", body(`<collector name="" address="127.0.0.1:1"/>`), `t.xml:5: <collector>: missing attribute "name"`},

		// Root attributes.
		{"validFrom", doc(`<tmon validFrom="2026-01-01 00:00">`, `</tmon>`), `t.xml:1: <tmon>: validFrom="2026-01-01 00:00": want an RFC 3339 time`},
		{"interval no unit", doc(`<tmon interval="60">`, `</tmon>`), `t.xml:1: <tmon>: interval="60": duration "60" has no unit (write e.g. 60s or 60ms)`},
		{"interval syntax", doc(`<tmon interval="1 min">`, `</tmon>`), `t.xml:1: <tmon>: interval="1 min": bad duration "1 min"`},
		{"interval fraction", doc(`<tmon interval="1500ms">`, head[1], head[2], `</tmon>`), `t.xml:1: <tmon>: interval="1.5s": must be a whole number of seconds, at least 1s`},
		{"interval divides hour", doc(`<tmon interval="7s">`, head[1], head[2], `</tmon>`), `t.xml:1: <tmon>: interval="7s": must divide one hour evenly`},
		{"version text", doc(`<tmon version="a&#10;b">`, head[1], head[2], `</tmon>`), `t.xml:1: <tmon>: version="a\nb": no tabs, line breaks or control characters`},
		{"no collector", doc(`<tmon>`, head[2], `</tmon>`), `t.xml:1: <tmon>: no <collector>: give at least one`},
		{"no probe", doc(`<tmon>`, head[1], `</tmon>`), `t.xml:1: <tmon>: no <probe>: give at least one`},

		// Transport.
		{"transport twice", body(`<transport/>`, `<transport/>`), `t.xml:6: <transport>: given twice (allowed once)`},
		{"transport attribute", body(`<transport mtu="1500"/>`), `t.xml:5: <transport>: unknown attribute "mtu" (known: maxPduSize, maxBuildTime, minGap, initialTimeout, timeoutIncrement, timeoutMultiplier, maxRetries, finalTimeout, breakBorder, heartbeat, bandwidth, window, insecure)`},
		{"transport child", body(`<transport><x/></transport>`), `t.xml:5: <x>: unknown element in <transport> (it takes no elements)`},
		{"maxPduSize small", body(`<transport maxPduSize="255"/>`), `t.xml:5: <transport>: maxPduSize="255": must be between 256 and 65000`},
		{"maxPduSize large", body(`<transport maxPduSize="65001"/>`), `t.xml:5: <transport>: maxPduSize="65001": must be between 256 and 65000`},
		{"maxPduSize syntax", body(`<transport maxPduSize="1k"/>`), `t.xml:5: <transport>: maxPduSize="1k": not an integer`},
		{"maxBuildTime", body(`<transport maxBuildTime="0"/>`), `t.xml:5: <transport>: maxBuildTime="0s": must be between 1ms and 1h0m0s`},
		{"minGap zero", body(`<transport minGap="0s"/>`), `t.xml:5: <transport>: minGap="0s": must be between 1µs and 1s`},
		{"minGap over initialTimeout", body(`<transport minGap="1s" initialTimeout="500ms"/>`), `t.xml:5: <transport>: minGap="1s": must not exceed initialTimeout (500ms)`},
		{"initialTimeout", body(`<transport initialTimeout="-1s"/>`), `t.xml:5: <transport>: initialTimeout="-1s": must be between 1ms and 1h0m0s`},
		{"timeoutIncrement", body(`<transport timeoutIncrement="-1ms"/>`), `t.xml:5: <transport>: timeoutIncrement="-1ms": must be between 0s and 1h0m0s`},
		{"timeoutMultiplier", body(`<transport timeoutMultiplier="0.5"/>`), `t.xml:5: <transport>: timeoutMultiplier="0.5": must be between 1 and 10`},
		{"timeoutMultiplier NaN", body(`<transport timeoutMultiplier="NaN"/>`), `t.xml:5: <transport>: timeoutMultiplier="NaN": must be between 1 and 10`},
		{"timeoutMultiplier syntax", body(`<transport timeoutMultiplier="x2"/>`), `t.xml:5: <transport>: timeoutMultiplier="x2": not a number`},
		{"maxRetries", body(`<transport maxRetries="-1"/>`), `t.xml:5: <transport>: maxRetries="-1": must be between 0 and 1000`},
		{"finalTimeout", body(`<transport finalTimeout="100ms"/>`), `t.xml:5: <transport>: finalTimeout="100ms": must be at least initialTimeout (500ms)`},
		{"breakBorder", body(`<transport breakBorder="0s"/>`), `t.xml:5: <transport>: breakBorder="0s": must be between 1ms and 24h0m0s`},
		{"heartbeat zero", body(`<transport heartbeat="0s"/>`), `t.xml:5: <transport>: heartbeat="0s": must be between 1ms and 1h0m0s`},
		// Ranges (issue 10: 2562047h overflowed the collector's patience).
		{"finalTimeout huge", body(`<transport finalTimeout="2562047h"/>`), `t.xml:5: <transport>: finalTimeout="2562047h0m0s": must be between 1ms and 24h0m0s`},
		{"maxBuildTime huge", body(`<transport maxBuildTime="2h"/>`), `t.xml:5: <transport>: maxBuildTime="2h0m0s": must be between 1ms and 1h0m0s`},
		{"minGap huge", body(`<transport minGap="2s" initialTimeout="3s"/>`), `t.xml:5: <transport>: minGap="2s": must be between 1µs and 1s`},
		{"heartbeat huge", body(`<transport heartbeat="100h"/>`), `t.xml:5: <transport>: heartbeat="100h0m0s": must be between 1ms and 1h0m0s`},
		{"breakBorder huge", body(`<transport breakBorder="25h"/>`), `t.xml:5: <transport>: breakBorder="25h0m0s": must be between 1ms and 24h0m0s`},
		{"timeoutIncrement huge", body(`<transport timeoutIncrement="2h"/>`), `t.xml:5: <transport>: timeoutIncrement="2h0m0s": must be between 0s and 1h0m0s`},
		{"ack timeout growth", body(`<transport timeoutMultiplier="10" maxRetries="1000"/>`), `t.xml:5: <transport>: maxRetries="1000": the ack timeout would grow to 25h0m0s after the retries`},
		{"bandwidth huge", body(`<transport bandwidth="20000000000"/>`), `t.xml:5: <transport>: bandwidth="20000000000": must be between 0 and 10000000000`},
		{"limits maxFlows", body(`<limits maxFlows="16777217"/>`), `t.xml:5: <limits>: maxFlows="16777217": must be between 1 and 16777216`},
		{"limits maxSessions", body(`<limits maxSessions="-1"/>`), `t.xml:5: <limits>: maxSessions="-1": must be between 1 and 65536`},
		{"limits maxJournal", body(`<limits maxJournal="1000"/>`), `t.xml:5: <limits>: maxJournal="1000": must be between 1048576 and 1099511627776`},
		{"limits twice", body(`<limits/>`, `<limits/>`), `t.xml:6: <limits>: given twice (allowed once)`},
		{"analyses rttTimeout", body(`<analyses rttTimeout="2h"/>`), `t.xml:5: <analyses>: rttTimeout="2h0m0s": must be between 1ms and 1h0m0s`},
		{"analyses tcpIdle", body(`<analyses tcpIdle="10ms"/>`), `t.xml:5: <analyses>: tcpIdle="10ms": must be between 1s and 24h0m0s`},
		{"analyses tcpMaxConns", body(`<analyses tcpMaxConns="-5"/>`), `t.xml:5: <analyses>: tcpMaxConns="-5": must be between 64 and 67108864`},
		{"analyses fragMaxFrags", body(`<analyses fragMaxFrags="9000"/>`), `t.xml:5: <analyses>: fragMaxFrags="9000": must be between 2 and 8192`},
		{"analyses fragTimeout", body(`<analyses fragTimeout="5m"/>`), `t.xml:5: <analyses>: fragTimeout="5m0s": must be between 1ms and 2m0s`},
		{"analyses unknown", body(`<analyses idle="5m"/>`), `t.xml:5: <analyses>: unknown attribute "idle"`},
		{"analyses bad duration", body(`<analyses ftpIdle="300"/>`), `t.xml:5: <analyses>: ftpIdle="300"`},
		{"analyses flowMaxInstances", body(`<analyses flowMaxInstances="10"/>`), `t.xml:5: <analyses>: flowMaxInstances="10": must be between 64 and 67108864`},
		{"analyses flowIdle", body(`<analyses flowIdle="100ms"/>`), `t.xml:5: <analyses>: flowIdle="100ms": must be between 1s and 24h0m0s`},
		{"analyses twice", body(`<analyses/>`, `<analyses/>`), `t.xml:6: <analyses>: given twice (allowed once)`},
		{"heartbeat under minGap", body(`<transport minGap="10ms" heartbeat="5ms"/>`), `t.xml:5: <transport>: heartbeat="5ms": must be at least minGap (10ms)`},

		// Collectors.
		{"collector name", body(`<collector name="c 2" address="127.0.0.1:1"/>`), `t.xml:5: <collector name="c 2">: name="c 2": want 1-64 letters`},
		{"collector duplicate", body(`<collector name="c1" address="127.0.0.1:1"/>`), `t.xml:5: <collector name="c1">: name="c1": already used by the collector on line 2`},
		{"collector host name", body(`<collector name="c2" address="collector.example:1"/>`), `t.xml:5: <collector name="c2">: address="collector.example:1": bad address`},
		{"collector no port", body(`<collector name="c2" address="127.0.0.1"/>`), `t.xml:5: <collector name="c2">: address="127.0.0.1": bad address`},
		{"collector port 0", body(`<collector name="c2" address="127.0.0.1:0"/>`), `t.xml:5: <collector name="c2">: address="127.0.0.1:0": port 0`},
		{"collector unspecified", body(`<collector name="c2" address="[::]:1"/>`), `t.xml:5: <collector name="c2">: address="[::]:1": want the unicast address probes send to`},
		{"collector address twice", body(`<collector name="c2" address="localhost:4739"/>`), `t.xml:5: <collector name="c2">: address="127.0.0.1:4739": already used by the collector on line 2`},
		{"collector spool", body(`<collector name="c2" address="127.0.0.1:1" spool=""/>`), `t.xml:5: <collector name="c2">: spool="": want a directory path`},
		{"collector log level", body(`<collector name="c2" address="127.0.0.1:1" logLevel="verbose"/>`), `t.xml:5: <collector name="c2">: logLevel="verbose": want one of debug, info, warn, error`},
		{"collector metrics listen", body(`<collector name="c2" address="127.0.0.1:1">`, `<metrics listen="127.0.0.1"/>`, `</collector>`), `t.xml:6: <metrics>: listen="127.0.0.1": want host:port`},
		{"collector metrics port", body(`<collector name="c2" address="127.0.0.1:1">`, `<metrics listen=":0"/>`, `</collector>`), `t.xml:6: <metrics>: listen=":0": port "0": want 1-65535`},
		{"collector metrics twice", body(`<collector name="c2" address="127.0.0.1:1">`, `<metrics/>`, `<metrics/>`, `</collector>`), `t.xml:7: <metrics>: given twice (allowed once)`},
		{"probe metrics attribute", body(`<probe name="p3" id="3">`, `<interface name="x"/>`, `<metrics port="1"/>`, `</probe>`), `t.xml:7: <metrics>: unknown attribute "port" (known: listen)`},
		{"probe log level", body(`<probe name="p3" id="3" logLevel="INFO"><interface name="x"/></probe>`), `t.xml:5: <probe name="p3">: logLevel="INFO": want one of debug, info, warn, error`},
		{"alarms webhook", body(`<alarms webhook="ftp://x/y"/>`), `t.xml:5: <alarms>: webhook="ftp://x/y": want an http:// or https:// URL`},
		{"alarms trap", body(`<alarms trap="192.0.2.1"/>`), `t.xml:5: <alarms>: trap="192.0.2.1": want host:port`},
		{"threshold metric", hopPairWith(`<threshold metric="delay.p95" above="1ms"/>`), `t.xml:8: <threshold>: metric="delay.p95": want one of delay.p50`},
		{"threshold clear above", hopPairWith(`<threshold metric="delay.p99" above="10ms" clear="20ms"/>`), `t.xml:8: <threshold metric="delay.p99">: clear (20ms) above the limit (10ms)`},
		{"threshold static or learned", hopPairWith(`<threshold metric="loss" above="1%" learn="10"/>`), `t.xml:8: <threshold>: learn and above/clear are exclusive`},
		{"threshold neither", hopPairWith(`<threshold metric="loss"/>`), `t.xml:8: <threshold>: give above (static) or learn`},
		{"threshold loss ratio", hopPairWith(`<threshold metric="loss" above="150%"/>`), `t.xml:8: <threshold metric="loss">: above=1.5: a loss ratio is at most 1`},
		{"threshold after", hopPairWith(`<threshold metric="loss" above="1%" after="0"/>`), `t.xml:8: <threshold metric="loss">: after=0 clearAfter=1: want 1-1000 intervals`},
		{"threshold factor", hopPairWith(`<threshold metric="delay.p50" learn="5" factor="0.5"/>`), `t.xml:8: <threshold metric="delay.p50">: factor=0.5 clearFactor=0.75: want 1 ≤ clearFactor ≤ factor`},
		{"collector child", body(`<collector name="c2" address="127.0.0.1:1"><probe/></collector>`), `t.xml:5: <probe>: unknown element in <collector> (known: metrics)`},

		// Probes and interfaces.
		{"probe name", body(`<probe name="-p" id="3"><interface name="x"/></probe>`), `t.xml:5: <probe name="-p">: name="-p": want 1-64 letters`},
		{"probe duplicate", body(`<probe name="p1" id="3"><interface name="x"/></probe>`), `t.xml:5: <probe name="p1">: name="p1": already used by the probe on line 3`},
		{"probe id zero", body(`<probe name="p3" id="0"><interface name="x"/></probe>`), `t.xml:5: <probe name="p3">: id="0": must be 1-65535`},
		{"probe id large", body(`<probe name="p3" id="65536"><interface name="x"/></probe>`), `t.xml:5: <probe name="p3">: id="65536": want an integer 1-65535`},
		{"probe id missing", body(`<probe name="p3"><interface name="x"/></probe>`), `t.xml:5: <probe name="p3">: missing attribute "id"`},
		{"probe id duplicate", body(`<probe name="p3" id="2"><interface name="x"/></probe>`), `t.xml:5: <probe name="p3">: id="2": already used by the probe on line 4`},
		{"probe core", body(`<probe name="p3" id="3" core="-2"><interface name="x"/></probe>`), `t.xml:5: <probe name="p3">: core="-2": want a CPU number, or -1 for none`},
		{"probe no interface", body(`<probe name="p3" id="3"/>`), `t.xml:5: <probe name="p3">: no <interface>: give at least one`},
		{"probe child", body(`<probe name="p3" id="3">`, `<iface name="x"/>`, `</probe>`), `t.xml:6: <iface>: unknown element in <probe> (known: interface, metrics)`},
		{"interface duplicate", body(`<probe name="p3" id="3">`, `<interface name="x"/>`, `<interface name="x"/>`, `</probe>`), `t.xml:7: <interface name="x">: name="x": already used in this probe on line 6`},
		{"interface name", body(`<probe name="p3" id="3">`, `<interface name="a/b"/>`, `</probe>`), `t.xml:6: <interface name="a/b">: name="a/b": want 1-64 printable ASCII characters`},
		{"interface hop name", body(`<probe name="p3" id="3">`, `<interface name="x" hop="A B"/>`, `</probe>`), `t.xml:6: <interface name="x">: hop="A B": want 1-64 letters`},
		{"interface attribute", body(`<probe name="p3" id="3">`, `<interface name="x" direction="in"/>`, `</probe>`), `t.xml:6: <interface name="x">: unknown attribute "direction" (known: name, hop, pair, fanout, cores)`},

		// Flow classes.
		{"class name", body(`<flowClass name="a b"/>`), `t.xml:5: <flowClass name="a b">: name="a b": want 1-64 letters`},
		{"class duplicate", body(`<flowClass name="k"/>`, `<flowClass name="k"/>`), `t.xml:6: <flowClass name="k">: name="k": already used by the class on line 5`},
		{"class too many", body(many...), `t.xml:69: <flowClass name="k64">: more than 64 flow classes`},
		{"class child", body(cls(`<oneway hops="A B"/>`)...), `t.xml:6: <oneway>: unknown element in <flowClass> (known: filter, granular, mask, oneWay)`},
		{"filter twice", body(cls(`<filter/>`, `<filter/>`)...), `t.xml:7: <filter>: given twice (allowed once)`},
		{"granular unknown", body(cls(`<granular fields="ip.src port"/>`)...), `t.xml:6: <granular>: fields="ip.src port": unknown field "port" (known: ip.version`},
		{"granular twice", body(cls(`<granular fields="ip.src ip.src"/>`)...), `t.xml:6: <granular>: fields="ip.src ip.src": field ip.src listed twice`},
		{"granular field", body(cls(`<granular fields="ip.ttl"/>`)...), `t.xml:5: <flowClass name="k">: <granular>: ip.ttl cannot split a class (not kept in a flow key)`},
		{"granular missing", body(cls(`<granular/>`)...), `t.xml:6: <granular>: missing attribute "fields"`},
		{"mask field", body(cls(`<mask fields="ip.proto"/>`)...), `t.xml:5: <flowClass name="k">: <mask>: ip.proto cannot be masked (only ip.src ip.dst ip.dscp ip.ecn ipv6.flowlabel l4.sport l4.dport)`},
		{"granular and masked", body(cls(`<granular fields="ip.src l4.dport"/>`, `<mask fields="ip.src"/>`, `<oneWay hops="A B"/>`)...), `t.xml:5: <flowClass name="k">: ip.src both granular and masked in a one-way class`},

		// Filter grammar.
		{"filter attribute", body(cls(`<filter negate="true"/>`)...), `t.xml:6: <filter>: unknown attribute "negate" (known: not)`},
		{"filter not value", body(cls(`<filter not="yes"/>`)...), `t.xml:6: <filter>: not="yes": bad boolean "yes" (want true or false)`},
		{"and under filter", body(filt(`<and><match field="ip.ttl" value="1"/></and>`)...), `t.xml:7: <and>: unknown element in <filter> (known: match, or, nor)`},
		{"or under or", body(filt(`<or>`, `<or/>`, `</or>`)...), `t.xml:8: <or>: unknown element in <or> (known: match, and, nand)`},
		{"or under and", body(filt(`<or><and>`, `<or/>`, `</and></or>`)...), `t.xml:8: <or>: unknown element in <and> (known: match)`},
		{"match child", body(filt(`<match field="ip.ttl" value="1"><match/></match>`)...), `t.xml:7: <match>: unknown element in <match> (it takes no elements)`},
		{"empty or", body(filt(`<or/>`)...), `t.xml:7: <or>: empty: give at least one <match> or <and>`},
		{"empty nand", body(filt(`<or><nand/></or>`)...), `t.xml:7: <nand>: empty: give at least one <match>`},
		{"nor takes no not", body(filt(`<nor not="false"><match field="ip.ttl" value="1"/></nor>`)...), `t.xml:7: <nor>: unknown attribute "not" (none allowed)`},
		{"match attribute", body(filt(`<match field="ip.ttl" value="1" op="eq"/>`)...), `t.xml:7: <match field="ip.ttl">: unknown attribute "op" (known: field, value, not)`},
		{"match field missing", body(filt(`<match value="1"/>`)...), `t.xml:7: <match>: missing attribute "field"`},
		{"match value missing", body(filt(`<match field="ip.ttl"/>`)...), `t.xml:7: <match field="ip.ttl">: missing attribute "value"`},
		{"unknown field", body(filt(`<match field="ip.srcx" value="1"/>`)...), `t.xml:7: <match field="ip.srcx">: unknown field "ip.srcx" (known: ip.version, ip.src,`},

		// Match values.
		{"empty item", body(filt(`<match field="l4.dport" value="1,,2"/>`)...), `t.xml:7: <match field="l4.dport">: value="1,,2": empty item in value list "1,,2"`},
		{"bad number", body(filt(`<match field="l4.dport" value="0x35"/>`)...), `t.xml:7: <match field="l4.dport">: value="0x35": bad number "0x35" (want N or N-M)`},
		{"huge number", body(filt(`<match field="l4.dport" value="99999999999"/>`)...), `t.xml:7: <match field="l4.dport">: value="99999999999": bad number`},
		{"bad protocol", body(filt(`<match field="ip.proto" value="tcpp"/>`)...), `t.xml:7: <match field="ip.proto">: value="tcpp": bad protocol "tcpp"`},
		{"out of range", body(filt(`<match field="ip.dscp" value="10,64"/>`)...), `t.xml:7: <match field="ip.dscp">: value 64: out of range (0-63)`},
		{"range out of range", body(filt(`<match field="vlan.id" value="4000-4096"/>`)...), `t.xml:7: <match field="vlan.id">: value 4000-4096: out of range (0-4095)`},
		{"inverted range", body(filt(`<match field="l4.sport" value="1024-1"/>`)...), `t.xml:7: <match field="l4.sport">: value 1024-1: inverted range`},
		{"bad prefix", body(filt(`<match field="ip.src" value="10.0.0.0/33"/>`)...), `t.xml:7: <match field="ip.src">: value="10.0.0.0/33": bad prefix "10.0.0.0/33"`},
		{"host bits", body(filt(`<match field="ip.dst" value="2001:db8::1/32"/>`)...), `t.xml:7: <match field="ip.dst">: value "2001:db8::1/32": host bits set (did you mean 2001:db8::/32?)`},
		{"zone", body(filt(`<match field="ip.dst" value="fe80::1%eth0"/>`)...), `t.xml:7: <match field="ip.dst">: value="fe80::1%eth0": bad address "fe80::1%eth0"`},
		{"number on address", body(filt(`<match field="ip.dst" value="10"/>`)...), `t.xml:7: <match field="ip.dst">: value="10": bad address "10"`},
		{"address on number", body(filt(`<match field="ip.ttl" value="10.0.0.1"/>`)...), `t.xml:7: <match field="ip.ttl">: value="10.0.0.1": bad number`},

		// Impossible filters.
		{"disjoint in and", body(filt(`<or><and>`, `<match field="l4.dport" value="53"/>`, `<match field="dport" value="80,443"/>`, `</and></or>`)...),
			`t.xml:9: <match field="l4.dport">: filter can never match: no l4.dport value satisfies both this and the <match> on line 8`},
		{"disjoint at top", body(filt(`<match field="ip.ttl" value="1-10"/>`, `<match field="ip.ttl" value="11-20"/>`)...),
			`t.xml:8: <match field="ip.ttl">: filter can never match: no ip.ttl value satisfies both this and the <match> on line 7`},
		{"top against term", body(filt(`<match field="ip.proto" value="udp"/>`, `<or>`, `<match field="ip.proto" value="tcp"/>`, `<match field="ip.proto" value="icmp"/>`, `</or>`)...),
			`t.xml:10: <match field="ip.proto">: filter can never match: no ip.proto value satisfies both this and the <match> on line 7`},
		{"term against itself", body(filt(`<or>`, `<match field="ip.ttl" value="1"/>`, `<and><match field="ip.version" value="6"/><match field="ip.dst" value="10.0.0.0/8"/></and>`, `</or>`)...),
			`t.xml:9: <match field="ip.dst">: filter can never match: ip.version (line 9) and ip.dst (line 9) allow no common IP version`},
		{"version and prefix", body(filt(`<match field="ip.version" value="4"/>`, `<match field="ip.src" value="2001:db8::/32"/>`)...),
			`t.xml:8: <match field="ip.src">: filter can never match: ip.version (line 7) and ip.src (line 8) allow no common IP version`},
		{"families", body(filt(`<match field="ip.src" value="10.0.0.0/8"/>`, `<match field="ip.dst" value="2001:db8::/32"/>`)...),
			`t.xml:8: <match field="ip.dst">: filter can never match: ip.src (line 7) and ip.dst (line 8) allow no common IP version`},
		{"flow label on v4", body(filt(`<match field="ipv6.flowlabel" value="1-100"/>`, `<match field="ip.version" value="4"/>`)...),
			`t.xml:8: <match field="ip.version">: filter can never match: ip.version (line 8) and ipv6.flowlabel (line 7) allow no common IP version`},
		{"no version 5", body(filt(`<match field="ip.version" value="5"/>`)...),
			`t.xml:7: <match field="ip.version">: filter can never match: no ip.version value satisfies it`},
		{"not everything", body(filt(`<match field="ip.fragment" value="0-1" not="true"/>`)...),
			`t.xml:7: <match field="ip.fragment">: filter can never match: no ip.fragment value satisfies it`},
		{"nor of one", body(filt(`<match field="ip.ttl" value="5"/>`, `<nor><match field="ip.ttl" value="1-10"/></nor>`)...),
			`t.xml:8: <match field="ip.ttl">: filter can never match: no ip.ttl value satisfies both this and the <match> on line 7`},
		{"ports without tcp udp", body(filt(`<match field="ip.proto" value="icmp"/>`, `<match field="l4.dport" value="53"/>`)...),
			`t.xml:8: <match field="l4.dport">: filter can never match: l4.dport (line 8) is non-zero only for TCP and UDP, which ip.proto (line 7) excludes`},
		{"not filter empty", body(cls(`<filter not="true"/>`)...), `t.xml:6: <filter not="true">: matches nothing`},

		// One-way measurement.
		{"oneWay twice", body(cls(`<oneWay hops="A B"/>`, `<oneWay hops="A B"/>`)...), `t.xml:7: <oneWay hops="A B">: given twice (allowed once)`},
		{"oneWay hops missing", body(cls(`<oneWay/>`)...), `t.xml:6: <oneWay>: missing attribute "hops"`},
		{"one hop", body(cls(`<oneWay hops="A"/>`)...), `t.xml:6: <oneWay hops="A">: 1 hops: a path has 2 to 8`},
		{"nine hops", body(append([]string{hops9}, cls(`<oneWay hops="H0 H1 H2 H3 H4 H5 H6 H7 H8"/>`)...)...), `t.xml:7: <oneWay hops="H0 H1 H2 H3 H4 H5 H6 H7 H8">: 9 hops: a path has 2 to 8`},
		{"hop twice", body(cls(`<oneWay hops="A B A"/>`)...), `t.xml:6: <oneWay hops="A B A">: hop "A": listed twice`},
		{"hop unknown", body(cls(`<oneWay hops="A D"/>`)...), `t.xml:6: <oneWay hops="A D">: hop "D": no <interface> has hop="D"`},
		{"hop bad name", body(cls(`<oneWay hops="A B,C"/>`)...), `t.xml:6: <oneWay hops="A B,C">: hop "B,C": want 1-64 letters`},
		{"maxTransit", body(cls(`<oneWay hops="A B" maxTransit="0"/>`)...), `t.xml:6: <oneWay hops="A B">: maxTransit="0s": must be positive`},
		{"timeout", body(cls(`<oneWay hops="A B" maxTransit="2s" timeout="1s"/>`)...), `t.xml:6: <oneWay hops="A B">: timeout="1s": must be at least maxTransit (2s)`},
		{"dupWindow", body(cls(`<oneWay hops="A B" dupWindow="-1ms"/>`)...), `t.xml:6: <oneWay hops="A B">: dupWindow="-1ms": must not be negative`},
		{"resolution 3", body(cls(`<oneWay hops="A B" resolution="3ns"/>`)...), `t.xml:6: <oneWay hops="A B">: resolution="3ns": want a power of ten from 1ns to 1ms`},
		{"resolution 10ms", body(cls(`<oneWay hops="A B" resolution="10ms"/>`)...), `t.xml:6: <oneWay hops="A B">: resolution="10ms": want a power of ten from 1ns to 1ms`},
		{"perPacket", body(cls(`<oneWay hops="A B" perPacket="on"/>`)...), `t.xml:6: <oneWay hops="A B">: perPacket="on": bad boolean "on"`},
		{"ftpData", body(`<flowClass name="k" ftpData="some"/>`), `t.xml:5: <flowClass name="k">: ftpData="some": want all or flags`},
		{"oneWay child", body(cls(`<oneWay hops="A B">`, `<pair from="A" to="B"/>`, `</oneWay>`)...), `t.xml:7: <pair>: unknown element in <oneWay> (known: hopPair)`},
		{"pair hop unknown", body(cls(`<oneWay hops="A B">`, `<hopPair from="X" to="B"/>`, `</oneWay>`)...), `t.xml:7: <hopPair from="X" to="B">: from="X": not a hop of the path (hops: A B)`},
		{"pair to missing", body(cls(`<oneWay hops="A B">`, `<hopPair from="A"/>`, `</oneWay>`)...), `t.xml:7: <hopPair from="A">: missing attribute "to"`},
		{"pair same hop", body(cls(`<oneWay hops="A B">`, `<hopPair from="A" to="A"/>`, `</oneWay>`)...), `t.xml:7: <hopPair from="A" to="A">: from must come before to in the path`},
		{"pair backwards", body(cls(`<oneWay hops="A B C">`, `<hopPair from="C" to="B"/>`, `</oneWay>`)...), `t.xml:7: <hopPair from="C" to="B">: from must come before to in the path`},
		{"pair twice", body(cls(`<oneWay hops="A B">`, `<hopPair from="A" to="B"/>`, `<hopPair from="A" to="B"/>`, `</oneWay>`)...), `t.xml:8: <hopPair from="A" to="B">: pair already given on line 7`},
		{"slices empty", body(cls(`<oneWay hops="A B">`, `<hopPair from="A" to="B" slices=" "/>`, `</oneWay>`)...), `t.xml:7: <hopPair from="A" to="B">: slices: give at least one edge`},
		{"slices syntax", body(cls(`<oneWay hops="A B">`, `<hopPair from="A" to="B" slices="1ms,2ms"/>`, `</oneWay>`)...), `t.xml:7: <hopPair from="A" to="B">: slices="1ms,2ms": bad duration "1ms,2ms"`},
		{"slices zero", body(cls(`<oneWay hops="A B">`, `<hopPair from="A" to="B" slices="0 1ms"/>`, `</oneWay>`)...), `t.xml:7: <hopPair from="A" to="B">: slices: edge 0s must be positive`},
		{"slices order", body(cls(`<oneWay hops="A B">`, `<hopPair from="A" to="B" slices="1ms 5ms 5ms"/>`, `</oneWay>`)...), `t.xml:7: <hopPair from="A" to="B">: slices: edge 5ms after 5ms: edges must be strictly ascending`},
		{"slices many", body(cls(`<oneWay hops="A B">`, `<hopPair from="A" to="B" slices="`+edges+`"/>`, `</oneWay>`)...), `t.xml:7: <hopPair from="A" to="B">: slices: 65 edges, at most 64`},
	}
	names := map[string]bool{}
	for _, tc := range tests {
		if names[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		names[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseString(tc.doc)
			if err == nil {
				t.Fatalf("no error; parsed %+v", c)
			}
			if c != nil {
				t.Error("config returned with an error")
			}
			wantError(t, err, tc.want)
		})
	}
}

// TestAccepted lists files that look odd but are right, so that the rules
// above do not grow too eager.
func TestAccepted(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{"head only", body()},
		{"zero duration", body(`<transport timeoutIncrement="0"/>`)},
		{"localhost", body(`<collector name="c2" address="localhost:1"/>`)},
		{"ipv6 collector", body(`<collector name="c2" address="[::1]:1"/>`)},
		{"empty filter", body(cls(`<filter/>`)...)},
		{"proto names", body(filt(`<match field="proto" value="tcp, udp,icmpv6, 132, gre-esp"/>`)...)},
		{"not a port", body(filt(`<match field="ip.proto" value="6" not="true"/>`, `<match field="l4.dport" value="53"/>`)...)},
		{"ports with not", body(filt(`<match field="ip.proto" value="icmp"/>`, `<match field="l4.dport" value="53" not="true"/>`)...)},
		{"overlapping terms", body(filt(`<or><and>`, `<match field="l4.dport" value="1-100"/>`, `<match field="l4.dport" value="50-200"/>`, `</and></or>`)...)},
		{"v4 and v6 alternatives", body(filt(`<match field="ip.src" value="10.0.0.0/8,2001:db8::/32"/>`, `<match field="ip.version" value="6"/>`)...)},
		{"nand of contradicting context", body(filt(`<match field="ip.ttl" value="1"/>`, `<nor><match field="ip.ttl" value="2"/><match field="ip.ttl" value="3"/></nor>`)...)},
		{"one dead term of two", body(filt(`<match field="ip.proto" value="udp"/>`, `<or>`, `<match field="ip.proto" value="tcp"/>`, `<match field="ip.ttl" value="1"/>`, `</or>`)...)},
		{"whole prefix", body(filt(`<match field="ip.src" value="0.0.0.0/0,::/0"/>`)...)},
		{"alternative hops", body(`<probe name="p3" id="3"><interface name="e0" hop="B"/></probe>`, `<flowClass name="k"><oneWay hops="A B C"/></flowClass>`)},
		{"mask not granular", body(cls(`<granular fields="ip.dst"/>`, `<mask fields="ip.src l4.sport"/>`, `<oneWay hops="A B"/>`)...)},
		{"64 classes", body(func() []string {
			var l []string
			for i := 0; i < 64; i++ {
				l = append(l, fmt.Sprintf(`<flowClass name="k%d"/>`, i))
			}
			return l
		}()...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseString(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, c)
		})
	}
}

// hopPairWith puts content in a hop pair: line 8 is its first child.
func hopPairWith(content string) string {
	return body(cls(`<oneWay hops="A B">`, `<hopPair from="A" to="B">`, content, `</hopPair>`, `</oneWay>`)...)
}
