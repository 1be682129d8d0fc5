package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/flow"
)

// counter is a real HTTP server that counts the calls of each step, by idempotency key.
// While slow is set, the second step's calls hang, so that a kill finds them in flight.
type counter struct {
	mu   sync.Mutex
	keys map[string]int // idempotency key → calls
	step map[string]int // step → calls
	slow atomic.Bool
	url  string
}

func startCounter(t *testing.T) *counter {
	c := &counter{keys: map[string]int{}, step: map[string]int{}}
	c.slow.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		step := strings.Split(strings.Trim(r.URL.Path, "/"), "/")[0]
		c.mu.Lock()
		c.keys[r.Header.Get("Idempotency-Key")]++
		c.step[step]++
		c.mu.Unlock()
		if step == "s2" && c.slow.Load() {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute):
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

func (c *counter) calls(step string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.step[step]
}

func (c *counter) byKey(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[key]
}

// TestFlowResumesAfterKill9 runs a flow of three calls for many messages, kills the node
// with SIGKILL while every run is inside step 2, restarts it on the same data, and checks
// that every run completes, that step 1 was called exactly once per run, and that step 2's
// repeated call carried the same idempotency key.
func TestFlowResumesAfterKill9(t *testing.T) {
	const runs = 12
	c := startCounter(t)
	cfg := writeConfig(t, map[string]string{
		"defs.yaml": `apiVersion: causeway/v1
kind: MessageType
metadata: {name: order.paid}
spec:
  schema: {type: object, required: [orderId], properties: {orderId: {type: string}}}
---
apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "` + c.url + `", timeout: 2m}
  operations:
    s1: {http: {method: POST, path: "/s1/{id}"}}
    s2: {http: {method: POST, path: "/s2/{id}"}}
    s3: {http: {method: POST, path: "/s3/{id}"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: three}
spec:
  trigger:
    message: {types: [order.paid]}
  concurrency: 32
  steps:
    - {id: one, call: erp.s1, with: {id: "${{ .data.orderId }}"}}
    - {id: two, call: erp.s2, with: {id: "${{ .data.orderId }}"}}
    - {id: three, call: erp.s3, with: {id: "${{ .data.orderId }}"}}
`,
	})
	data := t.TempDir()
	n := startNode(t, cfg, data, "--flow-ack-wait", "2s")
	var ids []string
	for i := range runs {
		status, body, err := postJSON("http://"+n.http+"/v1/messages", "application/cloudevents+json",
			fmt.Sprintf(`{"specversion":"1.0","source":"e2e","type":"order.paid","data":{"orderId":"o%d"}}`, i))
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("post: %d %v %v", status, body, err)
		}
		ids = append(ids, body["ids"].([]any)[0].(string))
	}
	waitFor(t, 30*time.Second, func() bool { return c.calls("s2") == runs }, "every run to be inside step 2")
	n.kill()
	t.Logf("killed with %d step-1 calls and %d step-2 calls in flight", c.calls("s1"), c.calls("s2"))

	c.slow.Store(false)
	n2 := startNode(t, cfg, data, "--flow-ack-wait", "2s")
	for _, id := range ids {
		runID := flow.RunID("three", id)
		waitFor(t, 60*time.Second, func() bool {
			status, body, err := getJSON("http://" + n2.admin + "/v1/runs/" + runID)
			return err == nil && status == 200 && body["status"] == "succeeded"
		}, "run "+runID+" to succeed")
		if got := c.byKey(runID + "/one"); got != 1 {
			t.Errorf("run %s: step 1 called %d times, want exactly once", runID, got)
		}
		if got := c.byKey(runID + "/two"); got < 2 {
			t.Errorf("run %s: step 2 called %d times with its key, want the interrupted call and its repeat", runID, got)
		}
		if got := c.byKey(runID + "/three"); got != 1 {
			t.Errorf("run %s: step 3 called %d times, want once", runID, got)
		}
	}
	if c.calls("s1") != runs || c.calls("s3") != runs {
		t.Errorf("calls: s1 %d, s3 %d; want %d each", c.calls("s1"), c.calls("s3"), runs)
	}
	t.Logf("after restart: s1 %d, s2 %d, s3 %d calls for %d runs", c.calls("s1"), c.calls("s2"), c.calls("s3"), runs)
}

// waitFor polls cond with a deadline.
func waitFor(t *testing.T, limit time.Duration, cond func() bool, what string) {
	t.Helper()
	if !eventually(limit, cond) {
		t.Fatalf("timed out after %s waiting for %s", limit, what)
	}
}

// eventually polls cond until it holds or limit has passed, and reports whether it held.
func eventually(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// TestDelaySurvivesARestart kills a node while a run waits in a 2 s delay, restarts it, and
// checks that the run goes on after the wait, calling the next step once.
func TestDelaySurvivesARestart(t *testing.T) {
	c := startCounter(t)
	c.slow.Store(false)
	cfg := writeConfig(t, map[string]string{
		"defs.yaml": `apiVersion: causeway/v1
kind: MessageType
metadata: {name: order.paid}
spec:
  schema: {type: object}
---
apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "` + c.url + `"}
  operations:
    s3: {http: {method: POST, path: "/s3/{id}"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: later}
spec:
  trigger:
    message: {types: [order.paid]}
  steps:
    - {id: wait, delay: 2s}
    - {id: three, call: erp.s3, with: {id: x}}
`,
	})
	data := t.TempDir()
	n := startNode(t, cfg, data, "--flow-ack-wait", "2s")
	start := time.Now()
	status, body, err := postJSON("http://"+n.http+"/v1/messages", "application/cloudevents+json", `{"specversion":"1.0","source":"e2e","type":"order.paid","data":{}}`)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("post: %d %v %v", status, body, err)
	}
	runID := flow.RunID("later", body["ids"].([]any)[0].(string))
	waitFor(t, 10*time.Second, func() bool {
		status, body, err := getJSON("http://" + n.admin + "/v1/runs/" + runID)
		return err == nil && status == 200 && body["status"] == "waiting"
	}, "the run to wait")
	n.kill()
	if c.calls("s3") != 0 {
		t.Fatal("the step after the delay ran before the delay ended")
	}
	n2 := startNode(t, cfg, data, "--flow-ack-wait", "2s")
	waitFor(t, 30*time.Second, func() bool {
		status, body, err := getJSON("http://" + n2.admin + "/v1/runs/" + runID)
		return err == nil && status == 200 && body["status"] == "succeeded"
	}, "the run to succeed after the restart")
	if elapsed := time.Since(start); elapsed < 2*time.Second {
		t.Errorf("the run ended %s after it started, before its 2s delay", elapsed)
	}
	if got := c.byKey(runID + "/three"); got != 1 {
		t.Errorf("the step after the delay was called %d times, want once", got)
	}
}

// TestFlowEndToEnd runs the quickstart through the real binary: a large order goes in, the
// flow publishes order.large, the follow-up is stored and tracked with its cause, and the
// run's history names both.
func TestFlowEndToEnd(t *testing.T) {
	n := startNode(t, "../examples/quickstart", t.TempDir())
	status, body, err := postJSON("http://"+n.http+"/v1/messages", "application/cloudevents+json",
		`{"specversion":"1.0","source":"webshop","type":"order.created","data":{"orderId":"E-1","customer":{"email":"a@example.com"},"items":[{"sku":"S","qty":4}],"total":400}}`)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("post: %d %v %v", status, body, err)
	}
	id := body["ids"].([]any)[0].(string)
	runID := flow.RunID("announce-large-orders", id)
	var run map[string]any
	waitFor(t, 20*time.Second, func() bool {
		status, b, err := getJSON("http://" + n.admin + "/v1/runs/" + runID)
		run = b
		return err == nil && status == 200 && b["status"] == "succeeded"
	}, "the run to succeed")
	steps := run["steps"].([]any)
	announce := steps[len(steps)-1].(map[string]any)
	followUp := announce["output"].(map[string]any)["id"].(string)

	// The follow-up is an accepted message of its own, caused by the order.
	var msg map[string]any
	waitFor(t, 20*time.Second, func() bool {
		status, b, err := getJSON("http://" + n.admin + "/v1/messages/" + followUp)
		msg = b
		return err == nil && status == 200
	}, "the follow-up to be indexed")
	m := msg["message"].(map[string]any)
	if m["type"] != "order.large" || m["causationid"] != id || m["correlationid"] != id || m["subject"] != "order/E-1" {
		t.Errorf("follow-up %v", m)
	}
	if data := m["data"].(map[string]any); data["lines"] != float64(4) {
		t.Errorf("follow-up data %v", data)
	}
	// The order's own view lists the run it started, once the index has it.
	waitFor(t, 20*time.Second, func() bool {
		_, order, _ := getJSON("http://" + n.admin + "/v1/messages/" + id)
		runs, _ := order["runs"].([]any)
		return len(runs) == 1 && runs[0].(map[string]any)["status"] == "succeeded"
	}, "the order's view to list its run")
}
