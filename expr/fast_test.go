package expr

import (
	"context"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestFastAgreesWithJq generates programs within the direct evaluator's reach and inputs
// of every shape, and checks that Eval gives what jq gives: the same error or the same
// value, of the same Go type, encoded the same.
func TestFastAgreesWithJq(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	numbers := []string{"0", "1", "-1", "2", "100", "1999", "0.5", "39.80", "1e2", "-3.25",
		"9223372036854775807", "-9223372036854775808", "12345678901234567890", "1.5e300"}
	leaf := func() any {
		switch rng.IntN(7) {
		case 0:
			return nil
		case 1:
			return "text"
		case 2:
			return rng.IntN(2) == 0
		case 3:
			return []any{json.Number("1")}
		default:
			return json.Number(numbers[rng.IntN(len(numbers))])
		}
	}
	keys := []string{"a", "b", "c"}
	var value func(depth int) any
	value = func(depth int) any {
		if depth == 0 || rng.IntN(3) == 0 {
			return leaf()
		}
		m := map[string]any{}
		for _, k := range keys {
			if rng.IntN(4) > 0 {
				m[k] = value(depth - 1)
			}
		}
		return m
	}
	var program func(depth int) string
	program = func(depth int) string {
		if depth == 0 {
			switch rng.IntN(6) {
			case 0:
				// A negative literal is jq's unary minus, which the evaluator leaves to jq.
				return strings.TrimPrefix(numbers[rng.IntN(len(numbers))], "-")
			case 1:
				return `"s"`
			case 2:
				return []string{"null", "true", "false"}[rng.IntN(3)]
			default:
				n := 1 + rng.IntN(3)
				var b strings.Builder
				for range n {
					b.WriteString("." + keys[rng.IntN(len(keys))])
				}
				return b.String()
			}
		}
		switch rng.IntN(4) {
		case 0:
			return program(0)
		case 1:
			ops := []string{"+", "-", "*", "/"}
			return "(" + program(depth-1) + " " + ops[rng.IntN(4)] + " " + program(depth-1) + ")"
		default:
			var parts []string
			for _, k := range keys[:1+rng.IntN(3)] {
				key := k
				if rng.IntN(3) == 0 {
					key = `"` + k + ` x"`
				}
				parts = append(parts, key+": "+program(depth-1))
			}
			return "{" + strings.Join(parts, ", ") + "}"
		}
	}
	fastRuns, encoded, rawEncoded := 0, 0, 0
	for range 3000 {
		src := program(3)
		p, err := Compile(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if p.fast == nil {
			t.Fatalf("%s: not taken by the direct evaluator", src)
		}
		jq := *p
		jq.fast = nil
		for range 5 {
			in := value(3)
			got, gerr := p.Eval(context.Background(), in)
			want, werr := jq.Eval(context.Background(), in)
			if _, ok := p.fast.eval(in, nil); ok {
				fastRuns++
			}
			if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
				t.Fatalf("%s on %v: error %v, jq's %v", src, in, gerr, werr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s on %v: %#v, jq gives %#v", src, in, got, want)
			}
			gj, _ := MarshalJSON(got)
			wj, _ := MarshalJSON(want)
			if string(gj) != string(wj) {
				t.Fatalf("%s on %v: encodes as %s, jq's as %s", src, in, gj, wj)
			}
			// The object written directly is what Eval and MarshalJSON make of it.
			data, ok := p.EncodeObject(in)
			if ok {
				encoded++
				if werr != nil || string(data) != string(wj) {
					t.Fatalf("%s on %v: written directly as %s, jq's %s (error %v)", src, in, data, wj, werr)
				}
			}
			// The same input with its objects left as JSON text gives the same, both whole
			// and as members of a decoded object (as a response mapping's body is).
			raw := RawJSON(rawText(rng, in))
			for _, rin := range []any{raw, rawMembers(rng, in)} {
				rdata, rok := p.EncodeObject(rin)
				if rok != ok || string(rdata) != string(data) {
					t.Fatalf("%s on %s: written directly from the text as %s (%v), from the decoded input as %s (%v)", src, raw, rdata, rok, data, ok)
				}
				if ok {
					rawEncoded++
				}
				fv, fok := p.fast.eval(in, nil)
				rv, rok := p.fast.eval(rin, nil)
				if fok != rok || (fok && !reflect.DeepEqual(fv, rv)) {
					t.Fatalf("%s on %s: evaluates from the text to %#v (%v), from the decoded input to %#v (%v)", src, raw, rv, rok, fv, fok)
				}
			}
		}
	}
	if encoded < 1000 {
		t.Fatalf("EncodeObject wrote only %d of 15000 results", encoded)
	}
	t.Logf("EncodeObject wrote %d of 15000 results", encoded)
	if rawEncoded < 2*1000 {
		t.Fatalf("EncodeObject wrote only %d results from JSON text", rawEncoded)
	}
	// The generator must exercise the direct evaluator, not only the fallback.
	if fastRuns < 3000 {
		t.Fatalf("the direct evaluator ran only %d times of 15000", fastRuns)
	}
	t.Logf("direct evaluator answered %d of 15000 evaluations", fastRuns)
}

// rawText writes v as JSON text the way a backend might: spaces here and there, numbers as
// they came, and now and then a member that a later one of the same name overrides.
func rawText(rng *rand.Rand, v any) string {
	space := func() string { return []string{"", "", " ", "\n  "}[rng.IntN(4)] }
	switch v := v.(type) {
	case map[string]any:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if rng.IntN(4) == 0 {
				parts = append(parts, space()+`"`+k+`":"overridden"`)
			}
			parts = append(parts, space()+`"`+k+`"`+space()+":"+space()+rawText(rng, v[k]))
		}
		return "{" + strings.Join(parts, ",") + space() + "}"
	case []any:
		var parts []string
		for _, e := range v {
			parts = append(parts, rawText(rng, e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case json.Number:
		return string(v)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// rawMembers is v with the members of a top-level object left as JSON text.
func rawMembers(rng *rand.Rand, v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[k] = RawJSON(rawText(rng, e))
	}
	return out
}

// TestRawJSONMembers reads members from JSON text as decoding it would, scanning the text
// and through an index of its members.
func TestRawJSONMembers(t *testing.T) {
	for _, tc := range []struct {
		text, key, want string
		ok              bool
	}{
		{`{"a":1,"b":{"c":2}}`, "b", `{"c":2}`, true},
		{`{"a":1,"a":"last"}`, "a", `"last"`, true},
		{`{"\u0061":3}`, "a", `3`, true},
		{`{"a":1}`, "z", ``, true},
		{`null`, "a", ``, true},
		{`[1]`, "a", ``, false},
		{`"a"`, "a", ``, false},
		{`{"a":1`, "a", ``, false},
		{`{"a":1} x`, "a", ``, false},
	} {
		got, ok := member([]byte(tc.text), tc.key)
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("%s .%s: %q %v, want %q %v", tc.text, tc.key, got, ok, tc.want, tc.ok)
		}
		// The same through an index of the text's members, twice: built, then used.
		var ix rawIndex
		for range 2 {
			got, ok = ix.member(RawJSON(tc.text), tc.key)
			if ok != tc.ok || string(got) != tc.want {
				t.Errorf("%s .%s indexed: %q %v, want %q %v", tc.text, tc.key, got, ok, tc.want, tc.ok)
			}
		}
	}
}

// TestFastMapping is the kind of mapping routes and flows use, through the direct
// evaluator.
func TestFastMapping(t *testing.T) {
	p := MustCompile(`{id: .body.id, name: .body.name, price: (.body.price_cents / 100), available: .body.in_stock}`)
	if p.fast == nil {
		t.Fatal("a mapping of paths and a division is not taken by the direct evaluator")
	}
	in, _ := DecodeJSON([]byte(`{"body":{"id":"42","name":"widget","price_cents":1999,"in_stock":true}}`))
	v, err := p.Eval(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := MarshalJSON(v); string(out) != `{"available":true,"id":"42","name":"widget","price":19.99}` {
		t.Fatalf("mapped: %s", out)
	}
	if _, ok := p.fast.eval(in, nil); !ok {
		t.Fatal("the direct evaluator gave up on the plain case")
	}
	// A division that jq refuses is jq's error.
	bad, _ := DecodeJSON([]byte(`{"body":{"price_cents":"lots"}}`))
	if _, err := p.Eval(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "cannot divide") {
		t.Fatalf("division of a string: %v", err)
	}
}

// TestEncodeObjectLeavesTheUnusual checks that EncodeObject declines what it must leave to
// Eval: a repeated key (jq keeps the last value), a program that is not an object, a
// result over the size limit (Eval's error), a value only jq computes, and a string the
// direct encoder does not write.
func TestEncodeObjectLeavesTheUnusual(t *testing.T) {
	in := map[string]any{"a": json.Number("1"), "s": "x", "q": "needs \"escaping\"", "long": strings.Repeat("x", 100)}
	for _, c := range []struct {
		src    string
		limits *Limits
	}{
		{src: `{a: .a, a: 2}`},
		{src: `.a`},
		{src: `[.a]`},
		{src: `{a: .long}`, limits: &Limits{MaxBytes: 64}},
		{src: `{a: (.s + 1)}`},
		{src: `{a: .q}`},
	} {
		p, err := Compile(c.src)
		if err != nil {
			t.Fatal(err)
		}
		if c.limits != nil {
			p = p.WithLimits(*c.limits)
		}
		// The same input as JSON text, whose strings are taken as they came.
		raw := RawJSON(`{"a":1,"s":"x","q":"needs \"escaping\"","long":"` + strings.Repeat("x", 100) + `"}`)
		for _, in := range []any{in, raw} {
			if data, ok := p.EncodeObject(in); ok {
				t.Errorf("%s: written directly as %s", c.src, data)
			}
		}
	}
	// Within the limit, and with keys out of order, it writes what MarshalJSON writes.
	p, err := Compile(`{z: .a, long: .long, b: {y: .s, x: (.a * 100)}}`)
	if err != nil {
		t.Fatal(err)
	}
	p = p.WithLimits(Limits{MaxBytes: 200})
	data, ok := p.EncodeObject(in)
	v, _ := p.Eval(context.Background(), in)
	want, _ := MarshalJSON(v)
	if !ok || string(data) != string(want) {
		t.Errorf("written %s (%v), want %s", data, ok, want)
	}
}
