package httpconn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/system"
)

// seen is what the test server received.
type seen struct {
	method, path, rawQuery, body string
	header                       http.Header
}

// target starts a real HTTP server on loopback that records each request and answers
// with handle.
func target(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) (string, chan seen) {
	t.Helper()
	got := make(chan seen, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(body), r.Header.Clone()}
		handle(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, got
}

func erp(base string, auth *system.HTTPAuth) *system.Spec {
	return &system.Spec{
		Location: "cloud",
		HTTP:     &system.HTTP{BaseURL: base + "/api/", Timeout: 2 * time.Second, Headers: map[string]string{"X-Tenant": "acme"}, Auth: auth},
		Operations: map[string]*system.Operation{
			"markShipped": {HTTP: &system.HTTPOperation{Method: "POST", Path: "/orders/{orderId}/ship", Query: map[string]string{"notify": "true"}, Headers: map[string]string{"X-Op": "ship"}}},
			"getOrder":    {HTTP: &system.HTTPOperation{Method: "GET", Path: "/orders/{id}", Timeout: 200 * time.Millisecond}},
		},
	}
}

func TestCallSendsEverything(t *testing.T) {
	url, got := target(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, `{"shipped":true,"n":12345678901234567890}`)
	})
	reg := prometheus.NewPedanticRegistry()
	c := New(reg)
	defer c.Close()
	sys := erp(url, &system.HTTPAuth{Bearer: config.NewSecret("s3cret")})
	res, err := c.Do(context.Background(), "erp", sys, "markShipped", Call{
		Params:         map[string]any{"orderId": "A/100 x"},
		Query:          map[string]any{"lines": []any{"1", json.Number("2")}},
		Headers:        map[string]string{"X-Call": "yes"},
		Body:           map[string]any{"carrier": "dhl", "weight": json.Number("1.50")},
		IdempotencyKey: "run1/ship",
		Traceparent:    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.method != "POST" || r.path != "/api/orders/A%2F100%20x/ship" {
		t.Errorf("request line: %s %s", r.method, r.path)
	}
	if r.rawQuery != "lines=1&lines=2&notify=true" {
		t.Errorf("query %q", r.rawQuery)
	}
	if r.body != `{"carrier":"dhl","weight":1.50}` {
		t.Errorf("body %s", r.body)
	}
	for k, want := range map[string]string{
		"Authorization": "Bearer s3cret", "X-Tenant": "acme", "X-Op": "ship", "X-Call": "yes",
		"Content-Type": "application/json", "Idempotency-Key": "run1/ship",
		"Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	} {
		if r.header.Get(k) != want {
			t.Errorf("header %s = %q, want %q", k, r.header.Get(k), want)
		}
	}
	body, _ := res.Body.(map[string]any)
	if res.Status != 200 || body["shipped"] != true || body["n"] != json.Number("12345678901234567890") {
		t.Errorf("result %d %#v", res.Status, res.Body)
	}
	if n := testutil.Sum(t, reg, "causeway_connector_calls_total", "outcome", "ok"); n != 1 {
		t.Errorf("ok calls counted %v, want 1", n)
	}
}

func TestAuthKinds(t *testing.T) {
	url, got := target(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	c := New(nil)
	for _, tc := range []struct {
		auth         *system.HTTPAuth
		header, want string
	}{
		{&system.HTTPAuth{Basic: &system.BasicAuth{Username: "u", Password: config.NewSecret("p")}}, "Authorization", "Basic dTpw"},
		{&system.HTTPAuth{Header: &system.HeaderAuth{Name: "X-Api-Key", Value: config.NewSecret("k")}}, "X-Api-Key", "k"},
	} {
		res, err := c.Do(context.Background(), "erp", erp(url, tc.auth), "getOrder", Call{Params: map[string]any{"id": json.Number("7")}})
		if err != nil || res.Status != 204 || res.Body != nil {
			t.Fatalf("%v %v", res, err)
		}
		if r := <-got; r.header.Get(tc.header) != tc.want || r.path != "/api/orders/7" {
			t.Errorf("%s = %q (path %s), want %q", tc.header, r.header.Get(tc.header), r.path, tc.want)
		}
	}
}

func TestFailuresAreSorted(t *testing.T) {
	status := make(chan int, 1)
	url, _ := target(t, func(w http.ResponseWriter, r *http.Request) {
		code := <-status
		if code == 0 {
			time.Sleep(time.Second) // longer than getOrder's timeout
			return
		}
		if code == 503 {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"error":"nope"}`)
	})
	reg := prometheus.NewPedanticRegistry()
	c := New(reg)
	sys := erp(url, &system.HTTPAuth{Bearer: config.NewSecret("s3cret")})
	call := Call{Params: map[string]any{"id": "1"}}
	for _, tc := range []struct {
		status    int
		transient bool
		want      string
	}{
		{503, true, "call erp.getOrder: HTTP 503 Service Unavailable (transient): {\"error\":\"nope\"}"},
		{429, true, "HTTP 429"},
		{408, true, "HTTP 408"},
		{500, true, "HTTP 500"},
		{404, false, "call erp.getOrder: HTTP 404 Not Found (permanent)"},
		{400, false, "HTTP 400"},
		{302, false, "HTTP 302"},
		{0, true, "call erp.getOrder: no answer within 200ms (transient)"},
	} {
		status <- tc.status
		_, err := c.Do(context.Background(), "erp", sys, "getOrder", call)
		var ce *Error
		if !errors.As(err, &ce) || ce.Transient != tc.transient || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: got %v, want transient=%v %q", tc.status, err, tc.transient, tc.want)
			continue
		}
		if tc.status == 503 && ce.RetryAfter != 7*time.Second {
			t.Errorf("503: RetryAfter %s, want 7s", ce.RetryAfter)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%d: the error shows the secret: %v", tc.status, err)
		}
	}
	if n := testutil.Sum(t, reg, "causeway_connector_calls_total", "outcome", "permanent"); n != 3 {
		t.Errorf("permanent failures counted %v, want 3", n)
	}

	// A missing parameter is permanent and sends nothing.
	_, err := c.Do(context.Background(), "erp", sys, "getOrder", Call{})
	if ce := (*Error)(nil); !errors.As(err, &ce) || ce.Transient || !strings.Contains(err.Error(), "the path /orders/{id} needs the parameter id") {
		t.Errorf("missing parameter: %v", err)
	}
	// An undeclared operation too.
	if _, err := c.Do(context.Background(), "erp", sys, "nope", call); err == nil || !strings.Contains(err.Error(), "no such HTTP operation") {
		t.Errorf("undeclared operation: %v", err)
	}
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = New(nil).Do(context.Background(), "erp", erp("http://"+addr, nil), "getOrder", Call{Params: map[string]any{"id": "1"}})
	var ce *Error
	if !errors.As(err, &ce) || !ce.Transient || ce.Status != 0 {
		t.Fatalf("got %v, want a transient error without status", err)
	}
}

// TestLargeAnswerIsRefused sends more than the system's maxResponseBytes, and, with the
// default limit, more than 10 MiB.
func TestLargeAnswerIsRefused(t *testing.T) {
	url, _ := target(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(make([]byte, 4096))
	})
	sys := erp(url, nil)
	sys.HTTP.MaxResponseBytes = 1024
	_, err := New(nil).Do(context.Background(), "erp", sys, "markShipped", Call{Params: map[string]any{"orderId": "1"}})
	if err == nil || !strings.Contains(err.Error(), "answer over 1024 bytes") {
		t.Fatalf("got %v", err)
	}
	big, _ := target(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(make([]byte, MaxResponseBytes+10))
	})
	// markShipped has no short timeout of its own: reading 10 MiB takes a while under -race.
	_, err = New(nil).Do(context.Background(), "erp", erp(big, nil), "markShipped", Call{Params: map[string]any{"orderId": "1"}})
	if err == nil || !strings.Contains(err.Error(), "answer over") {
		t.Fatalf("got %v", err)
	}
}

// TestDotSegmentsAreRefused: a parameter of "." or ".." would make the target resolve the
// path out of the operation's; the call is refused, permanently, before any request.
func TestDotSegmentsAreRefused(t *testing.T) {
	op := &system.HTTPOperation{Method: "GET", Path: "/orders/{id}"}
	for _, v := range []string{"..", "."} {
		if _, err := buildURL("http://erp.example", op, Call{Params: map[string]any{"id": v}}); err == nil || !strings.Contains(err.Error(), "may not be . or ..") {
			t.Errorf("%q: %v", v, err)
		}
	}
	for v, want := range map[string]string{"../admin": "/orders/..%2Fadmin", "a b": "/orders/a%20b", "...": "/orders/..."} {
		got, err := buildURL("http://erp.example", op, Call{Params: map[string]any{"id": v}})
		if err != nil || !strings.HasSuffix(got, want) {
			t.Errorf("%q: %s %v", v, got, err)
		}
	}
}

// TestCallWithoutHeaders checks NoHeaders: the answer is decoded as usual, and its headers
// are Content-Type and Retry-After only, unless the operation's response mapping reads
// them.
func TestCallWithoutHeaders(t *testing.T) {
	url, _ := target(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"v7"`)
		w.Header().Set("Retry-After", "3")
		_, _ = io.WriteString(w, `{"no":"A-1"}`)
	})
	c := New(prometheus.NewPedanticRegistry())
	defer c.Close()
	sys := erp(url, nil)
	for _, tc := range []struct {
		call Call
		want string
	}{
		{Call{Params: map[string]any{"id": "1"}}, `map[Content-Type:[application/json] Etag:["v7"] Retry-After:[3]]`},
		{Call{Params: map[string]any{"id": "1"}, NoHeaders: true}, `map[Content-Type:[application/json] Retry-After:[3]]`},
	} {
		res, err := c.Do(context.Background(), "erp", sys, "getOrder", tc.call)
		if err != nil {
			t.Fatal(err)
		}
		delete(res.Headers, "Date")
		delete(res.Headers, "Content-Length")
		if fmt.Sprint(res.Headers) != tc.want || fmt.Sprint(res.Body) != "map[no:A-1]" {
			t.Errorf("NoHeaders %v: headers %v, body %v; want %s", tc.call.NoHeaders, res.Headers, res.Body, tc.want)
		}
	}
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                true,
		"Application/JSON":                true,
		"application/json; charset=utf-8": true,
		"application/json;charset=UTF-8":  true,
		"application/problem+json":        true,
		"application/json; charset":       false, // malformed: parsed, and refused
		"text/plain":                      false,
		"":                                false,
	} {
		if got := isJSON(ct); got != want {
			t.Errorf("isJSON(%q) = %v, want %v", ct, got, want)
		}
	}
}
