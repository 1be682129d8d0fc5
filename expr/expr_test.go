package expr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func input(t *testing.T) any {
	t.Helper()
	data, err := DecodeJSON([]byte(`{"orderId":"A-1","total":168.8,"items":[{"sku":"S1","qty":2},{"sku":"S2","qty":1}],"big":12345678901234567890}`))
	if err != nil {
		t.Fatal(err)
	}
	return Input{Message: map[string]any{"id": "m1", "type": "order.created"}, Data: data, Vars: map[string]any{"region": "eu"}}.Doc()
}

func TestEval(t *testing.T) {
	in := input(t)
	for _, tc := range []struct {
		src  string
		want string // the result as JSON
	}{
		{".data.orderId", `"A-1"`},
		{".message.type", `"order.created"`},
		{".data.items | map(.qty) | add", `3`},
		{"[.data.items[] | select(.qty > 1) | .sku]", `["S1"]`},
		{"{id: .data.orderId, region: .vars.region}", `{"id":"A-1","region":"eu"}`},
		{".steps", `{}`},
		{".data.big", `12345678901234567890`},
		{".data.total * 2", `337.6`},
		{"$ENV | length", `0`},
		{"env | length", `0`},
	} {
		v, err := MustCompile(tc.src).Eval(context.Background(), in)
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		got, err := MarshalJSON(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s = %s, want %s", tc.src, got, tc.want)
		}
	}
}

// TestNoEnvironment checks that expressions cannot read the process environment, where
// secrets live.
func TestNoEnvironment(t *testing.T) {
	t.Setenv("CAUSEWAY_SECRET_TOKEN", "hunter2")
	for _, src := range []string{`$ENV.CAUSEWAY_SECRET_TOKEN`, `env.CAUSEWAY_SECRET_TOKEN`} {
		v, err := MustCompile(src).Eval(context.Background(), nil)
		if err != nil || v != nil {
			t.Errorf("%s = %v, %v; want null", src, v, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{".data.}", `jq: unexpected token "}" at column 7 of ".data.}"`},
		{".data | ", `jq: unexpected EOF at column 9 of ".data | "`},
		{`"abc`, `jq: unterminated string literal`},
		{"nosuchfunc(1)", `jq: function not defined: nosuchfunc/1 in "nosuchfunc(1)"`},
		{"input", `jq: input(s)/0 is not allowed in "input"`},
		{"debug", `jq: function not defined: debug/0`},
	} {
		_, err := Compile(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.src, err, tc.want)
		}
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: error is %T, want *SyntaxError", tc.src, err)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	ctx := context.Background()
	in := input(t)
	for _, tc := range []struct {
		src, want string
		is        error
	}{
		{"empty", "yielded no value", ErrNoResult},
		{`error("boom")`, "boom", nil},
		{".data.orderId | tonumber", `tonumber cannot be applied to "A-1"`, nil},
		{"[range(20000)]", "over the size limit", ErrTooLarge},
		{"def f: f; f", "stopped after", context.DeadlineExceeded},
		{"last(range(1e12))", "stopped after", context.DeadlineExceeded},
	} {
		p := MustCompile(tc.src).WithLimits(Limits{Timeout: 200 * time.Millisecond, MaxBytes: 64 << 10})
		start := time.Now()
		_, err := p.Eval(ctx, in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: got %v, want %q", tc.src, err, tc.want)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("%s: took %s, the time limit did not stop it", tc.src, time.Since(start))
		}
	}
}

func TestBool(t *testing.T) {
	ctx := context.Background()
	in := input(t)
	if ok, err := MustCompile(`.data.total > 100`).Bool(ctx, in); err != nil || !ok {
		t.Errorf("true filter: %v %v", ok, err)
	}
	if ok, err := MustCompile(`.message.type == "x"`).Bool(ctx, in); err != nil || ok {
		t.Errorf("false filter: %v %v", ok, err)
	}
	_, err := MustCompile(`.data.orderId`).Bool(ctx, in)
	if err == nil || !strings.Contains(err.Error(), "a filter must yield true or false, got a string") {
		t.Errorf("non-boolean filter: %v", err)
	}
}

func TestTemplates(t *testing.T) {
	ctx := context.Background()
	in := input(t)
	for _, tc := range []struct {
		src  string
		want any
	}{
		{"plain text", "plain text"},
		{"order/${{ .data.orderId }}", "order/A-1"},
		{"${{ .data.items | length }}", 2},
		{"${{.data.items[0]}}", map[string]any{"sku": "S1", "qty": json.Number("2")}},
		{"n=${{ .data.items | length }}, first=${{ .data.items[0].sku }}", "n=2, first=S1"},
		{"obj ${{ {a: .data.orderId} }}", `obj {"a":"A-1"}`},
		{"${{ {a: {b: .data.orderId}} }}", map[string]any{"a": map[string]any{"b": "A-1"}}},
		{`${{ "}}" }}`, "}}"},
		{"cost $5 and $${{ not an expression }}", "cost $5 and ${{ not an expression }}"},
		{"${{ .vars.region }}-${{ .message.id }}", "eu-m1"},
	} {
		tpl, err := ParseTemplate(tc.src)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		got, err := tpl.Eval(ctx, in)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q = %#v, want %#v", tc.src, got, tc.want)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	for _, tc := range []struct {
		src, want string
		offset    int
	}{
		{"order/${{ .data.orderId", `unterminated "${{"`, 6},
		{"x ${{ .data. }}", `jq: unexpected EOF`, 12},
		{"x ${{ .a | }} y ${{ .b }}", `jq: unexpected EOF`, 10},
		{"${{   }}", "empty expression", 0},
		{"${{ nosuch }}", "function not defined: nosuch/0", 0},
	} {
		_, err := ParseTemplate(tc.src)
		var te *TemplateError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.src, err, tc.want)
			continue
		}
		if te.Offset != tc.offset {
			t.Errorf("%q: offset %d, want %d", tc.src, te.Offset, tc.offset)
		}
	}
}

func TestValue(t *testing.T) {
	ctx := context.Background()
	in := input(t)
	v, errs := CompileValue([]byte(`{"id":"${{ .data.orderId }}","static":{"a":[1,"two"]},"lines":["${{ .data.items | length }}","sku ${{ .data.items[1].sku }}"],"price":"$${{ x }}"}`))
	if errs != nil {
		t.Fatal(errs)
	}
	got, err := v.Eval(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := MarshalJSON(got)
	if want := `{"id":"A-1","lines":[2,"sku S2"],"price":"${{ x }}","static":{"a":[1,"two"]}}`; string(js) != want {
		t.Errorf("got %s, want %s", js, want)
	}

	// A value without templates is returned as decoded.
	static, errs := CompileValue([]byte(`{"a":1}`))
	if errs != nil || static.dynamic {
		t.Fatalf("static value: %v dynamic=%v", errs, static.dynamic)
	}

	// Every bad template is reported, with the pointer of its string.
	_, errs = CompileValue([]byte(`{"a":"${{ .x | }}","b":["ok","${{ nope( }}"],"c/d":"${{ "}`))
	var got2 []string
	for _, e := range errs {
		got2 = append(got2, e.Pointer)
	}
	if want := []string{"/a", "/b/1", "/c~1d"}; !reflect.DeepEqual(got2, want) {
		t.Errorf("error pointers %v, want %v (%v)", got2, want, errs)
	}
}

func TestToString(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"a<b", "a<b"},
		{json.Number("1.50"), "1.50"},
		{map[string]any{"k": "<v>"}, `{"k":"<v>"}`},
		{nil, "null"},
		{true, "true"},
	} {
		if got := ToString(tc.v); got != tc.want {
			t.Errorf("ToString(%#v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// TestSimplePathsAgreeWithJq checks that the programs Eval follows without jq (plain key
// paths) give what jq gives, error or value, on every shape of input.
func TestSimplePathsAgreeWithJq(t *testing.T) {
	inputs := []any{
		nil,
		map[string]any{},
		map[string]any{"path": map[string]any{"id": "42", "n": 1.5, "deep": map[string]any{"x": []any{1.0}}}},
		map[string]any{"path": "a string"},
		map[string]any{"path": []any{1.0, 2.0}},
		map[string]any{"path": nil},
		map[string]any{"path": map[string]any{"id": json.Number("39.80"), "n": json.Number("1e2"), "deep": json.Number("12345678901234567890")}},
		"top-level string",
		[]any{"a"},
		42.0,
	}
	for _, src := range []string{".path", ".path.id", " .path.deep.x ", ".path.n", ".path.missing.more", ".nope"} {
		p := MustCompile(src)
		if p.fast == nil {
			t.Fatalf("%q is not taken as a simple path", src)
		}
		jq := *p
		jq.fast = nil
		for _, in := range inputs {
			got, gerr := p.Eval(context.Background(), in)
			want, werr := jq.Eval(context.Background(), in)
			gj, _ := MarshalJSON(got)
			wj, _ := MarshalJSON(want)
			if (gerr == nil) != (werr == nil) || fmt.Sprint(got) != fmt.Sprint(want) || string(gj) != string(wj) || fmt.Sprintf("%T", got) != fmt.Sprintf("%T", want) {
				t.Errorf("%q on %#v: fast path %v, %v; jq %v, %v", src, in, got, gerr, want, werr)
			}
			if gerr != nil && gerr.Error() != werr.Error() {
				t.Errorf("%q on %#v: error %q, jq's %q", src, in, gerr, werr)
			}
		}
	}
	for _, src := range []string{".", ".a[0]", ".a | .b", ".a?", `."a b"`, ".a.b // 1", "-.a", `"x\(.a)"`, "[.a]", "{a}", "{(.k): 1}", ".a.b?"} {
		if MustCompile(src).fast != nil {
			t.Errorf("%q taken as a simple path", src)
		}
	}
}
