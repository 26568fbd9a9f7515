package conf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// doc assembles a test file named t.xml whose line N is lines[N-1].
func doc(lines ...string) string { return strings.Join(lines, "\n") }

// head is the common start of the table documents: lines 1-4.
var head = []string{
	`<tmon version="t">`,
	`<collector name="c1" address="127.0.0.1:4739"/>`,
	`<probe name="p1" id="1"><interface name="e0" hop="A"/></probe>`,
	`<probe name="p2" id="2"><interface name="e1" hop="B"/><interface name="e2" hop="C"/></probe>`,
}

// body returns head, then lines from line 5 on, then the closing tag.
func body(lines ...string) string {
	all := append(append([]string{}, head...), lines...)
	return doc(append(all, `</tmon>`)...)
}

func parseString(s string) (*Config, error) { return Parse(strings.NewReader(s), "t.xml") }

// errLines returns the messages of a joined error, one per problem.
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// wantError fails unless one of the errors starts with want.
func wantError(t *testing.T, err error, want string) {
	t.Helper()
	lines := errLines(err)
	for _, l := range lines {
		if strings.HasPrefix(l, want) {
			return
		}
	}
	t.Errorf("no error starting with\n\t%s\ngot:\n\t%s", want, strings.Join(lines, "\n\t"))
}

func TestDemoLoads(t *testing.T) {
	c, err := Load("../examples/demo.xml")
	if err != nil {
		t.Fatal(err)
	}
	if c.File != "../examples/demo.xml" || c.Version != "demo-1" || len(c.Probes) != 2 || len(c.Classes) != 2 {
		t.Fatalf("unexpected config: %+v", c)
	}
	ow := c.Classes[0].OneWay
	if ow == nil || len(ow.Hops) != 2 || len(ow.Pairs) != 1 || len(ow.Pairs[0].Slices) != 13 {
		t.Fatalf("one-way: %+v", ow)
	}
	f := c.Classes[0].Filter
	if len(f.Groups) != 3 || len(f.Groups[2].Terms) != 2 || len(f.Groups[2].Terms[1].Preds) != 2 || f.Groups[2].Terms[1].Line != 31 {
		t.Fatalf("filter shape: %+v", f)
	}
	if !c.Classes[1].Filter.Not {
		t.Error("class other: filter not lost")
	}
}

// TestTestdata loads every file of testdata: good-* must load; bad-* must
// fail with exactly the errors listed in their <!-- want: ... --> comments
// (each a prefix of one error line, in order).
func TestTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.xml")
	if len(files) < 4 {
		t.Fatalf("only %d testdata files", len(files))
	}
	wantRE := regexp.MustCompile(`<!-- want: (.*) -->`)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(path)
			if strings.HasPrefix(name, "good-") {
				name = path // its key files are beside it
			}
			c, err := Parse(bytes.NewReader(data), name)
			if strings.HasPrefix(filepath.Base(path), "good-") {
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Validate(); err != nil {
					t.Fatalf("Validate after Parse: %v", err)
				}
				return
			}
			got := errLines(err)
			var want []string
			for _, m := range wantRE.FindAllStringSubmatch(string(data), -1) {
				want = append(want, m[1])
			}
			if len(want) == 0 {
				t.Fatal("bad file without want comments")
			}
			if len(got) != len(want) {
				t.Fatalf("got %d errors, want %d:\n\t%s", len(got), len(want), strings.Join(got, "\n\t"))
			}
			for i := range want {
				if !strings.HasPrefix(got[i], want[i]) {
					t.Errorf("error %d:\n\tgot  %s\n\twant %s", i, got[i], want[i])
				}
			}
			var e *Error
			if !errors.As(err, &e) || e.File != filepath.Base(path) {
				t.Errorf("errors.As *Error: %v", e)
			}
		})
	}
}

// stripLines returns a deep copy of c with File and every Line zeroed, to
// compare configurations read from different texts.
func stripLines(c *Config) *Config {
	v := reflect.New(reflect.TypeOf(*c)).Elem()
	v.Set(deepCopy(reflect.ValueOf(*c)))
	out := v.Addr().Interface().(*Config)
	out.File = ""
	zeroLines(v)
	return out
}

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		n := reflect.New(v.Type().Elem())
		n.Elem().Set(deepCopy(v.Elem()))
		return n
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			n.Index(i).Set(deepCopy(v.Index(i)))
		}
		return n
	case reflect.Struct:
		n := reflect.New(v.Type()).Elem()
		n.Set(v) // unexported fields (time.Time, netip) are values
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				n.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return n
	}
	return v
}

func zeroLines(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			zeroLines(v.Elem())
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			zeroLines(v.Index(i))
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			if strings.HasSuffix(f.Name, "Line") {
				v.Field(i).SetInt(0)
				continue
			}
			zeroLines(v.Field(i))
		}
	}
}

// roundTrip writes c and parses it back; the two must be equal but for
// lines.
func roundTrip(t testing.TB, c *Config) {
	t.Helper()
	var buf bytes.Buffer
	if err := c.WriteXML(&buf); err != nil {
		t.Fatal(err)
	}
	// Named in the original's directory: key files are relative to it.
	c2, err := Parse(bytes.NewReader(buf.Bytes()), filepath.Join(filepath.Dir(c.File), "written.xml"))
	if err != nil {
		t.Fatalf("re-parse of written file: %v\n%s", err, buf.String())
	}
	a, b := stripLines(c), stripLines(c2)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("round trip differs:\n%+v\n%+v\n%s", a, b, buf.String())
	}
}

func TestRoundTrip(t *testing.T) {
	for _, path := range []string{"../examples/demo.xml", "testdata/good-full.xml", "testdata/good-minimal.xml"} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, c)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.xml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want os.ErrNotExist", err)
	}
}

func TestTooLarge(t *testing.T) {
	big := "<tmon>" + strings.Repeat("<!-- padding -->", maxFileSize/16+1) + "</tmon>"
	_, err := parseString(big)
	wantError(t, err, "t.xml: file larger than")
}

func TestErrorsCollected(t *testing.T) {
	var lines []string
	for i := 0; i < 70; i++ {
		lines = append(lines, `<oops/>`)
	}
	_, err := parseString(body(lines...))
	got := errLines(err)
	if len(got) != maxErrors+1 || got[maxErrors] != "t.xml: too many errors" {
		t.Fatalf("got %d errors, last %q", len(got), got[len(got)-1])
	}
}
