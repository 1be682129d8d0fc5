package gateway

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/expr"
)

// mappedRoute is a proxy route whose answer is mapped by body (jq), with the given status
// and headers of its own.
func mappedRoute(t *testing.T, body string, status int, headers map[string]string) *Route {
	t.Helper()
	m := &Response{Body: body, Status: status, Headers: headers}
	if body != "" {
		prog, err := expr.Compile(body)
		if err != nil {
			t.Fatal(err)
		}
		m.body, m.readsHeaders = prog, needsOf([]byte(body))&needHeaders != 0
	}
	return &Route{Proxy: &Proxy{Response: m}}
}

// TestMapAnswerSharesOnlyWhatNobodyChanges checks the answers of response mappings that
// reuse their input document, share the empty headers object and share answer headers:
// a mapping that updates its input (jq copies what it updates) leaves nothing behind for
// the next, and an answer with headers of its route's own has a header of its own.
func TestMapAnswerSharesOnlyWhatNobodyChanges(t *testing.T) {
	ctx := context.Background()
	backend := func() *connector.Outcome {
		return &connector.Outcome{Status: 200, Headers: http.Header{"Etag": {`"v7"`}}, Body: map[string]any{"sku": "A1", "cents": 1999}}
	}
	// Updates of the input, on jq's path: the headers object and the document itself.
	for _, src := range []string{`.headers.x = 1 | .headers`, `.status = 500 | .extra = true | {s: .status, e: .extra}`, `del(.body) | .`} {
		if _, err := mapAnswer(ctx, mappedRoute(t, src, 0, nil), backend()); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
	}
	cases := []struct {
		name, body string
		status     int
		headers    map[string]string
		wantStatus int
		wantBody   string
		wantHeader http.Header
	}{
		{"direct evaluator", `{id: .body.sku, price: (.body.cents / 100), s: .status}`, 0, nil, 200, `{"id":"A1","price":19.99,"s":200}`, http.Header{"Content-Type": {"application/json"}}},
		{"whole input, no header read", `.`, 0, nil, 200, `{"body":{"cents":1999,"sku":"A1"},"headers":{},"status":200}`, http.Header{"Content-Type": {"application/json"}}},
		{"headers read", `{etag: .headers.etag, all: .headers}`, 0, nil, 200, `{"all":{"etag":"\"v7\""},"etag":"\"v7\""}`, http.Header{"Content-Type": {"application/json"}}},
		{"headers of the route's own", `{id: .body.sku}`, 203, map[string]string{"cache-control": "no-store", "Content-Type": "text/plain"}, 203, `{"id":"A1"}`,
			http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}}},
		{"null is no content", `null`, 0, map[string]string{"X-Kind": "none"}, 204, ``, http.Header{"X-Kind": {"none"}}},
		{"null, nothing of the route's own", `null`, 0, nil, 204, ``, http.Header{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Twice: the second answer comes from reused state.
			for range 2 {
				an, err := mapAnswer(ctx, mappedRoute(t, c.body, c.status, c.headers), backend())
				if err != nil {
					t.Fatal(err)
				}
				if an.status != c.wantStatus || string(an.body) != c.wantBody {
					t.Errorf("answer %d %s, want %d %s", an.status, an.body, c.wantStatus, c.wantBody)
				}
				if len(an.header) != len(c.wantHeader) {
					t.Errorf("header %v, want %v", an.header, c.wantHeader)
				}
				for k, v := range c.wantHeader {
					if got := an.header.Get(k); got != v[0] {
						t.Errorf("header %s = %q, want %q", k, got, v[0])
					}
				}
			}
		})
	}
	if len(noHeaders) != 0 || len(noHeader) != 0 || len(rawJSONHeader) != 1 || rawJSONHeader.Get("Content-Type") != "application/json" {
		t.Errorf("a shared value changed: noHeaders %v, noHeader %v, rawJSONHeader %v", noHeaders, noHeader, rawJSONHeader)
	}
}

// TestMapAnswerFromRawJSON: a backend answer left as JSON text (connector Outcome.Raw)
// maps to what its decoded form maps to, on the direct evaluator's path and on jq's, and
// a route with no body mapping passes the text on.
func TestMapAnswerFromRawJSON(t *testing.T) {
	ctx := context.Background()
	const text = `{"sku":"A1","cents":1999,"sku":"B2","tags":["x"],"dims":{"w":2}}`
	for _, c := range []struct {
		body   string
		status int
	}{
		{`{id: .body.sku, price: (.body.cents / 100), w: .body.dims.w, none: .body.nothing.deeper}`, 0},
		{`{tags: .body.tags, dims: .body.dims, s: .status}`, 201},
		{`.body`, 0},
		{`.`, 0},
		{`{first: .body.tags[0]}`, 0},
		{`.body | keys`, 0},
		{`{id: .body.sku.deeper}`, 0},
		{``, 202},
	} {
		decoded, err := expr.DecodeJSON([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		rt := mappedRoute(t, c.body, c.status, nil)
		want, werr := mapAnswer(ctx, rt, &connector.Outcome{Status: 200, Headers: http.Header{}, Body: decoded})
		got, gerr := mapAnswer(ctx, rt, &connector.Outcome{Status: 200, Headers: http.Header{}, Raw: []byte(text)})
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%s: error %v from the text, %v from the decoded answer", c.body, gerr, werr)
		}
		if werr != nil {
			continue
		}
		if c.body == "" {
			// Nothing to map: the text is the answer, as the route's own encoding of the
			// decoded answer would say it.
			if got.status != 202 || string(got.body) != text {
				t.Errorf("no body mapping: %d %s, want 202 and the text", got.status, got.body)
			}
			continue
		}
		if got.status != want.status || string(got.body) != string(want.body) {
			t.Errorf("%s: %d %s from the text, %d %s from the decoded answer", c.body, got.status, got.body, want.status, want.body)
		}
	}
	// Text the connector let through that is not JSON after all fails the mapping on jq's
	// path; the direct path never decodes what it does not read.
	_, err := mapAnswer(ctx, mappedRoute(t, `.body | keys`, 0, nil), &connector.Outcome{Status: 200, Raw: []byte(`{"a":`)})
	if !errors.Is(err, errResponseMapping) {
		t.Errorf("broken text: %v, want %v", err, errResponseMapping)
	}
}

// BenchmarkMapAnswer maps a small backend answer as the benchmark's policies route does:
// decoded first (as the connector did for a route with a body mapping) and left as text
// (as it does now).
func BenchmarkMapAnswer(b *testing.B) {
	t := &testing.T{}
	rt := mappedRoute(t, `{id: .body.id, name: .body.name, price: (.body.price_cents / 100), available: .body.in_stock}`, 0, nil)
	text := []byte(`{"id":"42","name":"widget","price_cents":1999,"in_stock":true}`)
	ctx := context.Background()
	b.Run("decoded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			body, err := expr.DecodeJSON(text)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := mapAnswer(ctx, rt, &connector.Outcome{Status: 200, Body: body}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := mapAnswer(ctx, rt, &connector.Outcome{Status: 200, Raw: text}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
