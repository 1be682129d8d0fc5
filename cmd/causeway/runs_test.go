package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/flow"
)

// TestRunsAgainstANode sends a large order to a node on the quickstart example, whose flow
// publishes order.large for it, and finds the run with `causeway runs list` and `show`.
func TestRunsAgainstANode(t *testing.T) {
	p := runQuickstart(t)
	admin := "http://" + p.AdminAddr()
	order := `{"orderId":"A-2001","customer":{"email":"jane@example.com"},"items":[{"sku":"S","qty":3},{"sku":"T","qty":2}],"total":249}`
	id, err := runForTest(t, newSendCmd(), "--type", "order.created", "--source", "webshop", "--data", order, "--server", "http://"+p.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	id = strings.TrimSpace(id)
	runID := flow.RunID("announce-large-orders", id)

	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := runForTest(t, newRunsCmd(), "list", "--admin", admin, "--flow", "announce-large-orders", "--status", "succeeded", "--json")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, runID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not listed: %s", runID, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, err := runForTest(t, newRunsCmd(), "list", "--admin", admin, "--since", "1h")
	if err != nil || !strings.Contains(out, "RUN") || !strings.Contains(out, runID+"  announce-large-orders  succeeded") || !strings.Contains(out, id) {
		t.Fatalf("table: %v\n%s", err, out)
	}

	out, err = runForTest(t, newRunsCmd(), "show", "--admin", admin, runID)
	if err != nil {
		t.Fatal(err)
	}
	var run struct {
		Status string
		Steps  []struct {
			ID     string
			Status string
			Output map[string]any
		}
	}
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if run.Status != "succeeded" || len(run.Steps) != 2 || run.Steps[0].Output["lines"] != float64(5) || run.Steps[1].Output["type"] != "order.large" {
		t.Errorf("run %+v", run)
	}

	// Resubmitting starts a new run of the same flow, linked to the first.
	newID, err := runForTest(t, newRunsCmd(), "resubmit", "--admin", admin, runID)
	if err != nil {
		t.Fatal(err)
	}
	newID = strings.TrimSpace(newID)
	deadline = time.Now().Add(15 * time.Second)
	for {
		out, err := runForTest(t, newRunsCmd(), "show", "--admin", admin, newID)
		if err == nil && strings.Contains(out, `"resubmitOf": "`+runID+`"`) && strings.Contains(out, `"status": "succeeded"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resubmitted run %s: %v\n%s", newID, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := runForTest(t, newRunsCmd(), "resubmit", "--admin", admin, "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("resubmit of an unknown run: %v", err)
	}

	// An unknown run is the node's problem, said plainly.
	if _, err := runForTest(t, newRunsCmd(), "show", "--admin", admin, "nope"); err == nil || !strings.Contains(err.Error(), `404 Not Found: no run with id "nope"`) {
		t.Errorf("unknown run: %v", err)
	}
	if _, err := runForTest(t, newRunsCmd(), "list", "--admin", admin, "--status", "bad"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("bad status: %v", err)
	}
}

// TestFlowsInvokeAgainstANode invokes the quickstart's order-summary flow by name.
func TestFlowsInvokeAgainstANode(t *testing.T) {
	p := runQuickstart(t)
	admin := "http://" + p.AdminAddr()
	out, err := runForTest(t, newFlowsCmd(), "invoke", "order-summary", "--admin", admin, "--data", `{"orderId":"A-1","items":[{"sku":"S","qty":3},{"sku":"T","qty":2}]}`)
	if err != nil || strings.TrimSpace(out) != `{"items":5,"lines":2,"orderId":"A-1"}` {
		t.Fatalf("invoke: %v %q", err, out)
	}
	_, err = runForTest(t, newFlowsCmd(), "invoke", "announce-large-orders", "--admin", admin)
	if err == nil || !strings.Contains(err.Error(), `404 Not Found: no flow "announce-large-orders" with an invoke trigger is defined`) {
		t.Errorf("a flow without an invoke trigger: %v", err)
	}
	_, err = runForTest(t, newFlowsCmd(), "invoke", "order-summary", "--admin", admin, "--data", `{"items":"none"}`)
	if err == nil || !strings.Contains(err.Error(), "500 Internal Server Error: the run failed before it answered") || !strings.Contains(err.Error(), "(run ") {
		t.Errorf("a failing run: %v", err)
	}
}
