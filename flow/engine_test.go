package flow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/kinds"
	"github.com/causeway/causeway/message"
)

// erpServer is a real HTTP server on loopback standing in for an ERP: it records every
// call and answers from answer.
type erpServer struct {
	URL   string
	mu    sync.Mutex
	calls []erpCall
}

type erpCall struct {
	Method, Path, Query, Body, IdempotencyKey string
}

func startERP(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *erpServer {
	t.Helper()
	s := &erpServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.calls = append(s.calls, erpCall{r.Method, r.URL.Path, r.URL.RawQuery, string(body), r.Header.Get("Idempotency-Key")})
		s.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *erpServer) seen() []erpCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]erpCall(nil), s.calls...)
}

const engineTypes = `apiVersion: causeway/v1
kind: MessageType
metadata: {name: order.paid}
spec:
  schema:
    type: object
    required: [orderId]
    properties:
      orderId: {type: string}
      total: {type: number}
---
apiVersion: causeway/v1
kind: MessageType
metadata: {name: order.shipped}
spec:
  schema:
    type: object
    required: [orderId, carrier]
    properties:
      orderId: {type: string}
      carrier: {type: string}
`

// engineFixture runs an embedded bus and a flow engine over definitions for an ERP at url.
type engineFixture struct {
	bus    *bus.Bus
	engine *flow.Engine
}

func startEngine(t *testing.T, erpURL, flows string) *engineFixture {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir(), Sync: bus.Sync{Interval: time.Second}, NodeName: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return startEngineOn(t, b, erpURL, flows)
}

// startEngineOn starts a flow engine on an existing bus, as a node restarting on the same
// data does.
func startEngineOn(t *testing.T, b *bus.Bus, erpURL, flows string) *engineFixture {
	t.Helper()
	return startEngineWith(t, b, erpURL, "", flows)
}

// startEngineWith starts a flow engine whose ERP system has the given delivery policy
// (YAML flow style; empty for the defaults).
func startEngineWith(t *testing.T, b *bus.Bus, erpURL, delivery, flows string) *engineFixture {
	t.Helper()
	if delivery != "" {
		delivery = "\n  delivery: " + delivery
	}
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"types.yaml": engineTypes,
		"erp.yaml": `apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "` + erpURL + `", timeout: 2s}` + delivery + `
  operations:
    getOrder: {http: {method: GET, path: "/orders/{orderId}"}}
    ship: {http: {method: POST, path: "/orders/{orderId}/ship"}}
`,
		"flows.yaml": flows,
	})
	cfg, err := config.Load(dir, config.Options{Registry: kinds.Default()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err := flow.NewEngine(ctx, flow.Options{Bus: b, Config: cfg, Node: "test", AckWait: 3 * time.Second, Registerer: prometheus.NewRegistry(),
		Check: func(typ string, data []byte) error {
			if typ == "order.shipped" && !strings.Contains(string(data), `"carrier"`) {
				return errSchema
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(time.Second) })
	return &engineFixture{bus: b, engine: e}
}

var errSchema = &schemaError{}

type schemaError struct{}

func (*schemaError) Error() string { return "data does not match the schema: /carrier: missing" }

// send publishes a trigger message and returns its id.
func (f *engineFixture) send(t *testing.T, typ, data string) string {
	t.Helper()
	ev := &message.Event{Source: "test", Type: typ, Data: json.RawMessage(data)}
	ev.FillDefaults(time.Now())
	if err := f.bus.PublishAll(context.Background(), []*message.Event{ev}, "test"); err != nil {
		t.Fatal(err)
	}
	return ev.ID
}

// waitRun polls the journal until the run for a message has ended (or waits), with a
// deadline.
func (f *engineFixture) waitRun(t *testing.T, flowName, msgID string, statuses ...string) *flow.Run {
	t.Helper()
	return f.waitRunID(t, flow.RunID(flowName, msgID), statuses...)
}

// waitRunID polls the journal until a run has one of the statuses, with a deadline.
func (f *engineFixture) waitRunID(t *testing.T, id string, statuses ...string) *flow.Run {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last *flow.Run
	for time.Now().Before(deadline) {
		run, err := f.engine.Run(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if run != nil {
			last = run
			for _, s := range statuses {
				if run.Status == s {
					return run
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	js, _ := json.MarshalIndent(last, "", "  ")
	t.Fatalf("run %s did not reach %v within the deadline; last record:\n%s", id, statuses, js)
	return nil
}

func stepsByID(run *flow.Run) map[string]*flow.StepRecord {
	m := map[string]*flow.StepRecord{}
	for _, s := range run.Steps {
		m[s.Key] = s
	}
	return m
}

const shipFlow = `apiVersion: causeway/v1
kind: Flow
metadata: {name: ship}
spec:
  trigger:
    message: {types: [order.paid], filter: .data.total > 0}
  steps:
    - id: order
      call: erp.getOrder
      with: {orderId: "${{ .data.orderId }}", expand: lines}
    - id: size
      set: {big: "${{ .steps.order.output.lines | length > 1 }}"}
    - id: big-only
      if: .vars.big
      then:
        - id: ship
          call: erp.ship
          with:
            orderId: ${{ .data.orderId }}
            body: '${{ {carrier: "dhl", lines: (.steps.order.output.lines | length)} }}'
          retry: {attempts: 3, backoff: 10ms}
      else:
        - id: skip
          set: {note: small}
    - id: each
      foreach: .steps.order.output.lines
      as: line
      concurrency: 2
      do:
        - id: line
          set: {last: "${{ .vars.line.sku }}"}
    - id: announce
      publish:
        type: order.shipped
        subject: order/${{ .data.orderId }}
        data: {orderId: "${{ .data.orderId }}", carrier: dhl}
  onError:
    - id: compensate
      set: {failed: "${{ .vars.error }}"}
`

func TestRunCallsPublishesAndJournals(t *testing.T) {
	var shipAttempts int
	var mu sync.Mutex
	erp := startERP(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == "POST" {
			mu.Lock()
			shipAttempts++
			n := shipAttempts
			mu.Unlock()
			if n == 1 {
				w.WriteHeader(http.StatusServiceUnavailable) // a blip: the in-run retry covers it
				return
			}
			_, _ = io.WriteString(w, `{"shipped":true}`)
			return
		}
		_, _ = io.WriteString(w, `{"status":"paid","lines":[{"sku":"A"},{"sku":"B"}]}`)
	})
	f := startEngine(t, erp.URL, shipFlow)
	id := f.send(t, "order.paid", `{"orderId":"A-1","total":12.5}`)
	run := f.waitRun(t, "ship", id, flow.StatusSucceeded, flow.StatusFailed)
	if run.Status != flow.StatusSucceeded {
		js, _ := json.MarshalIndent(run, "", "  ")
		t.Fatalf("run status %s:\n%s", run.Status, js)
	}
	steps := stepsByID(run)
	for key, want := range map[string]string{
		"order": "succeeded", "size": "succeeded", "big-only": "succeeded", "ship": "succeeded",
		"each": "succeeded", "each[0].line": "succeeded", "each[1].line": "succeeded", "announce": "succeeded",
	} {
		if s := steps[key]; s == nil || s.Status != want {
			t.Errorf("step %s: %+v, want %s", key, s, want)
		}
	}
	if steps["skip"] != nil || steps["compensate"] != nil {
		t.Error("the else branch or onError ran")
	}
	if steps["ship"].Attempts != 2 {
		t.Errorf("ship attempts %d, want 2 (a 503, then success)", steps["ship"].Attempts)
	}
	if run.Vars["big"] != true || run.Vars["last"] == nil {
		t.Errorf("vars %v", run.Vars)
	}

	calls := erp.seen()
	if len(calls) != 3 {
		t.Fatalf("ERP saw %d calls, want 3: %+v", len(calls), calls)
	}
	if calls[0].Path != "/orders/A-1" || calls[0].Query != "expand=lines" || calls[0].IdempotencyKey != run.ID+"/order" {
		t.Errorf("getOrder call %+v", calls[0])
	}
	for _, c := range calls[1:] {
		if c.Path != "/orders/A-1/ship" || c.Body != `{"carrier":"dhl","lines":2}` || c.IdempotencyKey != run.ID+"/ship" {
			t.Errorf("ship call %+v", c)
		}
	}

	// The follow-up is on the bus, caused by the trigger and in its correlation.
	out, _ := steps["announce"].Output.(map[string]any)
	s, err := f.bus.Stream(context.Background(), bus.StreamMessages)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(context.Background(), bus.Subject("order.shipped"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := message.FromNATS(raw.Header, raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != out["id"] || ev.CausationID != id || ev.CorrelationID != id || ev.Subject != "order/A-1" || ev.Source != "causeway/flow/ship" {
		t.Errorf("follow-up %+v (step output %v)", ev, out)
	}
}

func TestRunFailsAndCompensates(t *testing.T) {
	erp := startERP(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	f := startEngine(t, erp.URL, shipFlow)
	id := f.send(t, "order.paid", `{"orderId":"NOPE","total":1}`)
	run := f.waitRun(t, "ship", id, flow.StatusSucceeded, flow.StatusFailed)
	if run.Status != flow.StatusFailed || !strings.Contains(run.Error, "step order: call erp.getOrder: HTTP 404 Not Found (permanent)") {
		t.Fatalf("run %s: %s", run.Status, run.Error)
	}
	steps := stepsByID(run)
	if steps["order"].Status != flow.StepFailed || steps["order"].Attempts != 1 {
		t.Errorf("order step %+v", steps["order"])
	}
	if c := steps["compensate"]; c == nil || c.Status != flow.StepSucceeded || !strings.Contains(run.Vars["failed"].(string), "404") {
		t.Errorf("onError did not run with the error: %+v %v", c, run.Vars)
	}
	if steps["size"] != nil {
		t.Error("a step after the failure ran")
	}
}

func TestFilterAndDelay(t *testing.T) {
	erp := startERP(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	f := startEngine(t, erp.URL, `apiVersion: causeway/v1
kind: Flow
metadata: {name: later}
spec:
  trigger:
    message: {types: [order.paid], filter: .data.total > 100}
  steps:
    - id: wait
      delay: 1s
    - id: ship
      call: erp.ship
      with: {orderId: "${{ .data.orderId }}"}
`)
	small := f.send(t, "order.paid", `{"orderId":"S","total":5}`)
	big := f.send(t, "order.paid", `{"orderId":"B","total":500}`)
	start := time.Now()
	f.waitRun(t, "later", big, flow.StatusWaiting, flow.StatusSucceeded)
	run := f.waitRun(t, "later", big, flow.StatusSucceeded, flow.StatusFailed)
	if run.Status != flow.StatusSucceeded || time.Since(start) < time.Second {
		t.Fatalf("run %s after %s", run.Status, time.Since(start))
	}
	if run.Attempt < 2 {
		t.Errorf("the delay did not hand the run back to the bus: attempt %d", run.Attempt)
	}
	if r, _ := f.engine.Run(context.Background(), flow.RunID("later", small)); r != nil {
		t.Errorf("a filtered message started a run: %+v", r)
	}
	if calls := erp.seen(); len(calls) != 1 || calls[0].Path != "/orders/B/ship" {
		t.Errorf("calls %+v", calls)
	}
}

// runsOf lists the run records of a flow from the journal's bucket.
func (f *engineFixture) runsOf(t *testing.T, flowName string) []*flow.Run {
	t.Helper()
	ctx := context.Background()
	kv, err := f.bus.JetStream().KeyValue(ctx, bus.BucketRuns)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*flow.Run
	for k := range keys.Keys() {
		run, err := f.engine.Run(ctx, k)
		if err == nil && run != nil && run.Flow == flowName {
			out = append(out, run)
		}
	}
	return out
}

func TestSchedules(t *testing.T) {
	erp := startERP(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	f := startEngine(t, erp.URL, `apiVersion: causeway/v1
kind: Flow
metadata: {name: every-second}
spec:
  trigger:
    schedule: {cron: "@every 1s"}
  steps:
    - {id: note, set: {at: "${{ .data.scheduledTime }}"}}
`)
	deadline := time.Now().Add(10 * time.Second)
	for len(f.runsOf(t, "every-second")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the schedule did not tick twice in 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	run := f.runsOf(t, "every-second")[0]
	run = f.waitRunID(t, run.ID, flow.StatusSucceeded)
	if run.Trigger.Kind != "schedule" || run.Vars["at"] == nil {
		t.Errorf("run %+v", run)
	}
}

// TestMissedTicksRunOnce starts a yearly schedule whose last tick was two years ago: the
// ticks missed meanwhile run once, for the latest of them.
func TestMissedTicksRunOnce(t *testing.T) {
	erp := startERP(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	yearly := `apiVersion: causeway/v1
kind: Flow
metadata: {name: new-year}
spec:
  trigger:
    schedule: {cron: "0 0 1 1 *"}
  steps:
    - {id: note, set: {at: "${{ .data.scheduledTime }}"}}
`
	f := startEngine(t, erp.URL, yearly)
	ctx := context.Background()
	kv, err := f.bus.JetStream().KeyValue(ctx, bus.BucketSchedules)
	if err != nil {
		t.Fatal(err)
	}
	twoYearsAgo := time.Date(time.Now().Year()-2, 1, 1, 0, 0, 0, 0, time.UTC)
	data, _ := json.Marshal(twoYearsAgo)
	if _, err := kv.Put(ctx, "new-year", data); err != nil {
		t.Fatal(err)
	}
	// A second engine on the same bus, as after a restart.
	cfgEngine := startEngineOn(t, f.bus, erp.URL, yearly)
	_ = cfgEngine
	deadline := time.Now().Add(10 * time.Second)
	for {
		runs := f.runsOf(t, "new-year")
		if len(runs) == 1 {
			want := time.Date(time.Now().Year(), 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339Nano)
			run := f.waitRunID(t, runs[0].ID, flow.StatusSucceeded)
			if run.Vars["at"] != want {
				t.Errorf("caught-up tick at %v, want %s", run.Vars["at"], want)
			}
			break
		}
		if len(runs) > 1 || time.Now().After(deadline) {
			t.Fatalf("%d runs after the restart, want exactly one", len(runs))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(f.runsOf(t, "new-year")); n != 1 {
		t.Errorf("%d runs, want the one catch-up run", n)
	}
}

// TestResubmit resubmits a failed run after the target recovered: a new run of the same
// flow, from the same trigger, linked to the old one; another flow on the same message type
// does not run again.
func TestResubmit(t *testing.T) {
	var mu sync.Mutex
	down := true
	erp := startERP(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "not yet", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	f := startEngine(t, erp.URL, `apiVersion: causeway/v1
kind: Flow
metadata: {name: ship-it}
spec:
  trigger:
    message: {types: [order.paid]}
  steps:
    - {id: ship, call: erp.ship, with: {orderId: "${{ .data.orderId }}"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: bystander}
spec:
  trigger:
    message: {types: [order.paid]}
  steps:
    - {id: note, set: {seen: true}}
`)
	id := f.send(t, "order.paid", `{"orderId":"R-1","total":3}`)
	old := f.waitRun(t, "ship-it", id, flow.StatusFailed, flow.StatusSucceeded)
	f.waitRun(t, "bystander", id, flow.StatusSucceeded)
	if old.Status != flow.StatusFailed {
		t.Fatalf("first run %s", old.Status)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	newID, err := f.engine.Resubmit(context.Background(), old.ID)
	if err != nil {
		t.Fatal(err)
	}
	run := f.waitRunID(t, newID, flow.StatusSucceeded, flow.StatusFailed)
	if run.Status != flow.StatusSucceeded || run.ResubmitOf != old.ID || run.CorrelationID != old.CorrelationID {
		t.Errorf("resubmitted run %+v", run)
	}
	if calls := erp.seen(); len(calls) != 2 || calls[1].Path != "/orders/R-1/ship" || calls[1].IdempotencyKey != newID+"/ship" {
		t.Errorf("calls %+v", calls)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(f.runsOf(t, "bystander")); n != 1 {
		t.Errorf("the other flow ran %d times, want once", n)
	}
	if _, err := f.engine.Resubmit(context.Background(), "nope"); !errors.Is(err, flow.ErrNoRun) {
		t.Errorf("unknown run: %v", err)
	}
}

// TestRemovedFlowsLoseTheirConsumers starts an engine on a bus where a flow that is no
// longer defined left its consumer.
func TestRemovedFlowsLoseTheirConsumers(t *testing.T) {
	erp := startERP(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	f := startEngine(t, erp.URL, `apiVersion: causeway/v1
kind: Flow
metadata: {name: old-flow}
spec:
  trigger: {message: {types: [order.paid]}}
  steps: [{id: a, set: {a: 1}}]
`)
	f.engine.Stop(0)
	startEngineOn(t, f.bus, erp.URL, `apiVersion: causeway/v1
kind: Flow
metadata: {name: new-flow}
spec:
  trigger: {message: {types: [order.paid]}}
  steps: [{id: a, set: {a: 1}}]
`)
	s, err := f.bus.Stream(context.Background(), bus.StreamMessages)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range s.ConsumerNames(context.Background()).Name() {
		names = append(names, n)
	}
	if strings.Join(names, ",") != flow.ConsumerName("new-flow") {
		t.Errorf("consumers %v, want only %s", names, flow.ConsumerName("new-flow"))
	}
}

// TestSQLSteps runs a flow against a system that has only a database (SQLite): it writes a
// row, reads it back, and the run records both results.
func TestSQLSteps(t *testing.T) {
	db := filepath.Join(t.TempDir(), "erp.db")
	erp := startERP(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	f := startEngine(t, erp.URL, `apiVersion: causeway/v1
kind: System
metadata: {name: warehouse}
spec:
  sql: {driver: sqlite, dsn: "`+db+`"}
  operations:
    setup: {sql: {exec: "CREATE TABLE IF NOT EXISTS shipments (order_id TEXT PRIMARY KEY, qty INTEGER)"}}
    ship:
      sql:
        statements:
          - exec: "INSERT INTO shipments (order_id, qty) VALUES (:orderId, :qty)"
          - query: "SELECT order_id, qty FROM shipments WHERE order_id = :orderId"
    find: {sql: {query: "SELECT qty FROM shipments WHERE order_id = :orderId", one: true}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: store}
spec:
  trigger: {message: {types: [order.paid]}}
  steps:
    - {id: setup, call: warehouse.setup}
    - {id: ship, call: warehouse.ship, with: {orderId: "${{ .data.orderId }}", qty: 2}}
    - {id: find, call: warehouse.find, with: {orderId: "${{ .data.orderId }}"}}
`)
	id := f.send(t, "order.paid", `{"orderId":"S-1","total":9}`)
	run := f.waitRun(t, "store", id, flow.StatusSucceeded, flow.StatusFailed)
	if run.Status != flow.StatusSucceeded {
		t.Fatalf("run %s: %s", run.Status, run.Error)
	}
	steps := stepsByID(run)
	rows, _ := steps["ship"].Output.([]any)
	if len(rows) != 1 || rows[0].(map[string]any)["order_id"] != "S-1" {
		t.Errorf("ship output %#v", steps["ship"].Output)
	}
	if got := fmt.Sprint(steps["find"].Output.(map[string]any)["qty"]); got != "2" {
		t.Errorf("find output %#v", steps["find"].Output)
	}
	// The same order again violates the primary key: a permanent failure, not retried.
	id2 := f.send(t, "order.paid", `{"orderId":"S-1","total":9}`)
	run = f.waitRun(t, "store", id2, flow.StatusSucceeded, flow.StatusFailed)
	if run.Status != flow.StatusFailed || !strings.Contains(run.Error, "(permanent)") || stepsByID(run)["ship"].Attempts != 1 {
		t.Errorf("duplicate: %s %s", run.Status, run.Error)
	}
}

// TestAMQPStep publishes from a flow to the machine's RabbitMQ.
func TestAMQPStep(t *testing.T) {
	testutil.RequireService(t, "RabbitMQ", "127.0.0.1:5672")
	erp := startERP(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	queue := fmt.Sprintf("cw-flow-%d", time.Now().UnixNano())
	f := startEngine(t, erp.URL, `apiVersion: causeway/v1
kind: System
metadata: {name: broker}
spec:
  amqp: {url: "amqp://guest:guest@127.0.0.1:5672/"}
  operations:
    announce: {amqp: {routingKey: "${{ .params.queue }}"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: tell}
spec:
  trigger: {message: {types: [order.paid]}}
  steps:
    - id: announce
      call: broker.announce
      with: {queue: "`+queue+`", body: {orderId: "${{ .data.orderId }}"}}
`)
	id := f.send(t, "order.paid", `{"orderId":"Q-1","total":1}`)
	run := f.waitRun(t, "tell", id, flow.StatusSucceeded, flow.StatusFailed)
	// Nothing is bound to the queue name yet, so the broker cannot route it: permanent.
	if run.Status != flow.StatusFailed || !strings.Contains(run.Error, "could not route") {
		t.Fatalf("unroutable: %s %s", run.Status, run.Error)
	}
	conn, err := amqp.Dial("amqp://guest:guest@127.0.0.1:5672/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	id = f.send(t, "order.paid", `{"orderId":"Q-2","total":1}`)
	if run := f.waitRun(t, "tell", id, flow.StatusSucceeded, flow.StatusFailed); run.Status != flow.StatusSucceeded {
		t.Fatalf("publish: %s %s", run.Status, run.Error)
	}
	d, ok, err := ch.Get(queue, true)
	if err != nil || !ok || string(d.Body) != `{"orderId":"Q-2"}` {
		t.Errorf("queued: %v %v %s", ok, err, d.Body)
	}
}

// TestNATSStep sends a request from a flow to a service on the machine's NATS server.
func TestNATSStep(t *testing.T) {
	testutil.RequireService(t, "NATS", "127.0.0.1:4222")
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subject := fmt.Sprintf("cwflow%d.price", time.Now().UnixNano())
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond([]byte(`{"price":7}`)) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc.Flush()
	erp := startERP(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	f := startEngine(t, erp.URL, `apiVersion: causeway/v1
kind: System
metadata: {name: pricing}
spec:
  nats: {url: "nats://127.0.0.1:4222"}
  operations:
    quote: {nats: {subject: "`+subject+`", request: true}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: quote}
spec:
  trigger: {message: {types: [order.paid]}}
  steps:
    - {id: quote, call: pricing.quote, with: {sku: "${{ .data.orderId }}"}}
`)
	id := f.send(t, "order.paid", `{"orderId":"N-1","total":1}`)
	run := f.waitRun(t, "quote", id, flow.StatusSucceeded, flow.StatusFailed)
	if run.Status != flow.StatusSucceeded || fmt.Sprint(stepsByID(run)["quote"].Output.(map[string]any)["price"]) != "7" {
		t.Errorf("run %s %s %v", run.Status, run.Error, stepsByID(run)["quote"])
	}
}

// TestMQTTStep publishes from a flow to the machine's Mosquitto.
func TestMQTTStep(t *testing.T) {
	testutil.RequireService(t, "Mosquitto", "127.0.0.1:1883")
	conn, err := net.Dial("tcp", "127.0.0.1:1883")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	sub := paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(p paho.PublishReceived) (bool, error) { got <- p.Packet.Payload; return true, nil },
	}})
	ctx := context.Background()
	if _, err := sub.Connect(ctx, &paho.Connect{ClientID: fmt.Sprint("cw-flow-sub-", time.Now().UnixNano()), CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	defer sub.Disconnect(&paho.Disconnect{})
	topic := fmt.Sprint("cw/flow/", time.Now().UnixNano())
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	erp := startERP(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	f := startEngine(t, erp.URL, `apiVersion: causeway/v1
kind: System
metadata: {name: plant}
spec:
  mqtt: {url: "mqtt://127.0.0.1:1883"}
  operations:
    notify: {mqtt: {topic: "`+topic+`"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: notify}
spec:
  trigger: {message: {types: [order.paid]}}
  steps:
    - {id: notify, call: plant.notify, with: {body: {order: "${{ .data.orderId }}"}}}
`)
	id := f.send(t, "order.paid", `{"orderId":"M-1","total":1}`)
	if run := f.waitRun(t, "notify", id, flow.StatusSucceeded, flow.StatusFailed); run.Status != flow.StatusSucceeded {
		t.Fatalf("run %s %s", run.Status, run.Error)
	}
	select {
	case p := <-got:
		if string(p) != `{"order":"M-1"}` {
			t.Errorf("received %s", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
	}
}
