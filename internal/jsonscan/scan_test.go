package jsonscan_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/jsonscan"
)

// grammarCases exercise every rule of the grammar and every error encoding/json can report,
// each in the contexts that change its wording: top level, array element, object key and
// object value, and the end of the input in every state of the scanner.
var grammarCases = []string{
	// Values of every kind, with and without whitespace.
	`null`, `true`, `false`, `0`, `-0`, `1`, `-1`, `123`, `1.5`, `-0.0`, `1e5`, `1E5`, `1e+5`,
	`1e-5`, `1.25e-10`, `0e0`, `9223372036854775808`, `1e400`, `""`, `"a"`, `[]`, `{}`,
	" \t\r\n1 \t\r\n", " [ 1 , 2 ] ", " { \"a\" : 1 , \"b\" : [ ] } ", `[[[]]]`, `{"a":{"b":{}}}`,
	`[1,"two",null,true,false,{"k":[]},-3.5e2]`, `{"a":1,"a":2}`, `{"":0}`, `[{},[],""]`,

	// Strings: escapes, Unicode, surrogates, invalid UTF-8, control characters.
	`"\"\\\/\b\f\n\r\t"`, `"\u0000\u001f\u007f\u00e9\u20ac"`, `"\uD83D\uDE00"`, `"\ud83d\ude00"`,
	`"\uD83D"`, `"\uDE00"`, `"\uD83Dx"`, `"\uD83D\u0041"`, `"\uD83D\uD83D\uDE00"`, `"\uDE00\uD83D"`,
	`"\uD83D\\"`, `"\uD83D\n"`, `"a\uD83D"`, "\"caf\xc3\xa9\"", "\"\xff\"", "\"a\xffb\xfe\"",
	"\"\xc3\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"", "\"\xef\xbf\xbd\"",
	"\"\u2028\u2029\"", "\"\x7f\"", "\"\x1f\"", "\"\x00\"", "\"a\tb\"", "\"\n\"",
	`"\q"`, `"\'"`, `"\U0041"`, `"\u00"`, `"\u00g0"`, `"\uGGGG"`, `"\u12`, `"\`, `"\u`, `"abc`,
	`"`, `"\u123`, `"\u1`, `"\"`, `["\x"]`, `{"\u0061":1,"a":2}`, `{"\ud800":1,"\udfff":2}`,
	"{\"\xff\":1,\"\xfe\":2}", `{"a\"b":1}`,

	// Numbers: every invalid shape and every place the input can end.
	`-`, `--1`, `+1`, `01`, `00`, `-01`, `1.`, `1.e5`, `.5`, `1e`, `1e+`, `1e-`, `1ee5`, `1.5.5`,
	`1x`, `-x`, `1.x`, `1ex`, `1e+x`, `0x10`, `1 2`, `[01]`, `[1.]`, `[-]`, `[1e]`, `[-`, `[1.`,
	`[1e`, `[1e-`, `[1`, `{"a":1.}`, `{"a":-}`, `{"a":0`, `Infinity`, `NaN`, `-Infinity`,

	// Literals: every wrong or missing letter.
	`t`, `tr`, `tru`, `trux`, `truex`, `tx`, `f`, `fa`, `fal`, `fals`, `falsy`, `fx`, `n`, `nu`,
	`nul`, `nulL`, `nil`, `True`, `NULL`, `[t]`, `[nul]`, `{"a":tru}`, `[true false]`,

	// Arrays and objects: every wrong byte after every token.
	`[`, `]`, `[,]`, `[1,]`, `[,1]`, `[1,,2]`, `[1 2]`, `[1:2]`, `[1}`, `{]`, `[}`, `{`, `}`,
	`{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{"a"::1}`, `{"a":1,}`, `{"a":1 "b":2}`, `{"a":1;}`,
	`{a:1}`, `{'a':1}`, `{1:2}`, `{"a":1]`, `{"a"`, `{"a":`, `{"a":1`, `{"a":1,`, `{"a":1,"`,
	`[[]`, `[[],`, `[{}`, `{"a":[}`, `{"a":{]}`, `{"a":[1,2]]`,

	// The top level: empty, whitespace only, trailing bytes, non-JSON whitespace.
	``, ` `, "\t\r\n", `{} {}`, `{}}`, `[]]`, `{}x`, `1 x`, `"a""b"`, "\x00", "\ufeff{}",
	"\xa0{}", "{}\xa0", "\v1", "1\f", `'a'`, "\x80", "\xff",
}

func TestAgainstEncodingJSON(t *testing.T) {
	for _, c := range grammarCases {
		data := []byte(c)
		compareValidate(t, data)
		compareDecode(t, data)
		compareStream(t, data)
		compareWalk(t, data)
	}
}

// TestErrors pins a few errors down by value, so that they are documented here and not only
// by encoding/json's behaviour at the time of the test.
func TestErrors(t *testing.T) {
	tests := []struct {
		in        string
		offset    int64
		msg       string
		truncated bool
	}{
		{``, 0, "unexpected end of JSON input", true},
		{`  `, 2, "unexpected end of JSON input", true},
		{`{"a":1,}`, 8, "invalid character '}' looking for beginning of object key string", false},
		{`[1,]`, 4, "invalid character ']' looking for beginning of value", false},
		{`{"a" 1}`, 6, "invalid character '1' after object key", false},
		{`{"a":1 2}`, 8, "invalid character '2' after object key:value pair", false},
		{`[1 2]`, 4, "invalid character '2' after array element", false},
		{`{} x`, 4, "invalid character 'x' after top-level value", false},
		{"\"a\x01\"", 3, `invalid character '\x01' in string literal`, false},
		{`"\q"`, 3, "invalid character 'q' in string escape code", false},
		{`"\u12x4"`, 6, `invalid character 'x' in \u hexadecimal character escape`, false},
		{`-`, 1, "invalid character ' ' in numeric literal", true},
		{`1.`, 2, "invalid character ' ' after decimal point in numeric literal", true},
		{`1e+`, 3, "invalid character ' ' in exponent of numeric literal", true},
		{`nul`, 3, "invalid character ' ' in literal null (expecting 'l')", true},
		{`"\`, 2, "invalid character ' ' in string escape code", true},
		{`["abc`, 5, "unexpected end of JSON input", true},
		{`'a'`, 1, `invalid character '\'' looking for beginning of value`, false},
		{`["a"}`, 5, `invalid character '}' after array element`, false},
		{"\xff", 1, "invalid character 'ÿ' looking for beginning of value", false},
		{strings.Repeat("[", jsonscan.MaxDepth+1), jsonscan.MaxDepth + 1, "invalid character '[' exceeded max depth", false},
	}
	for _, tt := range tests {
		err := jsonscan.Validate([]byte(tt.in))
		var se *jsonscan.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Validate(%.40q) = %v, want a *SyntaxError", tt.in, err)
			continue
		}
		want := jsonscan.SyntaxError{Offset: tt.offset, Msg: tt.msg, Truncated: tt.truncated}
		if *se != want {
			t.Errorf("Validate(%.40q) = %+v, want %+v", tt.in, *se, want)
		}
	}
}

// TestDepth checks the nesting limit at its edge, for arrays, objects and both mixed, in
// values and in keys' positions, against encoding/json.
func TestDepth(t *testing.T) {
	nest := func(depth int, open, close, inner string) []byte {
		return []byte(strings.Repeat(open, depth) + inner + strings.Repeat(close, depth))
	}
	for _, depth := range []int{jsonscan.MaxDepth - 1, jsonscan.MaxDepth, jsonscan.MaxDepth + 1} {
		for _, data := range [][]byte{
			nest(depth, "[", "]", ""),
			nest(depth, `{"a":`, "}", "1"),
			nest(depth/2, `[{"k":`, "}]", string(nest(depth%2, "[", "]", "null"))),
			nest(depth, "[", "]", "")[:depth], // open only: which error comes first
		} {
			compareValidate(t, data)
			compareDecode(t, data)
			if err := jsonscan.Validate(data); (err == nil) != (depth <= jsonscan.MaxDepth && data[len(data)-1] != '[') {
				t.Errorf("depth %d, %.20q...: Validate = %v", depth, data, err)
			}
		}
	}
	// The limit counts open containers, not all containers: many shallow ones are fine.
	wide := []byte("[" + strings.Repeat("[],", 3*jsonscan.MaxDepth) + "[]]")
	if err := jsonscan.Validate(wide); err != nil {
		t.Errorf("wide array: %v", err)
	}
}

// TestWalk walks a batch of events the way message decoding does: the array element by
// element, each object member by member, skipping some values and entering others.
func TestWalk(t *testing.T) {
	data := []byte(` [ {"id":"a","data":{"x":[1,2]},"caf\u00e9":true} , 7, {"n\\m":"v"}, {} ] `)
	var got []string
	s := jsonscan.NewScanner(data)
	if err := s.EnterArray(); err != nil {
		t.Fatal(err)
	}
	for {
		more, err := s.NextElement()
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
		k, err := s.Peek()
		if err != nil {
			t.Fatal(err)
		}
		if k != jsonscan.Object {
			v, err := s.Skip()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, k.String()+"="+string(v))
			continue
		}
		if err := s.EnterObject(); err != nil {
			t.Fatal(err)
		}
		got = append(got, "{")
		for {
			key, more, err := s.NextMember()
			if err != nil {
				t.Fatal(err)
			}
			if !more {
				break
			}
			v, err := s.Skip()
			if err != nil {
				t.Fatal(err)
			}
			plain := "escaped"
			if key.Plain {
				plain = "plain"
			}
			got = append(got, string(key.Raw)+"("+plain+","+key.String()+")="+string(v))
		}
		got = append(got, "}")
	}
	if err := s.End(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"{", `id(plain,id)="a"`, `data(plain,data)={"x":[1,2]}`, `caf\u00e9(escaped,café)=true`, "}",
		"number=7",
		"{", `n\\m(escaped,n\m)="v"`, "}",
		"{", "}",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("walk gave\n%q\nwant\n%q", got, want)
	}
	if s.Offset() != len(data) {
		t.Errorf("Offset = %d after End, want %d", s.Offset(), len(data))
	}
}

// TestErrorsStick checks that the first error stops the scanner, so that a caller that
// misses one cannot read on from a confused position.
func TestErrorsStick(t *testing.T) {
	s := jsonscan.NewScanner([]byte(`[1 2, 3]`))
	if err := s.EnterArray(); err != nil {
		t.Fatal(err)
	}
	if more, err := s.NextElement(); !more || err != nil {
		t.Fatalf("first element: %v %v", more, err)
	}
	if _, err := s.Skip(); err != nil {
		t.Fatal(err)
	}
	_, first := s.NextElement()
	if first == nil || s.Err() != first {
		t.Fatalf("NextElement = %v, Err = %v: want the same error", first, s.Err())
	}
	for _, err := range []error{
		func() error { _, err := s.NextElement(); return err }(),
		func() error { _, _, err := s.NextMember(); return err }(),
		func() error { _, err := s.Skip(); return err }(),
		func() error { _, err := s.Peek(); return err }(),
		func() error { _, err := s.Decode(); return err }(),
		s.EnterArray(),
		s.End(),
	} {
		if err != first {
			t.Errorf("after an error, a call returned %v, want %v", err, first)
		}
	}
}

// TestEnterWrongKind checks that entering a value of another kind is reported as a misuse,
// not as a syntax error, and leaves the scanner usable.
func TestEnterWrongKind(t *testing.T) {
	s := jsonscan.NewScanner([]byte(` "x" `))
	err := s.EnterObject()
	var se *jsonscan.SyntaxError
	if err == nil || errors.As(err, &se) || !strings.Contains(err.Error(), "string, not an object") {
		t.Fatalf("EnterObject on a string = %v", err)
	}
	if err := s.EnterArray(); err == nil || !strings.Contains(err.Error(), "not an array") {
		t.Fatalf("EnterArray on a string = %v", err)
	}
	if v, err := s.Skip(); err != nil || string(v) != `"x"` {
		t.Fatalf("Skip after a misuse = %q, %v", v, err)
	}
	if err := s.End(); err != nil {
		t.Fatal(err)
	}
}

func TestReset(t *testing.T) {
	var s jsonscan.Scanner
	if _, err := s.Skip(); err == nil {
		t.Fatal("the zero Scanner read a value from no input")
	}
	s.Reset([]byte(`[true]`))
	if v, err := s.Skip(); err != nil || string(v) != `[true]` {
		t.Fatalf("Skip after Reset = %q, %v", v, err)
	}
}

func TestKindString(t *testing.T) {
	want := map[jsonscan.Kind]string{
		jsonscan.Invalid: "invalid", jsonscan.Null: "null", jsonscan.Bool: "bool", jsonscan.Number: "number",
		jsonscan.String: "string", jsonscan.Array: "array", jsonscan.Object: "object",
	}
	for k, name := range want {
		if k.String() != name {
			t.Errorf("Kind %d = %q, want %q", k, k.String(), name)
		}
	}
	for in, k := range map[string]jsonscan.Kind{`{}`: jsonscan.Object, `[]`: jsonscan.Array, `""`: jsonscan.String,
		`-1`: jsonscan.Number, `7`: jsonscan.Number, `true`: jsonscan.Bool, `false`: jsonscan.Bool, `null`: jsonscan.Null} {
		s := jsonscan.NewScanner([]byte(in))
		if got, err := s.Peek(); got != k || err != nil {
			t.Errorf("Peek(%s) = %v, %v; want %v", in, got, err, k)
		}
	}
}

// TestNoAllocations holds the scanner to its purpose: checking and walking input allocates
// nothing.
func TestNoAllocations(t *testing.T) {
	data := []byte(orderEvent)
	if n := testing.AllocsPerRun(100, func() {
		if err := jsonscan.Validate(data); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Validate allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		s := jsonscan.NewScanner(data)
		if err := s.EnterObject(); err != nil {
			t.Fatal(err)
		}
		for {
			key, more, err := s.NextMember()
			if err != nil {
				t.Fatal(err)
			}
			if !more {
				break
			}
			if string(key.Raw) == "never" {
				t.Fatal("unexpected key")
			}
			if _, err := s.Skip(); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.End(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("walking an event allocates %v times", n)
	}
	escaped := []byte(`caf\u00e9 \ud83d\ude00 \"quoted\"`)
	if n := testing.AllocsPerRun(100, func() { _ = jsonscan.Unquote(escaped) }); n != 1 {
		t.Errorf("Unquote of a short escaped string allocates %v times, want 1 (the result)", n)
	}
}

func TestDecodeShapes(t *testing.T) {
	v, err := jsonscan.Decode([]byte(`{"a":[],"b":{},"n":-1.50,"s":"x\u0041","t":true,"f":false,"z":null,"a":[1]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"a": []any{json.Number("1")}, "b": map[string]any{}, "n": json.Number("-1.50"),
		"s": "xA", "t": true, "f": false, "z": nil,
	}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("Decode = %#v, want %#v", v, want)
	}
	// An empty array is an empty slice, never nil, as in encoding/json.
	v, _ = jsonscan.Decode([]byte(`[]`))
	if a, ok := v.([]any); !ok || a == nil {
		t.Errorf("Decode([]) = %#v, want a non-nil empty []any", v)
	}
	// A big document grows the decoder's stack past its pooled size.
	big := "[" + strings.Repeat(`{"k":[1,2,3]},`, 3000) + "{}]"
	compareDecode(t, []byte(big))
}
