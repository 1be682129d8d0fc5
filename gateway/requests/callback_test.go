package requests

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hit is one callback a test server received.
type hit struct {
	path, requestID, contentType string
	body                         []byte
}

// callbackServer records the callbacks it gets; /hooks/flaky fails its first call and
// /hooks/moved redirects.
func callbackServer(t *testing.T) (*httptest.Server, <-chan hit) {
	t.Helper()
	hits := make(chan hit, 16)
	var flaky atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hits <- hit{path: r.URL.Path, requestID: r.Header.Get(HeaderRequestID), contentType: r.Header.Get("Content-Type"), body: body}
		switch r.URL.Path {
		case "/hooks/flaky":
			if flaky.Add(1) == 1 {
				http.Error(w, "secret internal detail", http.StatusServiceUnavailable)
				return
			}
		case "/hooks/moved":
			http.Redirect(w, r, "/hooks/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

func waitCallback(t *testing.T, s *Store, id string) *CallbackOutcome {
	t.Helper()
	return waitFor(t, s, id, 10*time.Second, func(st *Status) bool { return st.Callback != nil }).Callback
}

// A completed request's status is posted to its allowed callback URL, with the request's
// id; the outcome shows in the status.
func TestCallbackDelivered(t *testing.T) {
	srv, hits := callbackServer(t)
	b := openBus(t)
	s := openStore(t, b, Options{Callbacks: CallbackPolicy{Allow: []string{srv.URL + "/hooks/"}, AllowPrivate: true}})
	ctx := context.Background()
	cb := srv.URL + "/hooks/done?token=abc"
	if err := s.opts.Callbacks.Check(cb); err != nil {
		t.Fatal(err)
	}
	if err := s.Accept(ctx, Record{ID: "c1", Kind: KindPublish, Callback: cb}); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, "c1", Result{Status: 200, Body: json.RawMessage(`{"ok":true}`), RunID: "run-9"}); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-hits:
		var st Status
		if err := json.Unmarshal(h.body, &st); err != nil {
			t.Fatal(err)
		}
		if h.path != "/hooks/done" || h.requestID != "c1" || h.contentType != "application/json" ||
			st.ID != "c1" || st.State != StateCompleted || st.Result == nil || st.Result.RunID != "run-9" || string(st.Result.Body) != `{"ok":true}` {
			t.Errorf("callback %+v: %s", h, h.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no callback")
	}
	out := waitCallback(t, s, "c1")
	if out.State != CallbackDelivered || out.Attempts != 1 || out.StatusCode != 204 {
		t.Errorf("outcome %+v", out)
	}
	// Completing again within the de-duplication window calls back nobody.
	if err := s.Complete(ctx, "c1", Result{Status: 200}); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-hits:
		t.Errorf("second callback %+v", h)
	case <-time.After(300 * time.Millisecond):
	}
}

// A callback that fails is tried again; a redirect is not followed and not retried; the
// answer's body is never recorded.
func TestCallbackRetriesAndRedirects(t *testing.T) {
	srv, hits := callbackServer(t)
	b := openBus(t)
	s := openStore(t, b, Options{Callbacks: CallbackPolicy{Allow: []string{srv.URL + "/hooks/"}, AllowPrivate: true}})
	ctx := context.Background()
	for id, path := range map[string]string{"flaky": "/hooks/flaky", "moved": "/hooks/moved"} {
		if err := s.Accept(ctx, Record{ID: id, Kind: KindPublish, Callback: srv.URL + path}); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, id, Result{Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	out := waitCallback(t, s, "flaky")
	if out.State != CallbackDelivered || out.Attempts != 2 {
		t.Errorf("flaky: %+v", out)
	}
	out = waitCallback(t, s, "moved")
	if out.State != CallbackFailed || out.Attempts != 1 || out.StatusCode != http.StatusFound || strings.Contains(out.LastError, "elsewhere") {
		t.Errorf("moved: %+v", out)
	}
	var paths []string
	for len(hits) > 0 {
		paths = append(paths, (<-hits).path)
	}
	for _, p := range paths {
		if p == "/hooks/elsewhere" {
			t.Errorf("redirect followed: %v", paths)
		}
	}
}

// The connection itself is checked: an allowed host name that resolves to a loopback
// address is refused when dialled, whatever it resolved to when checked.
func TestCallbackRefusedAtDial(t *testing.T) {
	srv, hits := callbackServer(t)
	port := srv.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	base := "http://localhost:" + itoa(int(port))
	b := openBus(t)
	policy := CallbackPolicy{Allow: []string{base + "/hooks/", srv.URL + "/hooks/"}}
	s := openStore(t, b, Options{Callbacks: policy})
	ctx := context.Background()
	if err := policy.Check(base + "/hooks/x"); !errors.Is(err, ErrCallbackRefused) {
		t.Errorf("check: %v", err)
	}
	// The record passes Accept (which does not resolve names), as a name that resolved
	// elsewhere when it was checked would.
	if err := s.Accept(ctx, Record{ID: "d1", Kind: KindPublish, Callback: base + "/hooks/x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, "d1", Result{Status: 200}); err != nil {
		t.Fatal(err)
	}
	out := waitCallback(t, s, "d1")
	if out.State != CallbackFailed || out.Attempts != 1 || !strings.Contains(out.LastError, "refused") || !strings.Contains(out.LastError, "loopback") {
		t.Errorf("outcome %+v", out)
	}
	if len(hits) != 0 {
		t.Error("the server was called")
	}
	// The same for an IP literal, straight through the client.
	_, err := policy.newClient().post(ctx, srv.URL+"/hooks/x", "d2", []byte("{}"))
	if !errors.Is(err, ErrCallbackRefused) {
		t.Errorf("post to loopback: %v", err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestCheck(t *testing.T) {
	allow := []string{"https://partner.example.com/hooks/", "http://169.254.169.254/latest/", "http://127.0.0.1:8080/cb",
		"http://[fd00:ec2::254]/", "http://localhost:9/cb/", "http://100.100.100.200/"}
	strict := CallbackPolicy{Allow: allow}
	private := CallbackPolicy{Allow: allow, AllowPrivate: true}
	linkLocal := CallbackPolicy{Allow: allow, AllowLinkLocal: true}
	both := CallbackPolicy{Allow: allow, AllowPrivate: true, AllowLinkLocal: true}
	for _, tc := range []struct {
		policy CallbackPolicy
		url    string
		ok     bool
	}{
		{strict, "https://other.example.com/hooks/x", false},
		{strict, "https://partner.example.com/admin", false},
		{strict, "https://partner.example.com:8443/hooks/x", false},
		{strict, "http://partner.example.com/hooks/x", false},
		{strict, "https://user:pw@partner.example.com/hooks/x", false},
		{strict, "https://partner.example.com@127.0.0.1/hooks/x", false},
		{strict, "https://partner.example.com/hooks/x#frag", false},
		{strict, "https://partner.example.com/hooks/../admin", false},
		{strict, "https://partner.example.com/hooks/%2e%2e/admin", false},
		{strict, `https://partner.example.com/hooks/..\admin`, false},
		{strict, "ftp://partner.example.com/hooks/x", false},
		{strict, "//partner.example.com/hooks/x", false},
		{strict, "", false},
		{strict, "not a url", false},
		{CallbackPolicy{}, "https://partner.example.com/hooks/x", false},
		// The metadata address, although allowed by the list.
		{strict, "http://169.254.169.254/latest/meta-data", false},
		{private, "http://169.254.169.254/latest/meta-data", false},
		{linkLocal, "http://169.254.169.254/latest/meta-data", true},
		{both, "http://[fd00:ec2::254]/x", true},
		{private, "http://[fd00:ec2::254]/x", false},
		{linkLocal, "http://[fd00:ec2::254]/x", false},
		{private, "http://100.100.100.200/x", false},
		// Loopback, and the path prefix at a '/' boundary.
		{strict, "http://127.0.0.1:8080/cb/x", false},
		{private, "http://127.0.0.1:8080/cb/x", true},
		{private, "http://127.0.0.1:8080/cb", true},
		{private, "http://127.0.0.1:8080/cbx", false},
		{private, "http://127.0.0.1:8081/cb", false},
		// A name is resolved.
		{strict, "http://localhost:9/cb/x", false},
		{private, "http://LOCALHOST:9/cb/x?token=1", true},
	} {
		err := tc.policy.Check(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("%+v %q: %v", tc.policy, tc.url, err)
		}
		if err != nil && !errors.Is(err, ErrCallbackRefused) {
			t.Errorf("%q: %v does not wrap ErrCallbackRefused", tc.url, err)
		}
	}
	for addr, want := range map[string]string{
		"8.8.8.8":                 "",
		"2001:4860:4860::8888":    "",
		"::ffff:169.254.169.254":  "a cloud metadata address",
		"169.254.1.1":             "link-local",
		"fe80::1":                 "link-local",
		"64:ff9b::a9fe:a9fe":      "a cloud metadata address (carried in 64:ff9b::a9fe:a9fe)",
		"2002:7f00:1::":           "loopback (carried in 2002:7f00:1::)",
		"::1":                     "loopback",
		"0.0.0.0":                 "unspecified",
		"0.1.2.3":                 "unspecified",
		"::":                      "unspecified",
		"224.0.0.251":             "link-local",
		"239.1.1.1":               "multicast or broadcast",
		"255.255.255.255":         "multicast or broadcast",
		"10.1.2.3":                "private",
		"172.16.0.1":              "private",
		"192.168.1.1":             "private",
		"100.64.0.1":              "private",
		"fd12::1":                 "private",
		"::ffff:192.168.1.1":      "private",
		"fe80::1%eth0":            "a scoped IPv6 address",
		"2606:4700:4700::1111":    "",
		"::ffff:93.184.216.34":    "",
		"64:ff9b::5db8:d822":      "",
		"2002:5db8:d822::":        "",
		"100.128.0.1":             "",
		"172.32.0.1":              "",
		"192.169.0.1":             "",
		"11.0.0.1":                "",
		"169.253.255.255":         "",
		"fc00::":                  "private",
		"ff02::1":                 "link-local",
		"ff05::1":                 "multicast or broadcast",
		"::127.0.0.1":             "loopback (carried in ::7f00:1)",
		"::8.8.8.8":               "",
		"2001:db8::1":             "",
		"::ffff:100.100.100.200":  "a cloud metadata address",
		"2002:a9fe:a9fe::1":       "a cloud metadata address (carried in 2002:a9fe:a9fe::1)",
		"64:ff9b::c0a8:101":       "private (carried in 64:ff9b::c0a8:101)",
		"fd00:ec2::254":           "a cloud metadata address",
		"100.100.100.200":         "a cloud metadata address",
		"169.254.169.254":         "a cloud metadata address",
		"127.255.255.254":         "loopback",
		"0000:0000::0000:0000:01": "loopback",
	} {
		if got := strict.refusal(netip.MustParseAddr(addr)); got != want {
			t.Errorf("refusal(%s) = %q, want %q", addr, got, want)
		}
	}
	if _, err := Open(context.Background(), Options{Bus: nil}); err == nil {
		t.Error("open without a bus")
	}
}

func TestOpenRefusesBadAllowList(t *testing.T) {
	b := openBus(t)
	for _, prefix := range []string{"partner.example.com/hooks", "ftp://x/", "https://u:p@x/", "https://x/?q=1", "https:///x"} {
		if _, err := Open(context.Background(), Options{Bus: b, Logger: quiet, Callbacks: CallbackPolicy{Allow: []string{prefix}}}); err == nil {
			t.Errorf("opened with allow-list %q", prefix)
		}
	}
}

// Closing the store while a callback waits to try again drops it without an outcome.
func TestCloseDropsCallback(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	b := openBus(t)
	s := openStore(t, b, Options{Callbacks: CallbackPolicy{Allow: []string{srv.URL + "/"}, AllowPrivate: true}})
	s.cbBackoff = time.Hour
	ctx := context.Background()
	if err := s.Accept(ctx, Record{ID: "x1", Kind: KindPublish, Callback: srv.URL + "/cb"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, "x1", Result{Status: 200}); err != nil {
		t.Fatal(err)
	}
	for calls.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan struct{})
	var once sync.Once
	go func() { s.Close(); once.Do(func() { close(done) }) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not return")
	}
	s2 := openStore(t, b, Options{})
	st, err := s2.Status(ctx, "x1")
	if err != nil || st.Callback != nil || st.State != StateCompleted {
		t.Errorf("after close: %+v %v", st, err)
	}
}
