package flow_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/causeway/causeway/flow"
)

const invokeFlows = `apiVersion: causeway/v1
kind: Flow
metadata: {name: lookup}
spec:
  trigger:
    invoke: {timeout: 5s}
  steps:
    - id: order
      call: erp.getOrder
      with: {orderId: "${{ .data.id }}"}
    - id: answer
      reply:
        status: 201
        headers: {X-Order: "yes"}
        body: {order: "${{ .steps.order.output }}", asked: "${{ .data.id }}"}
    - id: after
      set: {done: true}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: silent}
spec:
  trigger:
    invoke: {}
  steps:
    - {id: noop, set: {a: 1}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: broken}
spec:
  trigger:
    invoke: {}
  steps:
    - {id: boom, fail: "no ${{ .data.id }}"}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: slow}
spec:
  trigger:
    invoke: {timeout: 300ms}
  steps:
    - {id: wait, delay: 1s}
    - {id: answer, reply: {body: late}}
`

func TestInvokeAndReply(t *testing.T) {
	erp := startERP(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"paid"}`)
	})
	f := startEngine(t, erp.URL, invokeFlows)
	ctx := context.Background()

	a, inv, err := f.engine.Invoke(ctx, "lookup", json.RawMessage(`{"id":"A-9"}`))
	if err != nil {
		t.Fatal(err)
	}
	body := a.Body
	if a.Status != 201 || a.Headers["X-Order"] != "yes" || string(body) != `{"asked":"A-9","order":{"status":"paid"}}` || a.RunID != inv.RunID {
		t.Errorf("answer %+v body %s", a, body)
	}
	// The run goes on after its reply.
	run := f.waitRunID(t, inv.RunID, flow.StatusSucceeded)
	if run.Trigger.Kind != "invoke" || run.Vars["done"] != true {
		t.Errorf("run %+v", run)
	}
	if calls := erp.seen(); len(calls) != 1 || calls[0].Path != "/orders/A-9" {
		t.Errorf("calls %+v", calls)
	}

	// A run that ends without a reply answers 204; one that fails, 500 with its error.
	if a, _, err := f.engine.Invoke(ctx, "silent", json.RawMessage(`{}`)); err != nil || a.Status != 204 {
		t.Errorf("silent: %+v %v", a, err)
	}
	if a, _, err := f.engine.Invoke(ctx, "broken", json.RawMessage(`{"id":"X"}`)); err != nil || a.Status != 500 || !strings.Contains(a.Error, "failed: no X") {
		t.Errorf("broken: %+v %v", a, err)
	}
	// No answer in time: the caller is told, with the run to look at, and the run goes on.
	_, inv, err = f.engine.Invoke(ctx, "slow", json.RawMessage(`{}`))
	if !errors.Is(err, flow.ErrNoAnswer) || inv == nil {
		t.Fatalf("slow: %v", err)
	}
	f.waitRunID(t, inv.RunID, flow.StatusSucceeded)
	// Unknown flows, and flows without an invoke trigger, cannot be invoked.
	for _, name := range []string{"nope", ""} {
		if _, _, err := f.engine.Invoke(ctx, name, nil); !errors.Is(err, flow.ErrNoFlow) {
			t.Errorf("%q: %v", name, err)
		}
	}
}
