package conf

import (
	"fmt"
	"strings"
)

// Error is one problem found in a configuration file. Load, Parse and
// Validate return one *Error per problem, joined with errors.Join, so that an
// operator fixes them all in one round.
type Error struct {
	File string // file name as given to Load or Parse
	Line int    // 1-based line of the element; 0 when unknown (a Config built in code)
	Elem string // the element as written, e.g. `<match field="ip.src">`; empty for the whole file
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Elem != "" {
		b.WriteString(e.Elem)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// maxErrors bounds the list of errors reported for one file: past it, the
// rest is usually noise caused by the first ones.
const maxErrors = 50

// errList collects the errors of one file.
type errList struct {
	file string
	errs []error
}

func (l *errList) add(line int, elem string, err error) {
	if len(l.errs) == maxErrors {
		l.errs = append(l.errs, &Error{File: l.file, Err: fmt.Errorf("too many errors")})
	}
	if len(l.errs) > maxErrors {
		return
	}
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Elem: elem, Err: err})
}

func (l *errList) addf(line int, elem, format string, args ...any) {
	l.add(line, elem, fmt.Errorf(format, args...))
}

// elem renders an element start tag with its identifying attributes, in the
// order given, skipping empty values: elem("match", "field", "ip.src").
func elem(name string, kv ...string) string {
	var b strings.Builder
	b.WriteByte('<')
	b.WriteString(name)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		fmt.Fprintf(&b, " %s=%q", kv[i], kv[i+1])
	}
	b.WriteByte('>')
	return b.String()
}
