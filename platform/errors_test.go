package platform

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/flow"
)

// errorsFlows are two flows on order.created: ship calls the ERP, which the test breaks;
// log only sets a variable, and never fails.
func errorsFlows(erpURL string) string {
	return `apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "` + erpURL + `"}
  operations:
    ship: {http: {method: POST, path: "/orders/{id}/ship"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: ship}
spec:
  trigger:
    message: {types: [order.created]}
  steps:
    - id: ship
      call: erp.ship
      with: {id: "${{ .data.orderId }}"}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: log}
spec:
  trigger:
    message: {types: [order.created]}
  steps:
    - id: note
      set: {seen: "${{ .data.orderId }}"}
`
}

// brokenERP answers 422 (a permanent failure) until fixed, then 200; it records the order
// ids it shipped.
type brokenERP struct {
	fixed   atomic.Bool
	mu      sync.Mutex
	shipped []string
	calls   atomic.Int64
}

func startBrokenERP(t *testing.T) (*brokenERP, string) {
	b := &brokenERP{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		b.calls.Add(1)
		if !b.fixed.Load() {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = io.WriteString(w, `{"error":"warehouse 7 unknown"}`)
			return
		}
		b.mu.Lock()
		b.shipped = append(b.shipped, strings.Split(r.URL.Path, "/")[2])
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return b, srv.URL
}

func (b *brokenERP) shippedIDs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.shipped...)
}

func order(id string) string {
	return fmt.Sprintf(`{"id":"msg-%s","specversion":"1.0","source":"webshop","type":"order.created","data":{"orderId":%q,"items":[{"sku":"S","qty":1}]}}`, id, id)
}

// waitEntries polls the errors queue until a query lists n entries.
func waitEntries(t *testing.T, admin, query string, n int) []any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		a := do(t, "GET", admin+"/v1/errors?"+query, "", "")
		if a.status != 200 {
			t.Fatalf("list errors: %d %s", a.status, a.raw)
		}
		entries, _ := a.body["entries"].([]any)
		if len(entries) == n {
			return entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("errors?%s lists %d entries, want %d: %s", query, len(entries), n, a.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestErrorsQueueWorkbench fails deliveries into the errors queue, finds them by filter,
// replays them (one with a patch) to the one flow that failed once the system is fixed, and
// discards one; dry runs change nothing, and every action is audited.
func TestErrorsQueueWorkbench(t *testing.T) {
	erp, erpURL := startBrokenERP(t)
	p := runPlatform(t, func(o *Options) {
		if err := os.WriteFile(filepath.Join(o.ConfigDir, "flows.yaml"), []byte(errorsFlows(erpURL)), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	ingest, admin := "http://"+p.HTTPAddr()+"/v1/messages", "http://"+p.AdminAddr()
	for _, id := range []string{"A-1", "A-2", "B-1"} {
		if a := do(t, "POST", ingest, "application/cloudevents+json", order(id)); a.status != 202 {
			t.Fatalf("post: %d %s", a.status, a.raw)
		}
	}
	entries := waitEntries(t, admin, "flow=ship", 3)
	first := entries[0].(map[string]any)
	if first["class"] != "permanent" || first["system"] != "erp" || first["step"] != "ship" || first["operation"] != "ship" ||
		first["type"] != "order.created" || !strings.Contains(first["reason"].(string), "422") || first["message"] != nil {
		t.Errorf("entry %v", first)
	}
	fp := first["fingerprint"].(string)
	// Filters: the three failed alike; the flow that did not fail has none; bad values are
	// errors, not empty answers.
	waitEntries(t, admin, "system=erp&fingerprint="+fp, 3)
	waitEntries(t, admin, "flow=log", 0)
	waitEntries(t, admin, "flow=ship&limit=2", 2)
	waitEntries(t, admin, "flow=ship&from="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), 0)
	if a := do(t, "GET", admin+"/v1/errors?class=fatal", "", ""); a.status != 400 || a.body["type"] != "urn:causeway:problem:bad-query" {
		t.Errorf("bad class: %d %s", a.status, a.raw)
	}
	page := do(t, "GET", admin+"/v1/errors?flow=ship&limit=2", "", "")
	if next, _ := page.body["next"].(string); next == "" {
		t.Errorf("a page of 2 of 3 has no next cursor: %s", page.raw)
	} else {
		waitEntries(t, admin, "flow=ship&after="+next, 1)
	}

	seq := fmt.Sprint(first["seq"])
	shown := do(t, "GET", admin+"/v1/errors/"+seq, "", "")
	if shown.status != 200 || shown.body["message"] == nil || shown.body["steps"] == nil || len(shown.body["failures"].([]any)) != 1 {
		t.Fatalf("show: %d %s", shown.status, shown.raw)
	}
	// The runs failed concurrently: the first entry is any of the three orders.
	firstOrder := shown.body["message"].(map[string]any)["data"].(map[string]any)["orderId"].(string)
	patch := `.orderId = "` + firstOrder + `-fixed"`
	if a := do(t, "GET", admin+"/v1/errors/"+first["id"].(string), "", ""); a.status != 200 || fmt.Sprint(a.body["seq"]) != seq {
		t.Errorf("show by id: %d %s", a.status, a.raw)
	}
	if a := do(t, "GET", admin+"/v1/errors/999999", "", ""); a.status != 404 {
		t.Errorf("unknown entry: %d %s", a.status, a.raw)
	}

	// A dry run says what it would do and does nothing.
	calls := erp.calls.Load()
	dry := do(t, "POST", admin+"/v1/errors/replay", "application/json", `{"filter":{"flow":"ship"},"dryRun":true}`)
	if dry.status != 200 || dry.body["matched"] != float64(3) || dry.body["dryRun"] != true {
		t.Fatalf("dry run: %d %s", dry.status, dry.raw)
	}
	time.Sleep(300 * time.Millisecond)
	waitEntries(t, admin, "flow=ship", 3)
	if erp.calls.Load() != calls {
		t.Error("a dry run called the system")
	}
	// A bulk action needs a filter or all; unknown fields are errors.
	if a := do(t, "POST", admin+"/v1/errors/replay", "application/json", `{}`); a.status != 400 || a.body["type"] != "urn:causeway:problem:filter-required" {
		t.Errorf("no filter: %d %s", a.status, a.raw)
	}
	if a := do(t, "POST", admin+"/v1/errors/replay", "application/json", `{"filtr":{"flow":"ship"}}`); a.status != 400 {
		t.Errorf("unknown field: %d %s", a.status, a.raw)
	}
	// A patch whose data the message type rejects replays nothing.
	if a := do(t, "POST", admin+"/v1/errors/"+seq+"/replay", "application/json", `{"patch":".orderId = 5"}`); a.status != 422 || a.body["type"] != "urn:causeway:problem:bad-patch" {
		t.Errorf("bad patch: %d %s", a.status, a.raw)
	}

	erp.fixed.Store(true)
	one := do(t, "POST", admin+"/v1/errors/"+seq+"/replay", "application/json", `{"patch":`+strconv.Quote(patch)+`,"reason":"warehouse corrected"}`, HeaderActor, "ops-anna")
	if one.status != 200 {
		t.Fatalf("replay: %d %s", one.status, one.raw)
	}
	replayed := one.body["replayed"].(map[string]any)
	bulk := do(t, "POST", admin+"/v1/errors/replay", "application/json", `{"filter":{"flow":"ship","fingerprint":"`+fp+`"},"rate":100}`, HeaderActor, "ops-anna")
	if bulk.status != 200 || bulk.body["matched"] != float64(2) || bulk.body["failed"] != float64(0) {
		t.Fatalf("bulk replay: %d %s", bulk.status, bulk.raw)
	}
	waitEntries(t, admin, "", 0)
	runID := replayed["runId"].(string)
	deadline := time.Now().Add(15 * time.Second)
	for len(erp.shippedIDs()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("shipped %v after the replays", erp.shippedIDs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := strings.Join(erp.shippedIDs(), ",")
	want := map[string]bool{"A-1": true, "A-2": true, "B-1": true}
	delete(want, firstOrder)
	want[firstOrder+"-fixed"] = true
	for _, id := range erp.shippedIDs() {
		delete(want, id)
	}
	if len(want) != 0 || len(erp.shippedIDs()) != 3 {
		t.Errorf("shipped %s", got)
	}
	if run := do(t, "GET", admin+"/v1/runs/"+runID, "", ""); run.status != 200 || run.body["status"] != "succeeded" || run.body["flow"] != "ship" {
		t.Errorf("replayed run: %d %s", run.status, run.raw)
	}
	// The replays reached only the flow that failed: log has a run per original, and no
	// run for a replay.
	if a := do(t, "GET", admin+"/v1/runs/"+flow.RunID("log", replayed["messageId"].(string)), "", ""); a.status != 404 {
		t.Errorf("the log flow ran a replay: %d %s", a.status, a.raw)
	}
	if a := do(t, "GET", admin+"/v1/runs/"+flow.RunID("log", "msg-"+firstOrder), "", ""); a.status != 200 {
		t.Errorf("the log flow's run of the original: %d %s", a.status, a.raw)
	}

	// Discard needs a reason, and is audited with it.
	erp.fixed.Store(false)
	if a := do(t, "POST", ingest, "application/cloudevents+json", order("C-1")); a.status != 202 {
		t.Fatalf("post: %d %s", a.status, a.raw)
	}
	c1 := waitEntries(t, admin, "flow=ship", 1)[0].(map[string]any)
	if a := do(t, "DELETE", admin+"/v1/errors/"+fmt.Sprint(c1["seq"]), "", ""); a.status != 400 || a.body["type"] != "urn:causeway:problem:reason-required" {
		t.Errorf("discard without reason: %d %s", a.status, a.raw)
	}
	if a := do(t, "DELETE", admin+"/v1/errors/"+fmt.Sprint(c1["seq"])+"?reason=test+order&dryRun=true", "", ""); a.status != 200 {
		t.Errorf("dry discard: %d %s", a.status, a.raw)
	}
	waitEntries(t, admin, "flow=ship", 1)
	if a := do(t, "DELETE", admin+"/v1/errors/"+fmt.Sprint(c1["seq"])+"?reason=test+order", "", "", HeaderActor, "ops-ben"); a.status != 200 {
		t.Errorf("discard: %d %s", a.status, a.raw)
	}
	waitEntries(t, admin, "", 0)

	audit := do(t, "GET", admin+"/v1/audit?action=errors.", "", "")
	recs, _ := audit.body["records"].([]any)
	if audit.status != 200 || len(recs) != 4 {
		t.Fatalf("audit: %d %s", audit.status, audit.raw)
	}
	latest := recs[0].(map[string]any)
	if latest["action"] != "errors.discard" || !strings.HasPrefix(latest["actor"].(string), "ops-ben (") || latest["reason"] != "test order" {
		t.Errorf("latest audit record %v", latest)
	}
	patched := recs[3].(map[string]any)
	if patched["action"] != "errors.replay" || patched["detail"].(map[string]any)["patch"] != patch || patched["reason"] != "warehouse corrected" {
		t.Errorf("first audit record %v", patched)
	}
}
