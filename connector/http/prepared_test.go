package httpconn

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/system"
	"github.com/prometheus/client_golang/prometheus"
)

// TestPreparedMatchesDo makes each call twice against a real server, once with Do and once
// prepared, and wants the same request on the wire and the same result or error: the
// prepared path is a faster way to the same exchange, not another connector.
func TestPreparedMatchesDo(t *testing.T) {
	url, got := target(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/text"):
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "plain words")
		case strings.HasSuffix(r.URL.Path, "/empty"):
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(r.URL.Path, "/missing"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"no such order","trace":"db01"}`)
		case strings.HasSuffix(r.URL.Path, "/busy"):
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
		case strings.HasSuffix(r.URL.Path, "/broken"):
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"half":`)
		case strings.HasSuffix(r.URL.Path, "/slow"):
			time.Sleep(400 * time.Millisecond)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("ETag", `"v1"`)
			_, _ = io.WriteString(w, `{"path":"`+r.URL.EscapedPath()+`"}`)
		}
	})
	t.Setenv("CAUSEWAY_SECRET_ERP_TOKEN", "s3cret")
	sys := loadSystem(t, t.TempDir(), `  http:
    baseURL: "`+url+`/api/"
    timeout: 2s
    headers: {X-Tenant: acme, Accept: application/vnd.erp+json}
    auth: {bearer: "${secret:ERP_TOKEN}"}
  operations:
    get: {http: {method: GET, path: "/orders/{id}/lines/{line}", headers: {X-Op: get, X-Forwarded-Host: erp.internal}}}
    fixed: {http: {method: DELETE, path: /cache}}
    slow: {http: {method: GET, path: "/{id}/slow", timeout: 100ms}}
    mapped: {http: {method: GET, path: "/orders/{id}", response: "{seen: .body.path, status: .status}"}}
`)
	c := New(prometheus.NewPedanticRegistry())
	defer c.Close()
	fwd := Forwarded{For: "203.0.113.9, 10.0.0.1", Proto: "https", Host: "api.example"}
	for _, tc := range []struct {
		op     string
		params []string
		raw    bool
	}{
		{"get", []string{"A/100 x", "2"}, false},
		{"get", []string{"A-1", "ü?#%"}, true},
		{"get", []string{"A-1", "text"}, true},
		{"get", []string{"A-1", "text"}, false},
		{"get", []string{"A-1", "empty"}, true},
		{"get", []string{"A-1", "missing"}, true},
		{"get", []string{"A-1", "busy"}, false},
		{"get", []string{"A-1", "broken"}, true},
		{"get", []string{"A-1", "broken"}, false},
		{"get", []string{"..", "1"}, false},
		{"get", []string{"A-1"}, false},
		{"fixed", nil, true},
		{"slow", []string{"x"}, true},
		{"mapped", []string{"B 2"}, true},
	} {
		name := fmt.Sprintf("%s%q raw=%v", tc.op, tc.params, tc.raw)
		p, err := c.Prepare("erp", sys, tc.op)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		op, _ := sys.Operation(tc.op)
		params := map[string]any{}
		for i, v := range tc.params {
			if i < len(p.Params()) {
				params[p.Params()[i]] = v
			}
		}
		call := Call{Params: params, Raw: tc.raw, NoHeaders: true, IdempotencyKey: "k-1", Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			Forward: http.Header{"X-Forwarded-For": {fwd.For}, "X-Forwarded-Proto": {fwd.Proto}, "X-Forwarded-Host": {fwd.Host}}}
		want, wantErr := c.Do(context.Background(), "erp", sys, tc.op, call)
		wantSeen := drain(got)
		res, err := p.Do(context.Background(), tc.params, &PreparedCall{Forwarded: fwd, IdempotencyKey: call.IdempotencyKey,
			Traceparent: call.Traceparent, Raw: tc.raw, NoHeaders: true})
		gotSeen := drain(got)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Errorf("%s: error %v, want %v", name, err, wantErr)
		}
		if a, b := describe(res), describe(want); a != b {
			t.Errorf("%s: result\n%s\nwant\n%s", name, a, b)
		}
		if a, b := fmt.Sprint(gotSeen), fmt.Sprint(wantSeen); a != b {
			t.Errorf("%s (%s %s): request\n%s\nwant\n%s", name, op.HTTP.Method, op.HTTP.Path, a, b)
		}
	}
}

// TestPrepareRefuses checks what cannot be prepared says why.
func TestPrepareRefuses(t *testing.T) {
	c := New(nil)
	defer c.Close()
	sys := erp("http://127.0.0.1:1", nil)
	for op, want := range map[string]string{"markShipped": "query of its own", "nothing": "no such HTTP operation"} {
		if _, err := c.Prepare("erp", sys, op); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", op, err, want)
		}
	}
	sys.HTTP.FollowRedirects = true
	if _, err := c.Prepare("erp2", sys, "getOrder"); err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Errorf("redirects: %v", err)
	}
}

// describe is a result without what differs from call to call (its duration, the date).
func describe(r *Result) string {
	if r == nil {
		return "<nil>"
	}
	h := r.Headers.Clone()
	delete(h, "Date")
	return fmt.Sprintf("%d %v %v %s", r.Status, h, r.Body, r.Raw)
}

// drain is the request the server saw, if any, with its headers in one order.
func drain(got chan seen) []string {
	select {
	case s := <-got:
		var out []string
		out = append(out, s.method+" "+s.path+" ?"+s.rawQuery+" "+s.body)
		for k, vs := range s.header {
			out = append(out, k+": "+strings.Join(vs, ", "))
		}
		sort.Strings(out[1:])
		return out
	case <-time.After(time.Second):
		return nil
	}
}

// TestCallDeadline checks when a call ends: the caller's deadline or the operation's
// timeout from now, whichever comes first, worked out without reading the wall clock.
func TestCallDeadline(t *testing.T) {
	sys := &system.HTTP{Timeout: 10 * time.Second}
	op := &system.HTTPOperation{}
	near := func(got, want time.Time) bool { d := got.Sub(want); return d > -time.Second && d < time.Second }

	timeout, d, ok := callDeadline(context.Background(), time.Time{}, sys, op)
	if !ok || timeout != 10*time.Second || !near(d, time.Now().Add(10*time.Second)) {
		t.Errorf("no caller deadline: %v %v %v, want now + 10s", timeout, d, ok)
	}
	far, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, d, ok := callDeadline(far, time.Time{}, sys, op); !ok || !near(d, time.Now().Add(10*time.Second)) {
		t.Errorf("caller's deadline in an hour: %v %v, want now + 10s", d, ok)
	}
	soon, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	want, _ := soon.Deadline()
	if _, d, ok := callDeadline(soon, time.Time{}, sys, op); !ok || !d.Equal(want) {
		t.Errorf("caller's deadline in 2s: %v %v, want %v", d, ok, want)
	}
	op.Timeout = time.Second
	if timeout, d, ok := callDeadline(soon, time.Time{}, sys, op); !ok || timeout != time.Second || !near(d, time.Now().Add(time.Second)) || !d.Before(want) {
		t.Errorf("operation timeout 1s: %v %v %v, want now + 1s", timeout, d, ok)
	}
	if _, _, ok := callDeadline(context.Background(), time.Time{}, &system.HTTP{}, &system.HTTPOperation{}); ok {
		t.Error("no timeout and no caller deadline, yet a deadline")
	}
	if _, d, ok := callDeadline(soon, time.Time{}, &system.HTTP{}, &system.HTTPOperation{}); !ok || !d.Equal(want) {
		t.Errorf("no timeout: %v %v, want the caller's %v", d, ok, want)
	}
	// A deadline of the call's own counts as the context's would: the sooner one.
	until := time.Now().Add(500 * time.Millisecond)
	if _, d, ok := callDeadline(soon, until, &system.HTTP{}, &system.HTTPOperation{}); !ok || !d.Equal(until) {
		t.Errorf("call's deadline sooner than the context's: %v %v, want %v", d, ok, until)
	}
	if _, d, ok := callDeadline(soon, time.Now().Add(time.Hour), &system.HTTP{}, &system.HTTPOperation{}); !ok || !d.Equal(want) {
		t.Errorf("call's deadline later than the context's: %v %v, want %v", d, ok, want)
	}
	if _, d, ok := callDeadline(context.Background(), until, sys, &system.HTTPOperation{}); !ok || !d.Equal(until) {
		t.Errorf("call's deadline sooner than the timeout: %v %v, want %v", d, ok, until)
	}
}

// TestTransportBaseOrigin checks which targets go to the client of the system's own
// origin: only those whose scheme and authority are the base URL's, whole.
func TestTransportBaseOrigin(t *testing.T) {
	tr := newTransport(nil, MaxResponseBytes, "http://127.0.0.1:8080/api/")
	for target, want := range map[string]bool{
		"http://127.0.0.1:8080/api/items/1": true,
		"http://127.0.0.1:8080/other":       true,
		"http://127.0.0.1:8080":             true,
		"http://127.0.0.1:8080?x=1":         true,
		"http://127.0.0.1:80801/api":        false,
		"http://127.0.0.1:8080.evil.test/":  false,
		"https://127.0.0.1:8080/api/":       false,
		"http://127.0.0.2:8080/api/":        false,
	} {
		if got := tr.atBase(target); got != want {
			t.Errorf("atBase(%q) = %v, want %v", target, got, want)
		}
	}
	if tr.base.Addr != "127.0.0.1:8080" || tr.base.IsTLS {
		t.Errorf("base client for %s (TLS %v)", tr.base.Addr, tr.base.IsTLS)
	}
	if tls := newTransport(nil, MaxResponseBytes, "https://erp.example.com"); tls.base.Addr != "erp.example.com:443" || !tls.base.IsTLS || !tls.atBase("https://erp.example.com/x") {
		t.Errorf("https base: %s TLS %v", tls.base.Addr, tls.base.IsTLS)
	}
	for _, bad := range []string{"ftp://h/", "http://user:pw@h/", "not a url"} {
		if tr := newTransport(nil, MaxResponseBytes, bad); tr.base != nil || tr.atBase(bad) {
			t.Errorf("base client made for %q", bad)
		}
	}
}
