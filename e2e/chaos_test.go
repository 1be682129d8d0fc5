package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/flow"
)

// chaosSystem is a real HTTP server on a fixed loopback port that can go down (its port
// refuses connections) and come back. Like a careful system, it deduplicates by
// idempotency key: the count of unique keys is the count of deliveries in effect.
type chaosSystem struct {
	addr     string
	mu       sync.Mutex
	srv      *http.Server
	keys     map[string]int
	requests int
}

func startChaosSystem(t *testing.T) *chaosSystem {
	c := &chaosSystem{addr: freePort(t), keys: map[string]int{}}
	c.up(t)
	t.Cleanup(c.down)
	return c
}

func (c *chaosSystem) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	c.requests++
	c.keys[r.Header.Get("Idempotency-Key")]++
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// up listens on the system's port again (which the kernel may hold a moment).
func (c *chaosSystem) up(t *testing.T) {
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ln, err = net.Listen("tcp", c.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the test system cannot listen on %s again: %v", c.addr, err)
	}
	srv := &http.Server{Handler: c}
	c.mu.Lock()
	c.srv = srv
	c.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down closes the port and every connection: calls are refused.
func (c *chaosSystem) down() {
	c.mu.Lock()
	srv := c.srv
	c.srv = nil
	c.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (c *chaosSystem) counts() (unique, requests int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys), c.requests
}

const chaosMessages = 5000

func chaosDefs(addr string, park bool) string {
	delivery := `
  health:
    breaker: {consecutiveFailures: 5, openFor: 5s}
  delivery:
    # The outage is met with retry messages (parking is the maintenance test's).
    whenOffline: retry
    retry: {maxRetries: 12, backoff: exponential, initialDelay: 1s, maxDelay: 4s, jitter: 0.2}`
	if park {
		delivery = `
  health:
    breaker: {consecutiveFailures: 5, openFor: 5s}
  delivery:
    whenOffline: park
    release: {rate: 1000, rampUp: 5s}
    retry: {maxRetries: 12, backoff: exponential, initialDelay: 1s, maxDelay: 4s, jitter: 0.2}`
	}
	return `apiVersion: causeway/v1
kind: MessageType
metadata: {name: order.paid}
spec:
  schema: {type: object, required: [orderId], properties: {orderId: {type: string}}}
---
apiVersion: causeway/v1
kind: System
metadata: {name: fulfilment}
spec:
  http: {baseURL: "http://` + addr + `", timeout: 2s}` + delivery + `
  operations:
    deliver: {http: {method: POST, path: "/orders/{id}"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: deliver}
spec:
  trigger:
    message: {types: [order.paid]}
  concurrency: 32
  steps:
    - {id: deliver, call: fulfilment.deliver, with: {id: "${{ .data.orderId }}", body: "${{ .data }}"}}
`
}

// TestChaosOutage sends 5,000 messages into a flow that calls an HTTP system, which goes
// down (connection refused) for 20 s in the middle and comes back: every message is
// delivered once in effect, nothing is left in the errors queue, and the messages that
// met the outage were retried as retry messages with growing retry counts.
func TestChaosOutage(t *testing.T) { runChaos(t, false, false) }

// TestChaosOutageWithKill9 is the same, with the node killed with SIGKILL while the
// outage lasts and retries are scheduled, and started again on the same data.
func TestChaosOutageWithKill9(t *testing.T) { runChaos(t, true, false) }

// TestChaosOutageParked is the outage with the system parking its deliveries: the circuit
// breaker opens after a few failed calls, the rest are parked without calls, and released
// when trial calls find the system back; killed with SIGKILL in the middle too.
func TestChaosOutageParked(t *testing.T) { runChaos(t, true, true) }

func runChaos(t *testing.T, kill, park bool) {
	if testing.Short() {
		t.Skip("the chaos test takes a minute; not in -short")
	}
	sys := startChaosSystem(t)
	cfg := writeConfig(t, map[string]string{"defs.yaml": chaosDefs(sys.addr, park)})
	data := t.TempDir()
	n := startNode(t, cfg, data)

	const batches, perBatch = 50, chaosMessages / 50
	var outageStart, outageEnd time.Time
	var duringOutage string // an order sent while the system was down
	downAt, upAt := 15, 20*time.Second
	start := time.Now()
	for b := range batches {
		if b == downAt {
			sys.down()
			outageStart = time.Now()
			t.Logf("system down after %d messages", b*perBatch)
		}
		items := make([]string, perBatch)
		for i := range items {
			id := fmt.Sprintf("o-%d-%d", b, i)
			items[i] = fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"chaos","type":"order.paid","data":{"orderId":%q}}`, id, id)
		}
		if b == downAt+2 {
			duringOutage = fmt.Sprintf("o-%d-0", b)
		}
		status, body, err := postJSON("http://"+n.http+"/v1/messages", "application/cloudevents-batch+json", "["+strings.Join(items, ",")+"]")
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("batch %d: %d %v %v", b, status, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d messages accepted in %s", chaosMessages, time.Since(start).Round(time.Millisecond))

	if kill {
		// Retries are scheduled on the bus now; kill the node while they wait.
		waiting := "retrying"
		if park {
			waiting = "parked"
		}
		waitFor(t, 30*time.Second, func() bool {
			_, body, err := getJSON("http://" + n.admin + "/v1/runs/" + flow.RunID("deliver", duringOutage))
			return err == nil && body["status"] == waiting
		}, "a run to be "+waiting)
		n.kill()
		t.Logf("node killed %s into the outage", time.Since(outageStart).Round(time.Millisecond))
		n = startNode(t, cfg, data)
	}
	time.Sleep(time.Until(outageStart.Add(upAt)))
	sys.up(t)
	outageEnd = time.Now()
	t.Logf("system up again after %s", outageEnd.Sub(outageStart).Round(time.Millisecond))

	if !eventually(120*time.Second, func() bool { u, _ := sys.counts(); return u >= chaosMessages }) {
		// Say what is missing, for a failure that does not come back when run again.
		unique, requests := sys.counts()
		_, errs, _ := getJSON("http://" + n.admin + "/v1/errors")
		entries, _ := errs["entries"].([]any)
		var first any
		if len(entries) > 0 {
			first = entries[0]
		}
		// The flow's call sends run id/step as its idempotency key.
		var missing []string
		sys.mu.Lock()
		for b := range batches {
			for i := range perBatch {
				id := fmt.Sprintf("o-%d-%d", b, i)
				if sys.keys[flow.RunID("deliver", id)+"/deliver"] == 0 {
					missing = append(missing, id)
				}
			}
		}
		sys.mu.Unlock()
		var about []string
		for _, id := range missing[:min(len(missing), 3)] {
			_, run, _ := getJSON("http://" + n.admin + "/v1/runs/" + flow.RunID("deliver", id))
			_, msg, _ := getJSON("http://" + n.admin + "/v1/messages/" + id)
			about = append(about, fmt.Sprintf("%s: run %v; message %v", id, run, msg))
		}
		t.Fatalf("timed out after 120s waiting for every message to be delivered: %d unique of %d in %d requests; %d entries in the errors queue, the first %v; not delivered: %v\n%s",
			unique, chaosMessages, requests, len(entries), first, missing, strings.Join(about, "\n"))
	}
	// Settle: retries still in flight would show as extra unique keys.
	time.Sleep(2 * time.Second)
	unique, requests := sys.counts()
	t.Logf("delivered: %d unique idempotency keys in %d requests; all done %s after the outage", unique, requests,
		time.Since(outageEnd).Round(time.Millisecond))
	if unique != chaosMessages {
		t.Errorf("%d unique deliveries, want exactly %d", unique, chaosMessages)
	}
	status, body, err := getJSON("http://" + n.admin + "/v1/errors")
	if err != nil || status != 200 || len(body["entries"].([]any)) != 0 {
		t.Errorf("errors queue: %d %v %v", status, body, err)
	}

	// The run of a message sent during the outage: retried, with a retry message per retry,
	// each counting up and caused by the one before.
	runID := flow.RunID("deliver", duringOutage)
	waitFor(t, 30*time.Second, func() bool {
		_, body, err := getJSON("http://" + n.admin + "/v1/runs/" + runID)
		return err == nil && body["status"] == "succeeded"
	}, "the run of "+duringOutage+" to succeed")
	_, run, _ := getJSON("http://" + n.admin + "/v1/runs/" + runID)
	if park {
		parks, _ := run["parks"].(float64)
		if parks < 1 || run["parkedOn"] != "fulfilment" {
			t.Errorf("run %s of a message sent during the outage: parks %v on %v", runID, run["parks"], run["parkedOn"])
		}
		_, sys, _ := getJSON("http://" + n.admin + "/v1/systems/fulfilment")
		t.Logf("run %s parked %v times; the system is %v (%v), %v parked", runID, parks, sys["status"], sys["reason"], sys["parked"])
		return
	}
	retries, _ := run["retries"].(float64)
	if retries < 2 {
		t.Fatalf("run %s of a message sent during a 20 s outage was retried %v times", runID, retries)
	}
	cause := duringOutage
	for k := 1; k <= int(retries); k++ {
		id := fmt.Sprintf("retry-%s-%d", runID, k)
		var msg map[string]any
		waitFor(t, 15*time.Second, func() bool {
			status, body, err := getJSON("http://" + n.admin + "/v1/messages/" + id)
			if err != nil || status != 200 || body["message"] == nil {
				return false
			}
			msg = body["message"].(map[string]any)
			return true
		}, "retry message "+id+" in the index")
		if msg["kind"] != "retry" || msg["retrycount"] != float64(k) || msg["causationid"] != cause || msg["target"] != "flow:deliver" {
			t.Errorf("retry message %d: %v", k, msg)
		}
		cause = id
	}
	t.Logf("run %s: %v retries, each a retry message with retrycount 1..%v", runID, retries, retries)
}
