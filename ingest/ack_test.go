package ingest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/message"
)

// anyType takes every type and every data: the test is about the wait, not the checks.
type anyType struct{}

func (anyType) Check(string, []byte) ([]Violation, error) { return nil, nil }

// silentBus never acknowledges: PublishAll returns when its context ends, and reports the
// context's deadline.
type silentBus struct{ deadlines chan time.Time }

func (b silentBus) PublishAll(ctx context.Context, _ []*message.Event, _ string) error {
	d, _ := ctx.Deadline()
	b.deadlines <- d
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
		// A wait nothing ends: the handler then answers 202, which the test refuses.
		return nil
	}
}

// TestAckTimeout checks that a request whose messages the bus does not acknowledge is
// answered 503 once AckTimeout has passed and not before, whether its wait shares a
// context (a request with no context of its own, as on the lean listener) or has one of
// its own; and that a request context that ends sooner still ends the wait.
func TestAckTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	bus := silentBus{deadlines: make(chan time.Time, 4)}
	h := New(anyType{}, bus, Options{AckTimeout: timeout, Node: "n1"}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	post := func(ctx context.Context) (*httptest.ResponseRecorder, time.Duration, time.Time) {
		r := httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(`{"specversion":"1.0","source":"t","type":"t.x","data":{}}`))
		r.Header.Set("Content-Type", "application/cloudevents+json")
		r = r.WithContext(ctx)
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		return w, time.Since(start), <-bus.deadlines
	}
	check := func(name string, w *httptest.ResponseRecorder) {
		t.Helper()
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "bus-unavailable") {
			t.Errorf("%s: %d %s, want 503 bus-unavailable", name, w.Code, w.Body)
		}
	}
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{
		{"no context of its own", context.Background()},
		{"a context of its own", context.WithValue(context.Background(), struct{}{}, 1)},
	} {
		w, took, deadline := post(c.ctx)
		check(c.name, w)
		if took < timeout || took > 20*timeout {
			t.Errorf("%s: answered after %v, want %v (and not much more)", c.name, took, timeout)
		}
		if until := time.Until(deadline); until > 0 || until < -took {
			t.Errorf("%s: the wait's deadline is %v from now", c.name, until)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	w, took, _ := post(ctx)
	check("a context that ends sooner", w)
	if took >= timeout {
		t.Errorf("a request whose context ended after 50ms waited %v", took)
	}
}
