package flow_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/kinds"
	"github.com/causeway/causeway/system"
	"github.com/causeway/causeway/system/status"
)

// startWithStatus runs an engine and a status registry over definitions, on a fresh bus.
func startWithStatus(t *testing.T, defs string) (*engineFixture, *status.Registry) {
	t.Helper()
	b := openTestBus(t, t.TempDir())
	t.Cleanup(b.Close)
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"types.yaml": engineTypes, "defs.yaml": defs})
	cfg, err := config.Load(dir, config.Options{Registry: kinds.Default()})
	if err != nil {
		t.Fatal(err)
	}
	systems := map[string]*system.Spec{}
	for _, r := range cfg.ByKind(system.Kind) {
		systems[r.Metadata.Name] = r.Spec.(*system.Spec)
	}
	ctx := context.Background()
	st, err := status.Open(ctx, status.Options{Bus: b, Systems: systems, Node: "test", Tick: 50 * time.Millisecond,
		Probe: func(context.Context, string, *system.Spec) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	e, err := flow.NewEngine(ctx, flow.Options{Bus: b, Config: cfg, Node: "test", AckWait: 3 * time.Second,
		Registerer: prometheus.NewRegistry(), Status: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(time.Second) })
	return &engineFixture{bus: b, engine: e}, st
}

// recorder is an HTTP system that records the order ids it was called for, and when.
type recorder struct {
	mu    sync.Mutex
	ids   []string
	times []time.Time
	url   string
}

func startRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	srv := startERP(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rec.mu.Lock()
		rec.ids = append(rec.ids, strings.TrimPrefix(r.URL.Path, "/orders/"))
		rec.times = append(rec.times, time.Now())
		rec.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	rec.url = srv.URL
	return rec
}

func (r *recorder) calls() ([]string, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...), append([]time.Time(nil), r.times...)
}

func waitSystem(t *testing.T, st *status.Registry, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s, _ := st.Get(name); s.Status == want {
			return
		}
		if time.Now().After(deadline) {
			s, _ := st.Get(name)
			t.Fatalf("%s is %+v, want %s", name, s, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMaintenanceWindowParksAndReleasesInOrder: a maintenance window opens; the messages
// sent meanwhile are parked and the system gets no call; the window closes; every parked
// delivery reaches the system, in the order it was sent, at a rate that ramps up and never
// passes the policy's.
func TestMaintenanceWindowParksAndReleasesInOrder(t *testing.T) {
	const n = 40
	rec := startRecorder(t)
	opens, closes := time.Now().Add(time.Second).UTC(), time.Now().Add(4*time.Second).UTC()
	f, st := startWithStatus(t, `apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "`+rec.url+`"}
  health:
    maintenance:
      - {from: "`+opens.Format(time.RFC3339Nano)+`", until: "`+closes.Format(time.RFC3339Nano)+`", reason: ERP upgrade}
  delivery:
    release: {rate: 20, rampUp: 2s}
  operations:
    ship: {http: {method: POST, path: "/orders/{orderId}"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: ship}
spec:
  trigger: {message: {types: [order.paid]}}
  concurrency: 1
  steps:
    - {id: ship, call: erp.ship, with: {orderId: "${{ .data.orderId }}"}}
`)
	waitSystem(t, st, "erp", status.Maintenance)
	var ids []string
	for i := range n {
		ids = append(ids, f.send(t, "order.paid", fmt.Sprintf(`{"orderId":"o%02d"}`, i)))
	}
	for _, id := range ids {
		run := f.waitRun(t, "ship", id, flow.StatusParked, flow.StatusSucceeded, flow.StatusFailed)
		if run.Status != flow.StatusParked || run.ParkedOn != "erp" {
			t.Fatalf("run %s during maintenance: %s on %q", run.ID, run.Status, run.ParkedOn)
		}
	}
	if got, _ := rec.calls(); len(got) != 0 {
		t.Fatalf("the system got %d calls during its maintenance", len(got))
	}
	if p := f.engine.Parked()["erp"]; p != n {
		t.Errorf("%d parked for erp, want %d", p, n)
	}

	waitSystem(t, st, "erp", status.Online)
	back := time.Now()
	for _, id := range ids {
		f.waitRun(t, "ship", id, flow.StatusSucceeded)
	}
	got, times := rec.calls()
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("o%02d", i)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("delivered in the order\n%v\nwant\n%v", got, want)
	}
	if times[0].Before(closes) {
		t.Errorf("a call at %s, before the window closed at %s", times[0], closes)
	}
	// Ramped: the first five took longer than the last five; and no second saw more than
	// the policy's 20 (one more for the limiter's burst).
	first, last := times[4].Sub(times[0]), times[n-1].Sub(times[n-5])
	if first <= 2*last {
		t.Errorf("first five released in %s, last five in %s: no ramp", first, last)
	}
	for i := range times {
		in := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < time.Second; j++ {
			in++
		}
		if in > 21 {
			t.Errorf("%d calls within a second from call %d: over the release rate", in, i)
		}
	}
	t.Logf("released %d in %s after the window (first five in %s, last five in %s)", n, times[n-1].Sub(back).Round(time.Millisecond), first, last)
	if p := f.engine.Parked()["erp"]; p != 0 {
		t.Errorf("%d still parked", p)
	}
}

// TestOfflineModes: a system switched offline fails its calls at once (fail) or retries them
// (retry) instead of parking.
func TestOfflineModes(t *testing.T) {
	rec := startRecorder(t)
	f, st := startWithStatus(t, `apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "`+rec.url+`"}
  delivery: {whenOffline: fail}
  operations:
    ship: {http: {method: POST, path: "/orders/{orderId}"}}
---
apiVersion: causeway/v1
kind: System
metadata: {name: wms}
spec:
  http: {baseURL: "`+rec.url+`"}
  delivery:
    whenOffline: retry
    retry: {maxRetries: 5, backoff: fixed, initialDelay: 1s, jitter: 0}
  operations:
    ship: {http: {method: POST, path: "/orders/{orderId}"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: ship}
spec:
  trigger: {message: {types: [order.paid]}}
  steps:
    - {id: erp, call: erp.ship, with: {orderId: "${{ .data.orderId }}"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: store}
spec:
  trigger: {message: {types: [order.paid]}}
  steps:
    - {id: wms, call: wms.ship, with: {orderId: "${{ .data.orderId }}"}}
`)
	ctx := context.Background()
	for _, name := range []string{"erp", "wms"} {
		if err := st.SetSwitch(ctx, name, status.Switch{Status: status.Offline, Reason: "network work", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	id := f.send(t, "order.paid", `{"orderId":"o1"}`)
	failed := f.waitRun(t, "ship", id, flow.StatusFailed, flow.StatusSucceeded, flow.StatusParked)
	if failed.Status != flow.StatusFailed || !strings.Contains(failed.Error, "system erp is offline") {
		t.Errorf("fail mode: %s %s", failed.Status, failed.Error)
	}
	retrying := f.waitRun(t, "store", id, flow.StatusRetrying, flow.StatusSucceeded, flow.StatusParked)
	if retrying.Status != flow.StatusRetrying {
		t.Errorf("retry mode: %s %s", retrying.Status, retrying.Error)
	}
	if got, _ := rec.calls(); len(got) != 0 {
		t.Errorf("%d calls to offline systems", len(got))
	}
	if err := st.SetSwitch(ctx, "wms", status.Switch{Status: "auto"}); err != nil {
		t.Fatal(err)
	}
	done := f.waitRun(t, "store", id, flow.StatusSucceeded, flow.StatusFailed)
	if done.Status != flow.StatusSucceeded || done.Retries < 1 {
		t.Errorf("after the switch: %s after %d retries", done.Status, done.Retries)
	}
}

// TestConcurrencyAndRateLimit: a system's delivery.concurrency bounds the calls in progress
// at once, and delivery.rateLimit the calls a second, however many runs want to call.
func TestConcurrencyAndRateLimit(t *testing.T) {
	var mu sync.Mutex
	inflight, most := 0, 0
	var times []time.Time
	srv := startERP(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inflight++
		most = max(most, inflight)
		times = append(times, time.Now())
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		inflight--
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	f, _ := startWithStatus(t, `apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "`+srv.URL+`"}
  delivery:
    concurrency: 2
    rateLimit: {perSecond: 20, burst: 1}
  operations:
    ship: {http: {method: POST, path: "/orders/{orderId}"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: ship}
spec:
  trigger: {message: {types: [order.paid]}}
  concurrency: 16
  steps:
    - {id: ship, call: erp.ship, with: {orderId: "${{ .data.orderId }}"}}
`)
	const n = 20
	var ids []string
	for i := range n {
		ids = append(ids, f.send(t, "order.paid", fmt.Sprintf(`{"orderId":"o%d"}`, i)))
	}
	for _, id := range ids {
		f.waitRun(t, "ship", id, flow.StatusSucceeded)
	}
	mu.Lock()
	defer mu.Unlock()
	if most > 2 {
		t.Errorf("%d calls in progress at once, the limit is 2", most)
	}
	if span := times[n-1].Sub(times[0]); span < 900*time.Millisecond {
		t.Errorf("%d calls in %s: faster than 20 a second", n, span)
	}
}

// TestStepDeliveryOverrides: a step's delivery overrides its system's: whenOffline fail
// instead of park, and its own retry budget.
func TestStepDeliveryOverrides(t *testing.T) {
	erp := startFlakyERP(t, func(int) int { return http.StatusServiceUnavailable })
	f, st := startWithStatus(t, `apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "`+erp.URL+`"}
  health: {breaker: {disabled: true}}
  operations:
    ship: {http: {method: POST, path: "/orders/{orderId}"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: ship}
spec:
  trigger: {message: {types: [order.paid]}}
  steps:
    - id: ship
      call: erp.ship
      with: {orderId: "${{ .data.orderId }}"}
      delivery:
        whenOffline: fail
        retry: {maxRetries: 1, backoff: fixed, initialDelay: 1s, jitter: 0}
`)
	// Its own retry budget: one retry, where the system's default is five.
	id := f.send(t, "order.paid", `{"orderId":"o1"}`)
	run := f.waitRun(t, "ship", id, flow.StatusFailed, flow.StatusSucceeded)
	if run.Retries != 1 || len(erp.shipTimes()) != 2 {
		t.Errorf("%d retries, %d calls; want 1 and 2", run.Retries, len(erp.shipTimes()))
	}
	// Offline: the step fails where the system would park.
	if err := st.SetSwitch(context.Background(), "erp", status.Switch{Status: status.Offline, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	id = f.send(t, "order.paid", `{"orderId":"o2"}`)
	run = f.waitRun(t, "ship", id, flow.StatusFailed, flow.StatusParked, flow.StatusSucceeded)
	if run.Status != flow.StatusFailed || !strings.Contains(run.Error, "is offline") {
		t.Errorf("offline: %s %s", run.Status, run.Error)
	}
}
