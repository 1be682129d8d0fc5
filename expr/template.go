package expr

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Templates.
//
// A string in a definition may hold run-time expressions: "order/${{ .data.orderId }}". A
// string that is exactly one expression ("${{ .data.items }}") takes the expression's value,
// whatever its type; any other string is text with each expression's value written into it
// (a string as itself, anything else as JSON). "$${{" writes a literal "${{".
//
// An expression ends at the first "}}" before which it compiles, so an object constructor
// such as "${{ {id: .data.id} }}" needs no escaping.

// Template is a parsed string with expressions.
type Template struct {
	src   string
	parts []part
	whole *Program // set when the string is one expression and nothing else
}

// part is literal text or an expression.
type part struct {
	text string
	prog *Program
}

// TemplateError is a template that does not parse: an unterminated "${{", or an expression
// that does not compile. Offset is the byte offset in the template where the problem is.
type TemplateError struct {
	Offset int
	Err    error
}

// Error says what is wrong and where in the string.
func (e *TemplateError) Error() string {
	return fmt.Sprintf("%v (at byte %d of the string)", e.Err, e.Offset)
}

// Unwrap gives the cause, a *SyntaxError for an expression that does not compile.
func (e *TemplateError) Unwrap() error { return e.Err }

// ParseTemplate parses a string that may hold ${{ … }} expressions.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{src: s}
	var text strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${{"):
			text.WriteString("${{")
			i += 4
		case strings.HasPrefix(s[i:], "${{"):
			prog, end, err := parseExpr(s, i)
			if err != nil {
				return nil, err
			}
			if text.Len() > 0 {
				t.parts = append(t.parts, part{text: text.String()})
				text.Reset()
			}
			t.parts = append(t.parts, part{prog: prog})
			i = end
		default:
			j := strings.Index(s[i:], "$")
			if j < 0 {
				text.WriteString(s[i:])
				i = len(s)
			} else if j == 0 {
				text.WriteByte('$')
				i++
			} else {
				text.WriteString(s[i : i+j])
				i += j
			}
		}
	}
	if text.Len() > 0 {
		t.parts = append(t.parts, part{text: text.String()})
	}
	if len(t.parts) == 1 && t.parts[0].prog != nil {
		t.whole = t.parts[0].prog
	}
	return t, nil
}

// parseExpr compiles the expression that starts with "${{" at s[start:] and returns it with
// the offset just after its "}}". It tries each "}}" in turn and takes the first before
// which the expression compiles; if none does, the error is the one for the first "}}",
// which is what the writer most likely meant.
func parseExpr(s string, start int) (*Program, int, error) {
	body := start + 3
	var first error
	firstEnd := -1
	for from := body; ; {
		k := strings.Index(s[from:], "}}")
		if k < 0 {
			break
		}
		end := from + k
		src := strings.TrimSpace(s[body:end])
		if src == "" {
			if first == nil {
				first, firstEnd = errors.New("empty expression ${{ }}"), end
			}
		} else if prog, err := Compile(src); err == nil {
			return prog, end + 2, nil
		} else if first == nil {
			first, firstEnd = err, end
		}
		from = end + 1
	}
	if first == nil {
		return nil, 0, &TemplateError{Offset: start, Err: errors.New(`unterminated "${{": an expression ends with "}}" (write "$${{" for a literal "${{")`)}
	}
	off := start
	var se *SyntaxError
	if errors.As(first, &se) && se.Offset >= 0 {
		// Point into the expression: after "${{" and the spaces before it.
		lead := len(s[body:firstEnd]) - len(strings.TrimLeft(s[body:firstEnd], " \t\r\n"))
		off = body + lead + se.Offset
	}
	return nil, 0, &TemplateError{Offset: off, Err: first}
}

// String returns the template as written.
func (t *Template) String() string { return t.src }

// IsLiteral reports whether the template holds no expression at all.
func (t *Template) IsLiteral() bool {
	for _, p := range t.parts {
		if p.prog != nil {
			return false
		}
	}
	return true
}

// Literal returns the text of a template without expressions ("$${{" already turned into
// "${{").
func (t *Template) Literal() string {
	var b strings.Builder
	for _, p := range t.parts {
		b.WriteString(p.text)
	}
	return b.String()
}

// Eval evaluates the template: the expression's value for a template that is one
// expression, the text with every value written in otherwise.
func (t *Template) Eval(ctx context.Context, input any) (any, error) {
	if t.whole != nil {
		return t.whole.Eval(ctx, input)
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.prog == nil {
			b.WriteString(p.text)
			continue
		}
		v, err := p.prog.Eval(ctx, input)
		if err != nil {
			return nil, err
		}
		b.WriteString(ToString(v))
	}
	return b.String(), nil
}

// Value is a definition value (a mapping, a list or a scalar, as JSON) whose strings may
// hold templates: the "with" of a call, the "data" of a publish. Evaluating it builds a new
// value with every template replaced by its result; a value without templates is returned
// as it is, without copying.
type Value struct {
	v       any
	dynamic bool
}

// ValueError is a template inside a value that does not parse, located by the JSON pointer
// of the string that holds it, so that the definition loader can point at its line.
type ValueError struct {
	Pointer string
	Err     *TemplateError
}

// Error gives the pointer and the template's problem.
func (e *ValueError) Error() string {
	if e.Pointer == "" {
		return e.Err.Error()
	}
	return e.Pointer + ": " + e.Err.Error()
}

// Unwrap gives the template's error.
func (e *ValueError) Unwrap() error { return e.Err }

// CompileValue compiles every template in the JSON text raw. It returns every error found,
// in document order.
func CompileValue(raw []byte) (*Value, []*ValueError) {
	if len(raw) == 0 {
		return &Value{}, nil
	}
	doc, err := DecodeJSON(raw)
	if err != nil {
		return nil, []*ValueError{{Err: &TemplateError{Err: fmt.Errorf("not JSON: %w", err)}}}
	}
	var errs []*ValueError
	v, dynamic := compileNode(doc, "", &errs)
	return &Value{v: v, dynamic: dynamic}, errs
}

// compileNode replaces every string holding an expression by its *Template.
func compileNode(v any, ptr string, errs *[]*ValueError) (any, bool) {
	switch v := v.(type) {
	case string:
		if !strings.Contains(v, "${{") {
			return v, false
		}
		t, err := ParseTemplate(v)
		if err != nil {
			var te *TemplateError
			errors.As(err, &te)
			*errs = append(*errs, &ValueError{Pointer: ptr, Err: te})
			return v, false
		}
		if t.IsLiteral() {
			return t.Literal(), false
		}
		return t, true
	case []any:
		dynamic := false
		out := make([]any, len(v))
		for i, e := range v {
			var d bool
			out[i], d = compileNode(e, ptr+"/"+strconv.Itoa(i), errs)
			dynamic = dynamic || d
		}
		return out, dynamic
	case map[string]any:
		dynamic := false
		out := make(map[string]any, len(v))
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys) // errors in a stable order
		for _, k := range keys {
			var d bool
			out[k], d = compileNode(v[k], ptr+"/"+escapePointer(k), errs)
			dynamic = dynamic || d
		}
		return out, dynamic
	}
	return v, false
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// IsZero reports whether the value was left out.
func (v *Value) IsZero() bool { return v == nil || v.v == nil && !v.dynamic }

// Eval builds the value for one input.
func (v *Value) Eval(ctx context.Context, input any) (any, error) {
	if v == nil || !v.dynamic {
		if v == nil {
			return nil, nil
		}
		return v.v, nil
	}
	return evalNode(ctx, v.v, input)
}

func evalNode(ctx context.Context, v any, input any) (any, error) {
	switch v := v.(type) {
	case *Template:
		return v.Eval(ctx, input)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			r, err := evalNode(ctx, e, input)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			r, err := evalNode(ctx, e, input)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	}
	return v, nil
}

// Whole returns the program of a template that is one expression and nothing else.
func (t *Template) Whole() (*Program, bool) { return t.whole, t.whole != nil }

// Object returns the fields of a value that is a JSON object: each is a template (a string
// that holds an expression) or a constant (anything else). ok is false for any other value.
func (v *Value) Object() (map[string]any, bool) {
	if v == nil {
		return nil, false
	}
	m, ok := v.v.(map[string]any)
	return m, ok
}
