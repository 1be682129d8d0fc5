// Package expr is Causeway's one expression language: jq, as implemented by gojq. Filters
// (a jq program that yields a boolean), mappings (a jq program that yields the new JSON) and
// templates ("order/${{ .data.orderId }}" inside otherwise literal values) are compiled when
// the definitions load, so a syntax error is a validate error, and they run with a time and
// a size limit, so that one bad expression cannot stall or swamp a node.
//
// The input document of every expression is the same shape, {message, data, steps, vars,
// system}; building it is the caller's business (see Input).
//
// Expressions see nothing of the process: $ENV and env are empty (the environment holds
// secrets), and input, inputs and debug do not exist.
package expr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/itchyny/gojq"

	"github.com/causeway/causeway/internal/jsonscan"
)

// Limits bound one evaluation.
type Limits struct {
	// Timeout is how long one evaluation may run.
	Timeout time.Duration
	// MaxBytes bounds the size of a result, roughly as JSON text.
	MaxBytes int
}

// DefaultLimits are the limits of a Program unless WithLimits says otherwise: generous for
// any mapping of a message, small enough that a runaway expression is stopped quickly.
var DefaultLimits = Limits{Timeout: time.Second, MaxBytes: 4 << 20}

// Program is a compiled jq program. It is safe for concurrent use.
type Program struct {
	src    string
	code   *gojq.Code
	limits Limits
	// fast runs the program without jq when it is simple enough (see fast.go).
	fast fastNode
}

// SyntaxError is a jq program that does not compile. Offset is the byte offset in the
// program where the parser stopped, or -1 when the error is not about one place (an
// undefined function, say).
type SyntaxError struct {
	Src    string
	Offset int
	Msg    string
}

// Error gives the message with where it happened, as "jq: unexpected token "}" at column 7
// of .data.}".
func (e *SyntaxError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("jq: %s in %s", e.Msg, quoteExpr(e.Src))
	}
	return fmt.Sprintf("jq: %s at column %d of %s", e.Msg, e.Offset+1, quoteExpr(e.Src))
}

// quoteExpr shows an expression in a message, shortened when long.
func quoteExpr(s string) string {
	const max = 60
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// noEnviron is the environment expressions see: none. The process environment holds
// secrets (CAUSEWAY_SECRET_*) that must not reach a message or a run history.
func noEnviron() []string { return nil }

// Compile compiles a jq program.
func Compile(src string) (*Program, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		var pe *gojq.ParseError
		if errors.As(err, &pe) {
			off := pe.Offset - len(pe.Token)
			if off < 0 || off > len(src) {
				off = min(max(pe.Offset, 0), len(src))
			}
			return nil, &SyntaxError{Src: src, Offset: off, Msg: pe.Error()}
		}
		return nil, &SyntaxError{Src: src, Offset: -1, Msg: err.Error()}
	}
	code, err := gojq.Compile(q, gojq.WithEnvironLoader(noEnviron))
	if err != nil {
		return nil, &SyntaxError{Src: src, Offset: -1, Msg: err.Error()}
	}
	return &Program{src: src, code: code, limits: DefaultLimits, fast: compileFast(q)}, nil
}

// MustCompile is Compile for programs written in Go code; it panics on an error, so it must
// never see a program that came from a definition or the network.
func MustCompile(src string) *Program {
	p, err := Compile(src)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the program's source.
func (p *Program) String() string { return p.src }

// WithLimits returns a copy of p that evaluates under l.
func (p *Program) WithLimits(l Limits) *Program {
	c := *p
	c.limits = l
	return &c
}

// EvalError is an evaluation that failed: a jq error, no result, the time limit, or a
// result over the size limit.
type EvalError struct {
	Src string
	Err error
}

// Error says which expression failed and why.
func (e *EvalError) Error() string { return fmt.Sprintf("jq %s: %v", quoteExpr(e.Src), e.Err) }

// Unwrap gives the cause, so errors.Is finds context.DeadlineExceeded and ErrTooLarge.
func (e *EvalError) Unwrap() error { return e.Err }

// Errors an evaluation can end with.
var (
	// ErrNoResult is a program that yielded nothing (empty, or select that did not match).
	ErrNoResult = errors.New("the expression yielded no value")
	// ErrTooLarge is a result over Limits.MaxBytes.
	ErrTooLarge = errors.New("the result is over the size limit")
)

// Eval runs p on input and returns its first result. input must be built from JSON values:
// nil, bool, numbers (int, float64, *big.Int or json.Number), string, []any and
// map[string]any, as DecodeJSON returns them.
func (p *Program) Eval(ctx context.Context, input any) (any, error) {
	if p.fast != nil {
		if v, ok := p.fast.eval(input, nil); ok {
			if p.limits.MaxBytes > 0 && !fits(v, p.limits.MaxBytes) {
				return nil, &EvalError{Src: p.src, Err: fmt.Errorf("%w of %d bytes", ErrTooLarge, p.limits.MaxBytes)}
			}
			return v, nil
		}
		// What the direct evaluator gives up on (an error, most often) is jq's to run.
	}
	if p.limits.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.limits.Timeout)
		defer cancel()
	}
	iter := p.code.RunWithContext(ctx, input)
	v, ok := iter.Next()
	if !ok {
		return nil, &EvalError{Src: p.src, Err: ErrNoResult}
	}
	if err, isErr := v.(error); isErr {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("stopped after %s: %w", p.limits.Timeout, context.DeadlineExceeded)
		}
		return nil, &EvalError{Src: p.src, Err: err}
	}
	if p.limits.MaxBytes > 0 && !fits(v, p.limits.MaxBytes) {
		return nil, &EvalError{Src: p.src, Err: fmt.Errorf("%w of %d bytes", ErrTooLarge, p.limits.MaxBytes)}
	}
	return v, nil
}

// Bool runs p as a filter: its first result must be a boolean.
func (p *Program) Bool(ctx context.Context, input any) (bool, error) {
	v, err := p.Eval(ctx, input)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, &EvalError{Src: p.src, Err: fmt.Errorf("a filter must yield true or false, got %s", TypeName(v))}
	}
	return b, nil
}

// fits reports whether v, written as JSON, would take at most limit bytes. It counts
// without encoding and stops as soon as the limit is passed.
func fits(v any, limit int) bool {
	_, ok := grow(0, v, limit)
	return ok
}

// grow adds to n the size fits counts for v, and reports whether the sum stayed within
// limit; it stops as soon as it does not.
func grow(n int, v any, limit int) (int, bool) {
	var ok bool
	switch v := v.(type) {
	case string:
		n += len(v) + 2
	case map[string]any:
		n += 2
		for k, e := range v {
			n += len(k) + 4
			if n > limit {
				return n, false
			}
			if n, ok = grow(n, e, limit); !ok {
				return n, false
			}
		}
	case []any:
		n += 2
		for _, e := range v {
			n++
			if n > limit {
				return n, false
			}
			if n, ok = grow(n, e, limit); !ok {
				return n, false
			}
		}
	case *big.Int:
		n += len(v.String())
	default:
		n += 8
	}
	return n, n <= limit
}

// TypeName names the JSON type of a value, for messages.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case int, float64, *big.Int, json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// DecodeJSON decodes JSON text into the values expressions work on, keeping numbers exact
// (as json.Number).
func DecodeJSON(data []byte) (any, error) {
	s := jsonscan.NewScanner(data)
	v, err := s.Decode()
	if err != nil {
		return nil, err
	}
	if err := s.End(); err != nil {
		return nil, err
	}
	return v, nil
}

// Input is the input document of an expression: the trigger message's envelope, its data,
// the outputs of the steps so far, the run's variables, and facts about the system called.
type Input struct {
	Message map[string]any
	Data    any
	Steps   map[string]any
	Vars    map[string]any
	System  map[string]any
}

// Doc returns the input as the JSON object expressions see: {message, data, steps, vars,
// system}, empty objects for what is not set.
func (in Input) Doc() map[string]any {
	orEmpty := func(m map[string]any) map[string]any {
		if m == nil {
			return map[string]any{}
		}
		return m
	}
	return map[string]any{
		"message": orEmpty(in.Message),
		"data":    in.Data,
		"steps":   orEmpty(in.Steps),
		"vars":    orEmpty(in.Vars),
		"system":  orEmpty(in.System),
	}
}

// ToString renders a result inside a template: a string as itself, anything else as JSON.
func ToString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(normalize(v)); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// normalize makes a result encodable by encoding/json: gojq may return *big.Int, which
// encodes as an object otherwise.
func normalize(v any) any {
	switch v := v.(type) {
	case *big.Int:
		return json.Number(v.String())
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

// MarshalJSON encodes a result as JSON text.
func MarshalJSON(v any) ([]byte, error) {
	if hasBig(v) {
		v = normalize(v)
	}
	if b, ok := appendJSON(make([]byte, 0, 128), v); ok {
		return b, nil
	}
	return json.Marshal(v)
}

// hasBig reports whether v holds a *big.Int anywhere, which only normalize can encode:
// most values have none, and are encoded without a copy.
func hasBig(v any) bool {
	switch v := v.(type) {
	case *big.Int:
		return true
	case []any:
		for _, e := range v {
			if hasBig(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range v {
			if hasBig(e) {
				return true
			}
		}
	}
	return false
}
