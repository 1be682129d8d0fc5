package openapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// maxFlowDepth bounds the nesting of [...] and {...} in a document read: the YAML parser's
// cost grows quadratically with it, and no real document nests this deep.
const maxFlowDepth = 500

// yamlPosition is how the YAML parser starts its messages: [line:column].
var yamlPosition = regexp.MustCompile(`^\[(\d+):(\d+)\]`)

// topLevel is what a first look at a document finds: the fields that tell an OpenAPI 3
// document from anything else.
type topLevel struct {
	openapi, swagger, apiVersion, kind string
	// openapiNotString is the text of an openapi field written as a number (openapi: 3.1).
	openapiNotString string
}

// sniff reads the top-level fields of a YAML or JSON document without reading the rest,
// so that a file that is not OpenAPI gets an error saying what it is, rather than the
// OpenAPI reader's complaint about its first field. The YAML parser may panic on some
// inputs; that is an error here, since no input may crash an import.
func sniff(data []byte) (top topLevel, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("not YAML or JSON: the YAML parser failed on it (%v)", r)
		}
	}()
	if !utf8.Valid(data) {
		return top, errors.New("not YAML or JSON: the file is not UTF-8 text")
	}
	tokens := lexer.Tokenize(strings.TrimPrefix(string(data), "\ufeff"))
	depth := 0
	for _, tk := range tokens {
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			if depth++; depth > maxFlowDepth {
				return top, fmt.Errorf("not a document this import reads: [...] and {...} nested deeper than %d levels", maxFlowDepth)
			}
		case token.SequenceEndType, token.MappingEndType:
			depth--
		}
	}
	f, err := parser.Parse(tokens, 0)
	if err != nil {
		msg := yamlPosition.ReplaceAllString(yaml.FormatError(err, false, false), "line $1, column $2:")
		return top, fmt.Errorf("not YAML or JSON: %s", msg)
	}
	if len(f.Docs) == 0 || f.Docs[0] == nil || f.Docs[0].Body == nil {
		return top, errors.New("not an OpenAPI document: the file is empty")
	}
	var values []*ast.MappingValueNode
	switch n := f.Docs[0].Body.(type) {
	case *ast.MappingNode:
		values = n.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{n}
	case *ast.StringNode, *ast.LiteralNode:
		return top, errors.New("not an OpenAPI document: it is plain text, not a mapping with openapi, info and paths")
	default:
		return top, fmt.Errorf("not an OpenAPI document: it is a %s, not a mapping with openapi, info and paths", strings.ToLower(n.Type().String()))
	}
	for _, mv := range values {
		if mv == nil || mv.Key == nil || mv.Key.GetToken() == nil {
			continue
		}
		text := ""
		isString := false
		if v := mv.Value; v != nil && v.GetToken() != nil {
			text = v.GetToken().Value
			_, isString = v.(*ast.StringNode)
		}
		switch mv.Key.GetToken().Value {
		case "openapi":
			if isString {
				top.openapi = text
			} else {
				top.openapiNotString = text
			}
		case "swagger":
			top.swagger = text
		case "apiVersion":
			top.apiVersion = text
		case "kind":
			top.kind = text
		}
	}
	return top, nil
}

// check says what a document is when it is not one Import reads.
func (t topLevel) check() (string, error) {
	switch {
	case t.swagger != "":
		return "", fmt.Errorf("this is an OpenAPI 2.0 document (swagger: %q); only OpenAPI 3.0 and 3.1 documents can be imported: convert it to 3.0 first", t.swagger)
	case t.openapiNotString != "":
		return "", fmt.Errorf("openapi: the version is written as a number (%s); write it as a string, such as openapi: \"%s.0\"", t.openapiNotString, t.openapiNotString)
	case t.openapi == "" && t.apiVersion != "" && t.kind != "":
		return "", fmt.Errorf("this is a Causeway definition (kind: %s), not an OpenAPI document", t.kind)
	case t.openapi == "":
		return "", errors.New("not an OpenAPI document: it has no openapi field giving its version")
	case !supportedVersion.MatchString(t.openapi):
		return "", fmt.Errorf("openapi %q: only OpenAPI 3.0 and 3.1 documents can be imported", t.openapi)
	}
	return t.openapi, nil
}

// supportedVersion matches the OpenAPI versions Import reads.
var supportedVersion = regexp.MustCompile(`^3\.[01](\.\d+)?$`)

// yamlText writes YAML a line at a time, so that the definitions Import generates are laid
// out as a person would write them, with comments where there is something to decide.
type yamlText struct {
	b strings.Builder
}

// line writes one line at an indentation of two spaces per level.
func (y *yamlText) line(level int, format string, args ...any) {
	y.b.WriteString(strings.Repeat("  ", level))
	fmt.Fprintf(&y.b, format, args...)
	y.b.WriteByte('\n')
}

// comment writes a comment, one line per line of text.
func (y *yamlText) comment(level int, text string) {
	for _, l := range strings.Split(text, "\n") {
		y.line(level, "# %s", commentSafe(l))
	}
}

// commentSafe makes text fit on one comment line: control characters, which could end the
// comment or the line, become spaces.
func commentSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\ufeff' {
			return ' '
		}
		return r
	}, s)
}

// yamlKeywords are the plain scalars some YAML readers take for booleans or null.
var yamlKeywords = map[string]bool{"true": true, "false": true, "yes": true, "no": true, "on": true, "off": true,
	"y": true, "n": true, "null": true, "~": true}

// scalar writes a string from the document as a YAML scalar that reads back as the same
// string: plain when that is safe, double-quoted otherwise. A "${" becomes "$${", which
// the loader reads as a literal "${" rather than a variable to substitute.
func scalar(s string) string {
	s = strings.ReplaceAll(s, "${", "$${")
	if plainSafe(s) {
		return s
	}
	return doubleQuoted(s)
}

// doubleQuoted writes s as a double-quoted YAML scalar, as it is: a JSON string is one.
func doubleQuoted(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// plainSafe reports whether s can be written as a plain scalar in block context.
func plainSafe(s string) bool {
	if s == "" || !utf8.ValidString(s) || yamlKeywords[strings.ToLower(s)] {
		return false
	}
	if strings.ContainsRune("-?:,[]{}#&*!|>'\"%@`<=+.0123456789 ", rune(s[0])) || strings.ContainsRune(" :", rune(s[len(s)-1])) {
		return false
	}
	if strings.Contains(s, ": ") || strings.Contains(s, " #") || strings.Contains(s, "  ") {
		return false
	}
	for _, r := range s {
		// Braces are safe inside a plain scalar in block context (match: GET /orders/{id});
		// brackets, commas and quotes are kept out, as some readers stumble on them.
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || strings.ContainsRune("\"'\\[],", r) {
			return false
		}
	}
	return true
}
