package ingest

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestServeFastBusUnavailable: when the bus does not acknowledge a request the fast path
// took, it answers what the general path answers: 503 with the ids, Retry-After and the
// problem's headers.
func TestServeFastBusUnavailable(t *testing.T) {
	const body = `{"specversion":"1.0","id":"m-1","source":"t","type":"t.x","data":{}}`
	bus := silentBus{deadlines: make(chan time.Time, 4)}
	h := New(anyType{}, bus, Options{AckTimeout: 100 * time.Millisecond, Node: "n1"}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)

	var req fasthttp.Request
	req.Header.SetMethod(http.MethodPost)
	req.SetRequestURI(Path)
	req.Header.SetContentType(ContentTypeStructured)
	req.SetBodyString(body)
	var c fasthttp.RequestCtx
	c.Init(&req, nil, nil)
	if !h.ServeFast(&c) {
		t.Fatal("the fast path did not take an acceptable request")
	}
	<-bus.deadlines

	r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	r.Header.Set("Content-Type", ContentTypeStructured)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	<-bus.deadlines

	if got, want := c.Response.StatusCode(), w.Code; got != want || got != http.StatusServiceUnavailable {
		t.Errorf("status %d, the general path's %d, want 503", got, want)
	}
	if got, want := string(c.Response.Body()), w.Body.String(); got != want || !strings.Contains(got, `"ids":["m-1"]`) {
		t.Errorf("body\n%s\nthe general path's\n%s", got, want)
	}
	for _, k := range []string{"Content-Type", "Retry-After", "X-Content-Type-Options"} {
		if got, want := string(c.Response.Header.Peek(k)), w.Header().Get(k); got != want || got == "" {
			t.Errorf("%s: %q, the general path's %q", k, got, want)
		}
	}
}
