package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/testutil"
)

// copyDir copies a definitions directory so a test can change it.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		testutil.WriteFiles(t, to, map[string]string{filepath.ToSlash(rel): string(data)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

func TestTestCommandOnTheQuickstart(t *testing.T) {
	out, err := runForTest(t, newTestCmd(), "../../examples/quickstart")
	if err != nil || !strings.Contains(out, "PASS: 3 tests") {
		t.Fatalf("%v\n%s", err, out)
	}

	// A wrong expectation fails, says where, and shows what differs.
	dir := copyDir(t, "../../examples/quickstart")
	path := filepath.Join(dir, "tests", "flows.test.yaml")
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(data), "data: {orderId: A-1001, total: 249, lines: 5}", "data: {orderId: A-1001, total: 249, lines: 6}", 1)), 0o644)
	out, err = runForTest(t, newTestCmd(), dir)
	if exitCodeOf(err) != 1 {
		t.Fatalf("exit %v\n%s", err, out)
	}
	for _, want := range []string{
		"FAIL  large-order-is-announced (flow announce-large-orders) tests/flows.test.yaml:3:1",
		"      expect.published[0].data.lines: want 6, got 5",
		"ok    order-summary-answers",
		"FAIL: 1 of 3 tests failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if out, err := runForTest(t, newTestCmd(), dir, "--run", "summary"); err != nil || !strings.Contains(out, "PASS: 1 tests") {
		t.Errorf("--run: %v\n%s", err, out)
	}
}

func TestTestCommandStubs(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"defs.yaml": `apiVersion: causeway/v1
kind: MessageType
metadata: {name: order.paid}
spec:
  schema: {type: object, required: [orderId], properties: {orderId: {type: string}}}
---
apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "https://erp.invalid", auth: {bearer: "${secret:ERP_TOKEN}"}}
  operations:
    getOrder: {http: {method: GET, path: "/orders/{orderId}"}}
    ship: {http: {method: POST, path: "/orders/{orderId}/ship"}}
---
apiVersion: causeway/v1
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
      if: .steps.order.output.status == "paid"
      call: erp.ship
      with: {orderId: "${{ .data.orderId }}", body: {carrier: dhl}}
      retry: {attempts: 3, backoff: 1ms}
  onError:
    - {id: note, set: {failed: true}}
`, "tests.yaml": `apiVersion: causeway/v1
kind: FlowTest
metadata: {name: ships-after-a-blip}
spec:
  flow: ship
  message: {type: order.paid, data: {orderId: A-1}}
  stubs:
    - call: erp.getOrder
      match: {orderId: A-1}
      respond: {body: {status: paid}}
    - call: erp.ship
      responses: [{status: 503}, {status: 200, body: {shipped: true}}]
  expect:
    status: succeeded
    calls:
      - {call: erp.getOrder, with: {orderId: A-1}}
      - {call: erp.ship, with: {orderId: A-1, body: {carrier: dhl}}}
      - {call: erp.ship}
---
apiVersion: causeway/v1
kind: FlowTest
metadata: {name: not-found-fails}
spec:
  flow: ship
  message: {type: order.paid, data: {orderId: B-2}}
  stubs:
    - call: erp.getOrder
      respond: {status: 404}
  expect:
    status: failed
    error: "HTTP 404"
    vars: {failed: true}
    calls: [{call: erp.getOrder}]
---
apiVersion: causeway/v1
kind: FlowTest
metadata: {name: wrong-on-purpose}
spec:
  flow: ship
  message: {type: order.paid, data: {orderId: C-3}}
  stubs:
    - call: erp.getOrder
      match: {orderId: A-1}
      respond: {body: {status: paid}}
  expect:
    status: succeeded
    calls: [{call: erp.getOrder, with: {orderId: C-4}}, {call: erp.ship}]
`})
	out, err := runForTest(t, newTestCmd(), dir)
	if exitCodeOf(err) != 1 {
		t.Fatalf("exit %v\n%s", err, out)
	}
	for _, want := range []string{
		"ok    not-found-fails",
		"ok    ships-after-a-blip",
		"FAIL  wrong-on-purpose (flow ship) tests.yaml:",
		`      expect.status: want succeeded, got failed (step order: call erp.getOrder: no stub answers this call (with {"orderId":"C-3"}) (permanent))`,
		"      expect.calls: want 2 calls, got 1: [erp.getOrder]",
		`      expect.calls[0].with.orderId: want "C-4", got "C-3"`,
		"FAIL: 1 of 3 tests failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
