package openapi

import (
	"regexp"
	"strings"
	"unicode"
)

// paramSegment is a path segment that is one parameter, as API routes write it: {name}.
var paramSegment = regexp.MustCompile(`^\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// identifier is what a parameter of an API route or a System operation may be called.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// operationName is what a System operation may be called: it is written after the system's
// name in a call ("erp.getOrder"), so it holds no dot.
var operationName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// OperationID derives an operation id from a method and a path, such as "getOrdersById"
// for GET /orders/{id}: the method in lower case, then each literal segment and each
// parameter ("By" and its name) capitalized, so that ids read as the route does and stay
// the same from one generation to the next. GET / is "getRoot".
func OperationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	n := b.Len()
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if seg == "" {
			continue
		}
		if m := paramSegment.FindStringSubmatch(seg); m != nil {
			b.WriteString("By")
			seg = m[1]
		}
		b.WriteString(camel(seg, true))
	}
	if b.Len() == n {
		b.WriteString("Root")
	}
	return b.String()
}

// camel joins the letters and digits of s into one word, each run after another character
// starting with an upper-case letter ("order-items" is "orderItems"); upper starts the
// word itself with one.
func camel(s string, upper bool) string {
	var b strings.Builder
	next := upper
	for _, r := range s {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r)) {
			next = b.Len() > 0 || upper
			continue
		}
		if next {
			r = unicode.ToUpper(r)
			next = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// operationNameFrom makes an operation id of a document into a System operation name:
// characters an operation name cannot hold are dropped and the letter after them
// capitalized ("pets.list" is "petsList"), and a name that would not start with a letter
// gets "op" in front. It returns "" when nothing usable is left.
func operationNameFrom(id string) string {
	var b strings.Builder
	next := false
	for _, r := range id {
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == '_' || r == '-':
			if next && b.Len() > 0 {
				r = unicode.ToUpper(r)
			}
			next = false
			b.WriteRune(r)
		default:
			next = true
		}
	}
	name := b.String()
	if name == "" {
		return ""
	}
	if !operationName.MatchString(name) {
		name = "op" + name
	}
	return name
}

// paramNameFrom makes a parameter name of a document into one a route and an operation
// path accept: letters, digits and '_', not starting with a digit ("pet-id" is "pet_id").
func paramNameFrom(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || strings.Trim(s, "_") == "" {
		return "param"
	}
	if s[0] >= '0' && s[0] <= '9' {
		s = "_" + s
	}
	return s
}
