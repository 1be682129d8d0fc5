package flow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/reliability"
)

// retryFlow reads an order and ships it: the ship call is the one the tests make fail.
const retryFlow = `apiVersion: causeway/v1
kind: Flow
metadata: {name: ship}
spec:
  trigger:
    message: {types: [order.paid]}
  steps:
    - id: order
      call: erp.getOrder
      with: {orderId: "${{ .data.orderId }}"}
    - id: ship
      call: erp.ship
      with:
        orderId: ${{ .data.orderId }}
        body: {carrier: dhl}
  onError:
    - id: compensate
      set: {failed: "${{ .vars.error }}"}
`

// flakyERP answers order lookups, and fails ship calls with status fail(n) for the nth
// ship call (1-based) or answers it when fail gives 0. It keeps when each ship call came.
type flakyERP struct {
	*erpServer
	mu    sync.Mutex
	ships []time.Time
}

// failsFirst is a flaky ERP's answers: 503 to the first n calls, then its usual answer.
func failsFirst(n int) func(int) int {
	return func(call int) int {
		if call <= n {
			return http.StatusServiceUnavailable
		}
		return 0
	}
}

// fixedRetry is a step's retry policy: maxRetries retries, delay apart, without jitter.
func fixedRetry(maxRetries int, delay string) string {
	return fmt.Sprintf("{retry: {maxRetries: %d, backoff: fixed, initialDelay: %s, jitter: 0}}", maxRetries, delay)
}

func startFlakyERP(t *testing.T, fail func(n int) int) *flakyERP {
	t.Helper()
	f := &flakyERP{}
	f.erpServer = startERP(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != "POST" {
			_, _ = io.WriteString(w, `{"status":"paid"}`)
			return
		}
		f.mu.Lock()
		f.ships = append(f.ships, time.Now())
		n := len(f.ships)
		f.mu.Unlock()
		if code := fail(n); code != 0 {
			w.WriteHeader(code)
			return
		}
		_, _ = io.WriteString(w, `{"shipped":true}`)
	})
	return f
}

func (f *flakyERP) shipTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.ships...)
}

// callsTo counts the ERP's calls with a method.
func (s *erpServer) callsTo(method string) (n int, keys map[string]bool) {
	keys = map[string]bool{}
	for _, c := range s.seen() {
		if c.Method == method {
			n++
			keys[c.IdempotencyKey] = true
		}
	}
	return n, keys
}

// storedOn returns, in order, the stored messages of a stream on one subject.
func storedOn(t *testing.T, b *bus.Bus, stream, subject string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := b.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if raw.Subject == subject {
			out = append(out, raw)
		}
	}
	return out
}

// messagesOf reads every message of a type in MESSAGES, in order.
func messagesOf(t *testing.T, b *bus.Bus, typ string) []*message.Event {
	t.Helper()
	var out []*message.Event
	for _, raw := range storedOn(t, b, bus.StreamMessages, bus.Subject(typ)) {
		ev, err := message.FromNATS(raw.Header, raw.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// errorEntries reads the errors queue's entries for a flow.
func errorEntries(t *testing.T, b *bus.Bus, flowName string) []*reliability.Entry {
	t.Helper()
	var out []*reliability.Entry
	for _, raw := range storedOn(t, b, bus.StreamErrors, bus.SubjectErrors+"flow."+flowName) {
		var e reliability.Entry
		if err := json.Unmarshal(raw.Data, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, &e)
	}
	return out
}

func openTestBus(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: dir, Sync: bus.Sync{Interval: time.Second}, NodeName: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTransientFailuresBecomeRetryMessages(t *testing.T) {
	erp := startFlakyERP(t, failsFirst(2))
	b := openTestBus(t, t.TempDir())
	t.Cleanup(b.Close)
	f := startEngineWith(t, b, erp.URL, fixedRetry(3, "1s"), retryFlow)
	id := f.send(t, "order.paid", `{"orderId":"A-1"}`)
	run := f.waitRun(t, "ship", id, flow.StatusSucceeded, flow.StatusFailed)
	if run.Status != flow.StatusSucceeded {
		t.Fatalf("run %s: %s", run.Status, run.Error)
	}
	// The retries continued the run from the failed step: the order was read once, and
	// every ship attempt carried the run's idempotency key.
	if n, _ := erp.callsTo("GET"); n != 1 {
		t.Errorf("order read %d times, want once", n)
	}
	if n, keys := erp.callsTo("POST"); n != 3 || len(keys) != 1 {
		t.Errorf("ship called %d times with keys %v, want 3 with one key", n, keys)
	}
	if run.Retries != 2 || len(run.Failures) != 2 || run.Failures[0].RetryCount != 0 || run.Failures[1].RetryCount != 1 ||
		run.Failures[0].System != "erp" || run.Failures[0].Operation != "ship" || run.Failures[0].Step != "ship" || !run.Failures[0].Transient {
		t.Errorf("retries %d, failures %+v", run.Retries, run.Failures)
	}
	if _, ok := run.Vars["failed"]; ok {
		t.Error("onError ran for a run that succeeded on a retry")
	}
	times := erp.shipTimes()
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < time.Second {
			t.Errorf("retry %d came %s after the attempt before; the policy waits 1s", i, gap)
		}
	}
	msgs := messagesOf(t, b, "order.paid")
	if len(msgs) != 3 {
		t.Fatalf("%d order.paid messages on the bus, want the original and 2 retries", len(msgs))
	}
	for i, m := range msgs[1:] {
		n := i + 1
		if m.Kind != message.KindRetry || m.RetryCount != n || m.CausationID != msgs[n-1].ID || m.Target != "flow:ship" ||
			m.Extensions["runid"] != run.ID || m.CorrelationID != msgs[0].CorrelationID || string(m.Data) != string(msgs[0].Data) {
			t.Errorf("retry %d: %+v", n, m)
		}
	}
	if len(errorEntries(t, b, "ship")) != 0 {
		t.Error("a run that succeeded left an entry in the errors queue")
	}
}

func TestOutOfRetriesGoesToTheErrorsQueue(t *testing.T) {
	erp := startFlakyERP(t, func(int) int { return http.StatusBadGateway })
	b := openTestBus(t, t.TempDir())
	t.Cleanup(b.Close)
	f := startEngineWith(t, b, erp.URL, "{retry: {maxRetries: 2, backoff: exponential, initialDelay: 1s, maxDelay: 1m, jitter: 0}}", retryFlow)
	id := f.send(t, "order.paid", `{"orderId":"A-2"}`)
	run := f.waitRun(t, "ship", id, flow.StatusFailed, flow.StatusSucceeded)
	if run.Status != flow.StatusFailed || run.Retries != 2 || len(run.Failures) != 3 {
		t.Fatalf("run %s after %d retries, failures %+v", run.Status, run.Retries, run.Failures)
	}
	// Each attempt waited longer than the one before: 1s, then 2s.
	times := erp.shipTimes()
	if len(times) != 3 {
		t.Fatalf("ship called %d times, want 3", len(times))
	}
	if g1, g2 := times[1].Sub(times[0]), times[2].Sub(times[1]); g1 < time.Second || g2 < 2*time.Second || g2 <= g1 {
		t.Errorf("waits %s, %s; want at least 1s, then at least 2s", g1, g2)
	}
	if !strings.Contains(run.Vars["failed"].(string), "502") {
		t.Errorf("onError did not run with the last error: %v", run.Vars)
	}
	entries := errorEntries(t, b, "ship")
	if len(entries) != 1 {
		t.Fatalf("%d entries in the errors queue, want 1", len(entries))
	}
	e := entries[0]
	if e.Flow != "ship" || e.RunID != run.ID || e.Step != "ship" || e.System != "erp" || e.Operation != "ship" ||
		e.Class != "transient" || e.RetryCount != 2 || len(e.Failures) != 3 || len(e.Fingerprint) != 16 ||
		!strings.Contains(e.Reason, "502") {
		t.Errorf("entry %+v", e)
	}
	ev, err := message.DecodeStructured(e.Message, "")
	if err != nil || ev.RetryCount != 2 || ev.Kind != message.KindRetry {
		t.Errorf("entry message %s: %v", e.Message, err)
	}
}

func TestPermanentFailureGoesToTheErrorsQueueAtOnce(t *testing.T) {
	erp := startFlakyERP(t, func(int) int { return http.StatusUnprocessableEntity })
	b := openTestBus(t, t.TempDir())
	t.Cleanup(b.Close)
	f := startEngineWith(t, b, erp.URL, "", retryFlow)
	id := f.send(t, "order.paid", `{"orderId":"A-3"}`)
	run := f.waitRun(t, "ship", id, flow.StatusFailed, flow.StatusSucceeded)
	if run.Status != flow.StatusFailed || run.Retries != 0 {
		t.Fatalf("run %s after %d retries", run.Status, run.Retries)
	}
	entries := errorEntries(t, b, "ship")
	if len(entries) != 1 || entries[0].Class != "permanent" || entries[0].RetryCount != 0 || len(entries[0].Failures) != 1 {
		t.Fatalf("errors queue %+v", entries)
	}
	if msgs := messagesOf(t, b, "order.paid"); len(msgs) != 1 {
		t.Errorf("%d order.paid messages, want no retry", len(msgs))
	}
	// The same failure of another message has the same fingerprint, whatever its numbers.
	id2 := f.send(t, "order.paid", `{"orderId":"B-77"}`)
	f.waitRun(t, "ship", id2, flow.StatusFailed)
	entries = errorEntries(t, b, "ship")
	if len(entries) != 2 || entries[0].Fingerprint != entries[1].Fingerprint {
		t.Errorf("fingerprints of one failure differ: %+v", entries)
	}
}

func TestScheduledRetrySurvivesARestart(t *testing.T) {
	erp := startFlakyERP(t, failsFirst(1))
	dir := t.TempDir()
	b := openTestBus(t, dir)
	f := startEngineWith(t, b, erp.URL, fixedRetry(3, "3s"), retryFlow)
	id := f.send(t, "order.paid", `{"orderId":"A-4"}`)
	run := f.waitRun(t, "ship", id, flow.StatusRetrying)
	f.engine.Stop(time.Second)
	b.Close()

	b = openTestBus(t, dir)
	t.Cleanup(b.Close)
	f = startEngineWith(t, b, erp.URL, fixedRetry(3, "3s"), retryFlow)
	done := f.waitRun(t, "ship", id, flow.StatusSucceeded, flow.StatusFailed)
	if done.Status != flow.StatusSucceeded || done.Retries != 1 {
		t.Fatalf("run %s after %d retries", done.Status, done.Retries)
	}
	times := erp.shipTimes()
	if len(times) != 2 {
		t.Fatalf("ship called %d times, want 2", len(times))
	}
	if times[1].Before(run.NextRetry) {
		t.Errorf("the retry came at %s, before it was due at %s", times[1], run.NextRetry)
	}
}

// TestRetryByRedeliveryWithoutSchedules runs against the machine's NATS server, which is
// older than message schedules (2.12): a failed delivery is redelivered after the backoff
// instead of becoming a retry message, and the run still continues from the failed step
// and ends in the errors queue when out of retries.
func TestRetryByRedeliveryWithoutSchedules(t *testing.T) {
	url := testutil.UseExternalNATS(t)
	testutil.CleanExternalNATS(t, url)
	b, err := bus.Open(context.Background(), bus.Options{URL: url, NodeName: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if b.Schedules() {
		t.Skip("the machine's NATS server schedules messages: the retry messages of the other tests cover it")
	}
	erp := startFlakyERP(t, failsFirst(2))
	f := startEngineWith(t, b, erp.URL, fixedRetry(3, "1s"), retryFlow)
	id := f.send(t, "order.paid", `{"orderId":"A-5"}`)
	run := f.waitRun(t, "ship", id, flow.StatusSucceeded, flow.StatusFailed)
	if run.Status != flow.StatusSucceeded || run.Retries != 2 {
		t.Fatalf("run %s after %d retries", run.Status, run.Retries)
	}
	if n, _ := erp.callsTo("GET"); n != 1 {
		t.Errorf("order read %d times, want once", n)
	}
	times := erp.shipTimes()
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < time.Second {
			t.Errorf("redelivery %d came %s after the attempt before; the policy waits 1s", i, gap)
		}
	}
	if msgs := messagesOf(t, b, "order.paid"); len(msgs) != 1 {
		t.Errorf("%d order.paid messages; a server without schedules gets no retry messages", len(msgs))
	}
}

// TestRetryNewerThanTheJournalIsTaken: a retry message whose retry count is ahead of the
// run's record (a crash took the record's last write, not the scheduled message) continues
// the run instead of being dropped as stale; the older retry is then the stale one.
func TestRetryNewerThanTheJournalIsTaken(t *testing.T) {
	erp := startFlakyERP(t, failsFirst(1))
	b := openTestBus(t, t.TempDir())
	t.Cleanup(b.Close)
	f := startEngineWith(t, b, erp.URL, fixedRetry(5, "3s"), retryFlow)
	id := f.send(t, "order.paid", `{"orderId":"A-6"}`)
	run := f.waitRun(t, "ship", id, flow.StatusRetrying)
	orig := messagesOf(t, b, "order.paid")[0]
	// Retry 2, as the record would have scheduled had it not lost its last write.
	ahead := *orig
	ahead.ID, ahead.Kind, ahead.RetryCount, ahead.CausationID = "retry-"+run.ID+"-2", message.KindRetry, 2, orig.ID
	ahead.Target, ahead.Extensions = "flow:ship", map[string]string{flow.ExtRunID: run.ID}
	if err := b.PublishAll(context.Background(), []*message.Event{&ahead}, "test"); err != nil {
		t.Fatal(err)
	}
	done := f.waitRun(t, "ship", id, flow.StatusSucceeded, flow.StatusFailed)
	if done.Status != flow.StatusSucceeded || done.Retries != 2 {
		t.Fatalf("run %s after %d retries", done.Status, done.Retries)
	}
	// Retry 1 still fires, finds the run ended, and calls nothing.
	time.Sleep(4 * time.Second)
	if n := len(erp.shipTimes()); n != 2 {
		t.Errorf("ship called %d times, want 2", n)
	}
}

// TestRetryWithoutItsRecordIsTaken sends a retry message of a run whose record is gone
// (written without an fsync of its own, a kill -9 of the node with its embedded bus can
// take it while the retry message survives). The run starts again from the retry count
// the message carries, so that its next retry gets a new message id: one with the id of
// the message just delivered would be dropped by the bus as a duplicate, and the run
// would wait for a retry that never comes.
func TestRetryWithoutItsRecordIsTaken(t *testing.T) {
	erp := startFlakyERP(t, failsFirst(2))
	b := openTestBus(t, t.TempDir())
	t.Cleanup(b.Close)
	f := startEngineWith(t, b, erp.URL, fixedRetry(5, "1s"), retryFlow)
	const orig = "A-7-lost"
	runID := flow.RunID("ship", orig)
	retry := &message.Event{SpecVersion: "1.0", ID: "retry-" + runID + "-1", Source: "test", Type: "order.paid",
		Time: time.Now().UTC(), Kind: message.KindRetry, RetryCount: 1, CausationID: orig, CorrelationID: orig,
		Target: "flow:ship", Extensions: map[string]string{flow.ExtRunID: runID},
		Data: json.RawMessage(`{"orderId":"A-7"}`)}
	if err := b.PublishAll(context.Background(), []*message.Event{retry}, "test"); err != nil {
		t.Fatal(err)
	}
	done := f.waitRun(t, "ship", orig, flow.StatusSucceeded, flow.StatusFailed)
	if done.Status != flow.StatusSucceeded || done.Retries != 3 {
		t.Fatalf("run %s after %d retries, want succeeded after 3 (1 before the record was lost, 2 after)", done.Status, done.Retries)
	}
	if n := len(erp.shipTimes()); n != 3 {
		t.Errorf("ship called %d times, want 3 (two refused, one taken)", n)
	}
}
