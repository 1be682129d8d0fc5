package platform

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookServer is a webhook sink that records what it is sent, failing the first request.
type hookServer struct {
	mu       sync.Mutex
	received []map[string]any
	tries    int
}

func startHook(t *testing.T) (*hookServer, string) {
	h := &hookServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.tries++
		if h.tries == 1 {
			w.WriteHeader(http.StatusBadGateway) // the sink's own blip: the notice is retried
			return
		}
		var v map[string]any
		_ = json.Unmarshal(body, &v)
		h.received = append(h.received, v)
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL
}

func (h *hookServer) got() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.received...)
}

// TestThresholdAndAlert: a system that always fails transiently, maxRetries 3. Each message
// is attempted 4 times with growing waits, then sits in the errors queue with its whole
// history; the webhook sink receives one high-severity alert for the lot (throttled), after
// a failed first try; and a resolved notice once the entries are discarded.
func TestThresholdAndAlert(t *testing.T) {
	const n = 5
	var mu sync.Mutex
	calls := map[string][]time.Time{}
	erp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		id := strings.Split(r.URL.Path, "/")[2]
		calls[id] = append(calls[id], time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer erp.Close()
	hook, hookURL := startHook(t)
	p := runPlatform(t, func(o *Options) {
		defs := `apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "` + erp.URL + `"}
  health:
    breaker: {disabled: true}
  delivery:
    retry: {maxRetries: 3, backoff: exponential, initialDelay: 1s, jitter: 0}
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
    - {id: ship, call: erp.ship, with: {id: "${{ .data.orderId }}"}}
---
apiVersion: causeway/v1
kind: Alert
metadata: {name: erp-on-call}
spec:
  match: {kinds: [dead-lettered], minSeverity: high, systems: [erp]}
  throttle: 1h
  sinks:
    - webhook: {url: "` + hookURL + `", format: json}
`
		if err := os.WriteFile(filepath.Join(o.ConfigDir, "defs.yaml"), []byte(defs), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	ingest, admin := "http://"+p.HTTPAddr()+"/v1/messages", "http://"+p.AdminAddr()
	for i := range n {
		if a := do(t, "POST", ingest, "application/cloudevents+json", order(fmt.Sprintf("T-%d", i))); a.status != 202 {
			t.Fatalf("post: %d %s", a.status, a.raw)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	var entries []any
	for len(entries) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d entries in the errors queue", len(entries), n)
		}
		time.Sleep(100 * time.Millisecond)
		entries = do(t, "GET", admin+"/v1/errors?flow=ship", "", "").body["entries"].([]any)
	}
	mu.Lock()
	for id, ts := range calls {
		if len(ts) != 4 {
			t.Errorf("%s attempted %d times, want 4 (the original and 3 retries)", id, len(ts))
			continue
		}
		for i := 2; i < 4; i++ {
			if ts[i].Sub(ts[i-1]) <= ts[i-1].Sub(ts[i-2]) || ts[1].Sub(ts[0]) < time.Second {
				t.Errorf("%s: waits do not grow: %s, %s, %s", id, ts[1].Sub(ts[0]), ts[2].Sub(ts[1]), ts[3].Sub(ts[2]))
				break
			}
		}
	}
	mu.Unlock()
	seq := fmt.Sprint(entries[0].(map[string]any)["seq"])
	e := do(t, "GET", admin+"/v1/errors/"+seq, "", "").body
	failures, _ := e["failures"].([]any)
	if e["class"] != "transient" || e["retrycount"] != float64(3) || len(failures) != 4 {
		t.Errorf("entry: class %v, retrycount %v, %d failures", e["class"], e["retrycount"], len(failures))
	}
	for i, f := range failures {
		if f.(map[string]any)["retrycount"] != float64(i) {
			t.Errorf("failure %d: %v", i, f)
		}
	}

	// One alert for five dead letters; the sink's failed first try is retried.
	deadline = time.Now().Add(20 * time.Second)
	for len(hook.got()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no alert reached the webhook")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	got := hook.got()
	if len(got) != 1 {
		t.Fatalf("%d notifications, want 1: %v", len(got), got)
	}
	a := got[0]
	if a["alert"] != "erp-on-call" || a["state"] != "firing" || a["severity"] != "high" || a["kind"] != "dead-lettered" ||
		a["system"] != "erp" || a["flow"] != "ship" || !strings.Contains(a["detail"].(string), "503") {
		t.Errorf("alert %v", a)
	}

	// Once the entries are gone, the condition resolves, with the count held back.
	if d := do(t, "POST", admin+"/v1/errors/discard", "application/json", `{"filter":{"flow":"ship"},"reason":"test","rate":1000}`); d.status != 200 {
		t.Fatalf("discard: %d %s", d.status, d.raw)
	}
	deadline = time.Now().Add(20 * time.Second)
	for len(hook.got()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no resolved notice")
		}
		time.Sleep(100 * time.Millisecond)
	}
	res := hook.got()[1]
	if res["state"] != "resolved" || res["suppressed"] != float64(n-1) {
		t.Errorf("resolved notice %v", res)
	}
	keys := []string{}
	for k := range res {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("notices: firing, then resolved with %v held back; fields %v", res["suppressed"], keys)
}
