package conf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it returns is
// an *Error, and that whatever it accepts validates and survives a round
// trip through WriteXML. Seeds: testdata/fuzz/FuzzParse and the sample files.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	files = append(files, "../examples/demo.xml")
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(bytes.NewReader(data), "fuzz.xml")
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != "fuzz.xml" || ce.Line < 0 {
					t.Fatalf("error %q is not a *Error of fuzz.xml", e)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		roundTrip(t, c)
	})
}
