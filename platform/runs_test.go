package platform

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/flow"
)

// TestRunsThroughTheAPI runs a flow in a node and finds its run by id, in the run list with
// its filters, and in the timeline of the message that triggered it.
func TestRunsThroughTheAPI(t *testing.T) {
	erp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"confirmed":true}`)
	}))
	defer erp.Close()
	p := runPlatform(t, func(o *Options) {
		err := os.WriteFile(filepath.Join(o.ConfigDir, "flow.yaml"), []byte(`apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "`+erp.URL+`"}
  operations:
    confirm: {http: {method: POST, path: "/orders/{id}/confirm"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: confirm-orders}
spec:
  trigger:
    message: {types: [order.created]}
  steps:
    - id: confirm
      call: erp.confirm
      with: {id: "${{ .data.orderId }}"}
`), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	})
	a := do(t, "POST", "http://"+p.HTTPAddr()+"/v1/messages", "application/cloudevents+json",
		`{"id":"run-1","source":"webshop","type":"order.created","correlationid":"corr-9","data":{"orderId":"A-7","items":[{"sku":"S","qty":1}]}}`)
	if a.status != 202 {
		t.Fatalf("post: %d %s", a.status, a.raw)
	}
	admin := "http://" + p.AdminAddr()
	runID := flow.RunID("confirm-orders", "run-1")

	// The run list is an index that follows the journal: poll it.
	deadline := time.Now().Add(15 * time.Second)
	var list answer
	for {
		list = do(t, "GET", admin+"/v1/runs?flow=confirm-orders&status=succeeded&correlationId=corr-9", "", "")
		if runs, _ := list.body["runs"].([]any); len(runs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run not listed: %d %s", list.status, list.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := list.body["runs"].([]any)[0].(map[string]any)
	if got["id"] != runID || got["triggerMessageId"] != "run-1" || got["triggerType"] != "order.created" {
		t.Errorf("listed run %v", got)
	}
	for _, q := range []string{"flow=other", "status=failed", "correlationId=nope", "message=other", "from=2999-01-01T00:00:00Z"} {
		if a := do(t, "GET", admin+"/v1/runs?"+q, "", ""); len(a.body["runs"].([]any)) != 0 {
			t.Errorf("%s: listed %s", q, a.raw)
		}
	}
	if a := do(t, "GET", admin+"/v1/runs?message=run-1&limit=5", "", ""); len(a.body["runs"].([]any)) != 1 {
		t.Errorf("by message: %s", a.raw)
	}

	// The whole record, with the step's input and output.
	rec := do(t, "GET", admin+"/v1/runs/"+runID, "", "")
	steps, _ := rec.body["steps"].([]any)
	if rec.status != 200 || rec.body["status"] != "succeeded" || len(steps) != 1 {
		t.Fatalf("run record: %d %s", rec.status, rec.raw)
	}
	step := steps[0].(map[string]any)
	if step["input"].(map[string]any)["id"] != "A-7" || step["output"].(map[string]any)["confirmed"] != true {
		t.Errorf("step record %v", step)
	}

	// The message's timeline names the run.
	msg := waitMessage(t, p, "run-1")
	runs, _ := msg["runs"].([]any)
	if len(runs) != 1 || runs[0].(map[string]any)["flow"] != "confirm-orders" {
		t.Errorf("message runs: %v", msg["runs"])
	}

	// Errors are problems.
	for q, want := range map[string]string{
		"/v1/runs/nope":            "no run with id",
		"/v1/runs?from=yesterday":  "not an RFC 3339 time",
		"/v1/runs?limit=0":         "must be a number from 1 to 1000",
		"/v1/runs?status=exploded": "must be running, succeeded, failed or waiting",
	} {
		a := do(t, "GET", admin+q, "", "")
		if a.status/100 != 4 || a.header.Get("Content-Type") != "application/problem+json" || !strings.Contains(a.raw, want) {
			t.Errorf("%s: %d %s %s", q, a.status, a.header.Get("Content-Type"), a.raw)
		}
	}
}

// TestInvokeAnswers checks the HTTP answers of POST /v1/flows/{name}/invoke.
func TestInvokeAnswers(t *testing.T) {
	p := runPlatform(t, func(o *Options) {
		err := os.WriteFile(filepath.Join(o.ConfigDir, "flow.yaml"), []byte(`apiVersion: causeway/v1
kind: Flow
metadata: {name: echo}
spec:
  trigger:
    invoke: {}
  steps:
    - id: answer
      reply: {status: 202, headers: {Location: "/things/${{ .data.id }}"}, body: {id: "${{ .data.id }}"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: slow}
spec:
  trigger:
    invoke: {timeout: 200ms}
  steps:
    - {id: wait, delay: 2s}
`), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	})
	base := "http://" + p.AdminAddr() + "/v1/flows/"
	a := do(t, "POST", base+"echo/invoke", "application/json", `{"id":"x1"}`)
	if a.status != 202 || a.header.Get("Location") != "/things/x1" || a.body["id"] != "x1" || a.header.Get(HeaderRunID) == "" {
		t.Errorf("echo: %d %v %s", a.status, a.header, a.raw)
	}
	a = do(t, "POST", base+"slow/invoke", "application/json", `{}`)
	if a.status != 504 || a.body["runId"] == nil || a.header.Get(HeaderRunID) != a.body["runId"] || !strings.Contains(a.raw, "the run goes on") {
		t.Errorf("slow: %d %v %s", a.status, a.header, a.raw)
	}
	for path, want := range map[string]int{"echo/invoke|{not json": 400, "nope/invoke|{}": 404} {
		pth, body, _ := strings.Cut(path, "|")
		if a := do(t, "POST", base+pth, "application/json", body); a.status != want || a.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s", pth, a.status, a.raw)
		}
	}
}
