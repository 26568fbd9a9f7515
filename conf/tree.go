package conf

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// node is one element of the document with the line its start tag begins on.
type node struct {
	name     string
	attrs    []xml.Attr
	line     int
	kids     []*node
	textLine int // line of the first non-blank character data inside; 0 if none
}

// readTree decodes the document into a tree of nodes. Only XML syntax is
// checked here; the tree is checked against the grammar afterwards, so that
// every grammar error can be reported, not only the first.
func readTree(r io.Reader, name string) (*node, error) {
	lr := &io.LimitedReader{R: r, N: maxFileSize + 1}
	d := xml.NewDecoder(lr)
	var root *node
	var stack []*node
	for {
		// The position before Token is where the next token starts: the
		// decoder consumes blanks as character data tokens of their own.
		line, _ := d.InputPos()
		tok, err := d.Token()
		if lr.N <= 0 {
			return nil, &Error{File: name, Err: fmt.Errorf("file larger than %d bytes", maxFileSize)}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, &Error{File: name, Line: se.Line, Err: fmt.Errorf("XML syntax: %s", se.Msg)}
			}
			return nil, &Error{File: name, Line: line, Err: fmt.Errorf("XML: %w", err)}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name.Local, attrs: t.Attr, line: line}
			if t.Name.Space != "" {
				// Namespaced names never match the grammar: the file has no namespace.
				n.name = "{" + t.Name.Space + "}" + t.Name.Local
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, &Error{File: name, Line: line, Elem: "<" + n.name + ">", Err: errors.New("second root element")}
				}
				root = n
			} else {
				top := stack[len(stack)-1]
				top.kids = append(top.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			text := string(t)
			trimmed := strings.TrimLeftFunc(text, unicode.IsSpace)
			if trimmed == "" {
				continue
			}
			line += strings.Count(text[:len(text)-len(trimmed)], "\n")
			if len(stack) == 0 {
				return nil, &Error{File: name, Line: line, Err: errors.New("text outside the root element")}
			}
			if top := stack[len(stack)-1]; top.textLine == 0 {
				top.textLine = line
			}
		case xml.Directive:
			return nil, &Error{File: name, Line: line, Err: errors.New("<!DOCTYPE> and other directives are not supported")}
		}
	}
	if root == nil {
		return nil, &Error{File: name, Err: errors.New("no <tmon> element")}
	}
	return root, nil
}
