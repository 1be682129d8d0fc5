package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/testutil"
)

// TestErrorsCommands fails a delivery into the errors queue of a node and works it with
// `causeway errors`: list, show, a dry run, the refusals, and a patched replay.
func TestErrorsCommands(t *testing.T) {
	var fixed atomic.Bool
	var shipped atomic.Value
	erp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !fixed.Load() {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		shipped.Store(r.URL.Path + " " + string(body))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer erp.Close()
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
  http: {baseURL: "` + erp.URL + `"}
  operations:
    ship: {http: {method: POST, path: "/ship/{id}"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: ship}
spec:
  trigger: {message: {types: [order.paid]}}
  steps:
    - {id: ship, call: erp.ship, with: {id: "${{ .data.orderId }}"}}
`})
	p := runNodeOn(t, dir)
	admin := "--admin=http://" + p.AdminAddr()
	if _, err := runForTest(t, newSendCmd(), "--type", "order.paid", "--source", "shop", "--data", `{"orderId":"A-9"}`, "--server", "http://"+p.HTTPAddr()); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Entries []struct {
			Seq         uint64
			Fingerprint string
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(list.Entries) == 0 {
		out, err := runForTest(t, newErrorsCmd(), "list", admin, "--flow", "ship", "--json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if time.Now().After(deadline) {
			t.Fatal("no entry in the errors queue")
		}
		time.Sleep(50 * time.Millisecond)
	}
	seq := fmt.Sprint(list.Entries[0].Seq)
	out, err := runForTest(t, newErrorsCmd(), "list", admin, "--system", "erp", "--since", "1h")
	if err != nil || !strings.Contains(out, "FINGERPRINT") || !strings.Contains(out, seq+" ") ||
		!strings.Contains(out, "flow ship step ship") || !strings.Contains(out, list.Entries[0].Fingerprint) || !strings.Contains(out, "permanent") {
		t.Errorf("list: %v\n%s", err, out)
	}
	if out, err := runForTest(t, newErrorsCmd(), "show", admin, seq); err != nil || !strings.Contains(out, `"orderId": "A-9"`) {
		t.Errorf("show: %v\n%s", err, out)
	}
	if out, err := runForTest(t, newErrorsCmd(), "replay", admin, "--flow", "ship", "--dry-run"); err != nil || !strings.Contains(out, "1 entries would be replayed") {
		t.Errorf("dry run: %v\n%s", err, out)
	}
	if _, err := runForTest(t, newErrorsCmd(), "replay", admin); err == nil || !strings.Contains(err.Error(), "--all") {
		t.Errorf("replay without what: %v", err)
	}
	if _, err := runForTest(t, newErrorsCmd(), "discard", admin, seq); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Errorf("discard without a reason: %v", err)
	}
	if _, err := runForTest(t, newErrorsCmd(), "replay", admin, seq, "--patch", ".orderId = 7"); err == nil || !strings.Contains(err.Error(), "422") {
		t.Errorf("patch the type rejects: %v", err)
	}
	fixed.Store(true)
	out, err = runForTest(t, newErrorsCmd(), "replay", admin, seq, "--patch", `.orderId = "A-9b"`, "--actor", "ops-carl")
	if err != nil || !strings.Contains(out, seq+": replayed to flow ship as message replay-") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	deadline = time.Now().Add(15 * time.Second)
	for shipped.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the replay did not reach the system")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := shipped.Load().(string); !strings.HasPrefix(got, "/ship/A-9b") {
		t.Errorf("shipped %s", got)
	}
	if out, err := runForTest(t, newErrorsCmd(), "list", admin, "--json"); err != nil || !strings.Contains(out, `"entries":[]`) {
		t.Errorf("queue after the replay: %v %s", err, out)
	}
}
