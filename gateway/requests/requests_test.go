package requests

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/flow"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openBus starts an embedded bus on a temporary directory.
func openBus(t *testing.T) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir(), Sync: bus.Sync{Interval: time.Second}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// openStore opens a store with short backoffs.
func openStore(t *testing.T, b *bus.Bus, opts Options) *Store {
	t.Helper()
	opts.Bus = b
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	s.retryBase, s.cbBackoff = 5*time.Millisecond, 20*time.Millisecond
	t.Cleanup(s.Close)
	return s
}

// startWork runs s.Work until the test ends or the returned stop is called.
func startWork(t *testing.T, s *Store, run func(context.Context, Record) (Result, error)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Work(ctx, run); err != nil {
			t.Errorf("work: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// waitFor polls the status until cond holds.
func waitFor(t *testing.T, s *Store, id string, within time.Duration, cond func(*Status) bool) *Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := s.Status(context.Background(), id)
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s: condition not met within %s: status %+v, err %v", id, within, st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stateIs(state string) func(*Status) bool {
	return func(st *Status) bool { return st.State == state }
}

// queueEmpty waits until the queue holds nothing.
func queueEmpty(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := s.depths(context.Background())
		if err == nil && len(d) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty: %v %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func proxyRecord(id string) Record {
	return Record{ID: id, API: "orders", Route: "create", Kind: KindProxy, System: "erp", Payload: json.RawMessage(`{"method":"POST","authorization":"secret"}`)}
}

// A queued request waits while its system is not available, without spending attempts,
// and runs once it is; its status goes from queued to completed with the result.
func TestQueuedRequestRunsWhenSystemAvailable(t *testing.T) {
	b := openBus(t)
	reg := prometheus.NewRegistry()
	var avail atomic.Bool
	s := openStore(t, b, Options{Registerer: reg, Node: "n1", Available: func(string) (bool, time.Duration) { return avail.Load(), 0 }})
	ctx := context.Background()
	if err := s.Accept(ctx, proxyRecord("r1")); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateQueued || st.Record.Payload != nil || st.Record.CreatedAt.IsZero() || st.Attempts != 0 || st.Result != nil {
		t.Fatalf("after accept: %+v", st)
	}
	var runs atomic.Int32
	startWork(t, s, func(_ context.Context, rec Record) (Result, error) {
		runs.Add(1)
		if rec.ID != "r1" || rec.System != "erp" || !strings.Contains(string(rec.Payload), "secret") {
			return Result{}, errors.New("unexpected record")
		}
		return Result{Status: 201, Headers: map[string]string{"Location": "/orders/7"}, Body: json.RawMessage(`{"order":7}`)}, nil
	})
	time.Sleep(1500 * time.Millisecond)
	if n := runs.Load(); n != 0 {
		t.Fatalf("ran %d times while the system was not available", n)
	}
	if got := value(s.metrics.depth.WithLabelValues("erp")); got != 1 {
		t.Errorf("queue depth %v, want 1", got)
	}
	avail.Store(true)
	st = waitFor(t, s, "r1", 10*time.Second, stateIs(StateCompleted))
	if runs.Load() != 1 || st.Attempts != 1 || st.Result.Status != 201 || string(st.Result.Body) != `{"order":7}` ||
		st.Result.Headers["Location"] != "/orders/7" || st.Result.At.IsZero() {
		t.Fatalf("completed: runs %d, %+v %+v", runs.Load(), st, st.Result)
	}
	queueEmpty(t, s)
	if got := value(s.metrics.accepted.WithLabelValues(KindProxy)); got != 1 {
		t.Errorf("accepted %v, want 1", got)
	}
	if got := value(s.metrics.runs.WithLabelValues("completed")); got != 1 {
		t.Errorf("completed runs %v, want 1", got)
	}
	// Accepting the same request again stores nothing new and runs nothing.
	if err := s.Accept(ctx, proxyRecord("r1")); err != nil {
		t.Fatal(err)
	}
	if got := value(s.metrics.accepted.WithLabelValues(KindProxy)); got != 1 {
		t.Errorf("accepted after a duplicate %v, want 1", got)
	}
}

// transientErr says it is transient the way connector errors do.
type transientErr struct{}

func (transientErr) Error() string        { return "connection reset" }
func (transientErr) TransientError() bool { return true }

// A transient failure is tried again; a permanent one, a panic, or transient failures
// past the limit fail the request.
func TestRetries(t *testing.T) {
	b := openBus(t)
	s := openStore(t, b, Options{})
	ctx := context.Background()
	var mu sync.Mutex
	calls := map[string]int{}
	startWork(t, s, func(_ context.Context, rec Record) (Result, error) {
		mu.Lock()
		calls[rec.ID]++
		n := calls[rec.ID]
		mu.Unlock()
		switch rec.ID {
		case "flaky":
			switch n {
			case 1:
				return Result{}, Retry(errors.New("HTTP 503"), 0)
			case 2:
				return Result{}, transientErr{}
			}
			return Result{Status: 200}, nil
		case "broken":
			return Result{}, errors.New("HTTP 400: bad order")
		case "panics":
			panic("boom")
		}
		return Result{}, Retry(errors.New("HTTP 503"), 0)
	})
	for _, id := range []string{"flaky", "broken", "panics", "down"} {
		if err := s.Accept(ctx, proxyRecord(id)); err != nil {
			t.Fatal(err)
		}
	}
	st := waitFor(t, s, "flaky", 10*time.Second, stateIs(StateCompleted))
	if st.Attempts != 3 || st.Result.Status != 200 {
		t.Errorf("flaky: %+v %+v", st, st.Result)
	}
	st = waitFor(t, s, "broken", 10*time.Second, stateIs(StateFailed))
	if st.Attempts != 1 || st.Result.Status != 500 || st.Result.Error != "HTTP 400: bad order" {
		t.Errorf("broken: %+v %+v", st, st.Result)
	}
	st = waitFor(t, s, "panics", 10*time.Second, stateIs(StateFailed))
	if st.Attempts != 1 || !strings.Contains(st.Result.Error, "panicked") {
		t.Errorf("panics: %+v %+v", st, st.Result)
	}
	st = waitFor(t, s, "down", 30*time.Second, stateIs(StateFailed))
	if st.Attempts != maxAttempts || st.Result.Status != 502 || !strings.Contains(st.Result.Error, "gave up after 10 attempts") {
		t.Errorf("down: %+v %+v", st, st.Result)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["flaky"] != 3 || calls["broken"] != 1 || calls["panics"] != 1 || calls["down"] != maxAttempts {
		t.Errorf("calls %v", calls)
	}
}

func TestBackoff(t *testing.T) {
	s := &Store{retryBase: time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute, time.Minute}
	for i, w := range want {
		if got := s.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}

// A queue entry whose request has a result (a redelivery, or the entry twice) is
// acknowledged without running; two workers (two nodes) run a system's requests once
// each, in order.
func TestNoDoubleRun(t *testing.T) {
	b := openBus(t)
	s := openStore(t, b, Options{})
	ctx := context.Background()
	var mu sync.Mutex
	var order []string
	run := func(_ context.Context, rec Record) (Result, error) {
		mu.Lock()
		order = append(order, rec.ID)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		return Result{Status: 200}, nil
	}
	startWork(t, s, run)
	startWork(t, s, run)
	ids := []string{"a1", "a2", "a3", "a4", "a5"}
	for _, id := range ids {
		if err := s.Accept(ctx, proxyRecord(id)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		waitFor(t, s, id, 10*time.Second, stateIs(StateCompleted))
	}
	// The same entry again, as a redelivery after a crash between result and ack would
	// bring it.
	rec := proxyRecord("a3")
	data, _ := json.Marshal(rec)
	if _, err := b.JetStream().Publish(ctx, subjectQueue+"erp", data, jetstream.WithMsgID("another-id")); err != nil {
		t.Fatal(err)
	}
	queueEmpty(t, s)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, ",") != strings.Join(ids, ",") {
		t.Errorf("ran %v, want each once in order %v", order, ids)
	}
	if got := value(s.metrics.runs.WithLabelValues("duplicate")); got != 1 {
		t.Errorf("duplicates %v, want 1", got)
	}
}

// A flow's reply, published on the reply subject with core NATS, is the result of a
// publish request.
func TestFlowReplyIsResult(t *testing.T) {
	b := openBus(t)
	s := openStore(t, b, Options{})
	ctx := context.Background()
	for _, id := range []string{"p1", "p2"} {
		if err := s.Accept(ctx, Record{ID: id, API: "orders", Route: "submit", Kind: KindPublish, MessageID: "m-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.Status(ctx, "p1")
	if err != nil || st.State != StateAccepted || st.Record.MessageID != "m-p1" {
		t.Fatalf("after accept: %+v %v", st, err)
	}
	for id, a := range map[string]flow.Answer{
		"p1": {Status: 201, Headers: map[string]string{"X-Order": "7"}, Body: json.RawMessage(`{"order":7}`), RunID: "run-1"},
		"p2": {Status: 500, RunID: "run-2", Error: "step ship: boom"},
	} {
		data, _ := json.Marshal(a)
		if err := b.Conn().Publish(ReplySubject(id), data); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	st = waitFor(t, s, "p1", 5*time.Second, stateIs(StateCompleted))
	if r := st.Result; r.Status != 201 || r.RunID != "run-1" || string(r.Body) != `{"order":7}` || r.Headers["X-Order"] != "7" || r.At.IsZero() {
		t.Errorf("p1 result %+v", r)
	}
	st = waitFor(t, s, "p2", 5*time.Second, stateIs(StateFailed))
	if r := st.Result; r.Status != 500 || r.Error != "step ship: boom" {
		t.Errorf("p2 result %+v", r)
	}
	// A result stored by the gateway takes precedence over the reply; a body that is not
	// JSON is kept as a string.
	if err := s.Complete(ctx, "p2", Result{Status: 200, Body: json.RawMessage("plain text")}); err != nil {
		t.Fatal(err)
	}
	st = waitFor(t, s, "p2", 5*time.Second, stateIs(StateCompleted))
	if string(st.Result.Body) != `"plain text"` {
		t.Errorf("body %s", st.Result.Body)
	}
}

func TestNotFoundAndInvalid(t *testing.T) {
	b := openBus(t)
	s := openStore(t, b, Options{})
	ctx := context.Background()
	for _, id := range []string{"unknown", "", "a.b", "a>", "*", strings.Repeat("x", 200)} {
		if _, err := s.Status(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("status %q: %v", id, err)
		}
	}
	if err := s.Complete(ctx, "unknown", Result{Status: 200}); !errors.Is(err, ErrNotFound) {
		t.Errorf("complete unknown: %v", err)
	}
	for _, rec := range []Record{
		{ID: "a.b", Kind: KindPublish},
		{ID: "ok", Kind: "other"},
		{ID: "ok", Kind: KindProxy, System: "erp.>"},
		{ID: "ok", Kind: KindProxy, System: "erp", Payload: json.RawMessage("{not json")},
		{ID: "ok", Kind: KindPublish, Callback: "https://nowhere.example.com/"},
	} {
		if err := s.Accept(ctx, rec); err == nil {
			t.Errorf("accepted %+v", rec)
		}
	}
	if err := s.Work(ctx, nil); err == nil {
		t.Error("work without a run function")
	}
}

// A store opened again on the same bus finds the queued request and runs it.
func TestReopenRunsQueued(t *testing.T) {
	b := openBus(t)
	ctx := context.Background()
	s1, err := Open(ctx, Options{Bus: b, Logger: quiet, Available: func(string) (bool, time.Duration) { return false, time.Second }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Accept(ctx, proxyRecord("q1")); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	// s1 is closed: Work returns at once.
	if err := s1.Work(ctx, func(context.Context, Record) (Result, error) { return Result{}, nil }); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, b, Options{})
	st, err := s2.Status(ctx, "q1")
	if err != nil || st.State != StateQueued {
		t.Fatalf("after reopening: %+v %v", st, err)
	}
	startWork(t, s2, func(_ context.Context, rec Record) (Result, error) { return Result{Status: 204}, nil })
	waitFor(t, s2, "q1", 10*time.Second, stateIs(StateCompleted))
}

// A queue entry without its record (its node stopped between the two writes of Accept)
// gets its record from the worker, even while its system is not available.
func TestQueueEntryWithoutRecord(t *testing.T) {
	b := openBus(t)
	s := openStore(t, b, Options{Available: func(string) (bool, time.Duration) { return false, time.Second }})
	ctx := context.Background()
	rec := proxyRecord("lost")
	rec.CreatedAt = time.Now().UTC()
	data, _ := json.Marshal(rec)
	if _, err := b.JetStream().Publish(ctx, subjectQueue+"erp", data, jetstream.WithMsgID("req-queue-lost")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Status(ctx, "lost"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before the worker: %v", err)
	}
	startWork(t, s, func(context.Context, Record) (Result, error) { return Result{Status: 200}, nil })
	st := waitFor(t, s, "lost", 10*time.Second, stateIs(StateQueued))
	if st.Record.Payload != nil || st.Record.API != "orders" {
		t.Errorf("repaired record %+v", st.Record)
	}
}

// TestDottedSystemName queues and runs a request for a System whose name has dots, as the
// definitions allow, apart from one whose name differs only there.
func TestDottedSystemName(t *testing.T) {
	s := openStore(t, openBus(t), Options{Node: "n1"})
	ctx := context.Background()
	for id, system := range map[string]string{"d1": "erp.eu", "d2": "erp_eu"} {
		rec := proxyRecord(id)
		rec.System = system
		if err := s.Accept(ctx, rec); err != nil {
			t.Fatalf("accept for %s: %v", system, err)
		}
	}
	if durableName("erp.eu") == durableName("erp_eu") {
		t.Fatal("two systems share a consumer")
	}
	startWork(t, s, func(_ context.Context, rec Record) (Result, error) {
		return Result{Status: 200, Body: json.RawMessage(`"` + rec.System + `"`)}, nil
	})
	for id, system := range map[string]string{"d1": "erp.eu", "d2": "erp_eu"} {
		st := waitFor(t, s, id, 10*time.Second, stateIs(StateCompleted))
		if string(st.Result.Body) != `"`+system+`"` {
			t.Errorf("%s ran as %s", id, st.Result.Body)
		}
	}
	bad := proxyRecord("d3")
	bad.System = "erp..eu"
	if err := s.Accept(ctx, bad); err == nil {
		t.Error("a system name with an empty part was accepted")
	}
}
