package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/gateway"
)

// shipper is an ERP that ships orders: it answers in its own shape, and remembers the
// order in which it was asked.
type shipper struct {
	*httptest.Server
	mu    sync.Mutex
	calls []string
	keys  []string
}

func startShipper(t *testing.T) *shipper {
	s := &shipper{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders/{id}/ship", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls = append(s.calls, r.PathValue("id"))
		s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"order_no":%q,"shipped_at":"2026-11-24T10:00:00Z","internal_ref":"WH-7"}`, r.PathValue("id"))
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *shipper) shipped() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// hooks is a client's callback endpoint.
type hooks struct {
	*httptest.Server
	mu   sync.Mutex
	got  []map[string]any
	from []string
}

func startHooks(t *testing.T) *hooks {
	h := &hooks{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		_ = json.NewDecoder(r.Body).Decode(&v)
		h.mu.Lock()
		h.got = append(h.got, v)
		h.from = append(h.from, r.Header.Get("Causeway-Request-Id"))
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func asyncDefs(erpURL, hooksURL, keyHash, otherHash string) map[string]string {
	return map[string]string{"defs.yaml": `apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "` + erpURL + `"}
  operations:
    ship: {http: {method: POST, path: "/orders/{id}/ship"}}
---
apiVersion: causeway/v1
kind: MessageType
metadata: {name: order.paid}
spec:
  schema:
    type: object
    required: [orderId, amount]
    properties:
      orderId: {type: string}
      amount: {type: number}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: receipt}
spec:
  trigger: {message: {types: [order.paid]}}
  steps:
    - {id: answer, reply: {status: 201, body: {receipt: "R-${{ .data.orderId }}", amount: "${{ .data.amount }}"}}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: quote}
spec:
  trigger: {invoke: {timeout: 5s}}
  steps:
    - {id: tell, publish: {type: quote.given, data: {qty: "${{ .data.qty }}"}}}
    - {id: answer, reply: {status: 200, body: {qty: "${{ .data.qty }}", price: 7}}}
---
apiVersion: causeway/v1
kind: MessageType
metadata: {name: quote.given}
spec:
  schema: {type: object}
---
apiVersion: causeway/v1
kind: Consumer
metadata: {name: webshop}
spec:
  keys: [{name: k, sha256: ` + keyHash + `}]
---
apiVersion: causeway/v1
kind: Consumer
metadata: {name: other}
spec:
  keys: [{name: k, sha256: ` + otherHash + `}]
---
apiVersion: causeway/v1
kind: API
metadata: {name: orders}
spec:
  basePath: /api/orders
  policies: {auth: {apiKey: {}}}
  callbacks: {allow: ["` + hooksURL + `/hooks/"], allowPrivate: true}
  routes:
    - match: POST /{id}/shipment
      whenOffline: queue
      proxy:
        call: erp.ship
        with: {id: "${{ .path.id }}"}
        response: {status: 201, body: '{orderId: .body.order_no, shippedAt: .body.shipped_at}'}
    - match: POST /{id}/shipment-now
      proxy: {call: erp.ship, with: {id: "${{ .path.id }}"}}
    - match: POST /quotes
      whenOffline: queue
      flow: {name: quote, system: erp}
    - match: POST /{id}/payments
      publish: {type: order.paid, data: '{orderId: .path.id} + .body', subject: .path.id}
`}
}

// status reads a request's status with a key.
func status(t *testing.T, url, key string) (int, map[string]any) {
	t.Helper()
	resp, body := call(t, "GET", url, map[string]string{"X-Api-Key": key}, "")
	var v map[string]any
	_ = json.Unmarshal([]byte(body), &v)
	return resp.StatusCode, v
}

// awaitState polls a request's status until its state is want.
func awaitState(t *testing.T, url, key, want string, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, v := status(t, url, key)
		if code == http.StatusOK && v["state"] == want {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not %s within %v: %d %v", url, want, within, code, v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setStatus switches a system's status through the admin API.
func setStatus(t *testing.T, n *node, system, to, until string) {
	t.Helper()
	body := fmt.Sprintf(`{"status":%q,"until":%q,"reason":"e2e"}`, to, until)
	req, _ := http.NewRequest(http.MethodPut, "http://"+n.admin+"/v1/systems/"+system+"/status", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set-status %s %s: %d %s", system, to, resp.StatusCode, raw)
	}
}

// causedTimeline finds the message run runID published in step and returns the details of
// its timeline's gateway.request events, once the index has them.
func causedTimeline(t *testing.T, n *node, runID, step string) []string {
	t.Helper()
	var msgID string
	var details []string
	waitFor(t, 20*time.Second, func() bool {
		if msgID == "" {
			_, run, err := getJSON("http://" + n.admin + "/v1/runs/" + runID)
			if err != nil {
				return false
			}
			steps, _ := run["steps"].([]any)
			for _, s := range steps {
				s, _ := s.(map[string]any)
				if out, _ := s["output"].(map[string]any); s["id"] == step && out != nil {
					msgID, _ = out["id"].(string)
				}
			}
			if msgID == "" {
				return false
			}
		}
		code, msg, err := getJSON("http://" + n.admin + "/v1/messages/" + msgID)
		if err != nil || code != http.StatusOK {
			return false
		}
		details = nil
		events, _ := msg["timeline"].([]any)
		for _, e := range events {
			e, _ := e.(map[string]any)
			if e["event"] == "gateway.request" {
				details = append(details, fmt.Sprint(e["detail"]))
			}
		}
		return len(details) > 0
	}, "the timeline of the message run "+runID+" published to show the gateway request")
	return details
}

// TestGatewayFlowRouteInTimeline calls a flow route: the message the run publishes shows,
// in its timeline, the gateway request that caused it (API, route, consumer, run).
func TestGatewayFlowRouteInTimeline(t *testing.T) {
	key, hash, _ := gateway.NewKey()
	_, otherHash, _ := gateway.NewKey()
	erp, cb := startShipper(t), startHooks(t)
	n := startNode(t, writeConfig(t, asyncDefs(erp.URL, cb.URL, hash, otherHash)), t.TempDir())
	resp, body := call(t, "POST", "http://"+n.http+"/api/orders/quotes", map[string]string{"X-Api-Key": key, "Content-Type": "application/json"}, `{"qty": 2}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"qty":2`) {
		t.Fatalf("flow route: %d %s", resp.StatusCode, body)
	}
	runID := resp.Header.Get("Causeway-Run-Id")
	details := causedTimeline(t, n, runID, "tell")
	if want := "API orders, POST /quotes by webshop; run " + runID; len(details) != 1 || details[0] != want {
		t.Fatalf("gateway.request events %q; want one: %q", details, want)
	}
}

// TestGatewayPublishRoute publishes through an API: 202 with Location, the status shows the
// reply of the flow the message triggered, only to the caller who made the request, and the
// message's timeline shows the gateway.
func TestGatewayPublishRoute(t *testing.T) {
	key, hash, _ := gateway.NewKey()
	other, otherHash, _ := gateway.NewKey()
	erp, cb := startShipper(t), startHooks(t)
	n := startNode(t, writeConfig(t, asyncDefs(erp.URL, cb.URL, hash, otherHash)), t.TempDir())
	base := "http://" + n.http + "/api/orders"
	withKey := map[string]string{"X-Api-Key": key, "Content-Type": "application/json"}

	resp, body := call(t, "POST", base+"/A-1/payments", withKey, `{"amount": 12.5}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	var accepted struct{ ID, State, Status, MessageID string }
	_ = json.Unmarshal([]byte(body), &accepted)
	if !strings.HasPrefix(loc, "/v1/requests/") || accepted.ID == "" || accepted.Status != loc || accepted.MessageID != accepted.ID || accepted.State != "accepted" {
		t.Fatalf("202 answer: Location %q, body %s", loc, body)
	}
	st := awaitState(t, "http://"+n.http+loc, key, "completed", 30*time.Second)
	res, _ := st["result"].(map[string]any)
	if fmt.Sprint(res["status"]) != "201" || fmt.Sprint(res["body"]) != "map[amount:12.5 receipt:R-A-1]" {
		t.Fatalf("the flow's reply as the result: %v", st)
	}
	// The status is the caller's: without a key it is 401, with another consumer's it
	// does not exist.
	if resp, _ := call(t, "GET", "http://"+n.http+loc, nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status without a key: %d", resp.StatusCode)
	}
	if code, _ := status(t, "http://"+n.http+loc, other); code != http.StatusNotFound {
		t.Fatalf("status with another consumer's key: %d", code)
	}
	if code, _ := status(t, "http://"+n.http+"/v1/requests/01JUNKJUNKJUNKJUNKJUNKJUNK", key); code != http.StatusNotFound {
		t.Fatalf("unknown request: %d", code)
	}

	// The message is on the bus under the request's id, with the gateway in its timeline.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, msg, _ := getJSON("http://" + n.admin + "/v1/messages/" + accepted.ID)
		if code == http.StatusOK && strings.Contains(fmt.Sprint(msg["timeline"]), "gateway.accepted") {
			if !strings.Contains(fmt.Sprint(msg["timeline"]), "API orders, POST /{id}/payments by webshop") {
				t.Fatalf("gateway tracking event: %v", msg["timeline"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message timeline without the gateway: %d %v", code, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A message the type's schema refuses is not published: 422 with the field.
	resp, body = call(t, "POST", base+"/A-2/payments", withKey, `{"amount": "lots"}`)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "/amount") {
		t.Fatalf("schema violation: %d %s", resp.StatusCode, body)
	}
	// A callback outside the allow-list, or to a metadata address, is refused before
	// anything is stored.
	for _, url := range []string{"http://169.254.169.254/latest/meta-data", "https://elsewhere.example.com/hooks/x", cb.URL + "/other"} {
		h := map[string]string{"X-Api-Key": key, "Content-Type": "application/json", gateway.HeaderCallback: url}
		resp, body = call(t, "POST", base+"/A-3/payments", h, `{"amount": 1}`)
		if resp.StatusCode != http.StatusBadRequest || problemType(t, resp, body) != "callback-refused" {
			t.Fatalf("callback %s: %d %s", url, resp.StatusCode, body)
		}
	}
}

// TestGatewayOfflineBridge puts the system behind a route in maintenance: its queue routes
// answer 202 and nothing reaches it; a kill -9 of the node loses none of the accepted
// requests; once the window closes they are delivered, in order, exactly once each, and
// their status URLs show the mapped results; a callback tells the client.
func TestGatewayOfflineBridge(t *testing.T) {
	key, hash, _ := gateway.NewKey()
	_, otherHash, _ := gateway.NewKey()
	erp, cb := startShipper(t), startHooks(t)
	cfg := writeConfig(t, asyncDefs(erp.URL, cb.URL, hash, otherHash))
	n := startNode(t, cfg, t.TempDir())
	base := "http://" + n.http + "/api/orders"
	withKey := map[string]string{"X-Api-Key": key, "Content-Type": "application/json"}

	// While the system is up, the route answers at once.
	resp, body := call(t, "POST", base+"/S-0/shipment", withKey, "")
	if resp.StatusCode != http.StatusCreated || !strings.Contains(body, `"orderId":"S-0"`) {
		t.Fatalf("system up: %d %s", resp.StatusCode, body)
	}

	setStatus(t, n, "erp", "maintenance", "8s")
	windowEnds := time.Now().Add(8 * time.Second)
	var locs []string
	for i := 1; i <= 5; i++ {
		h := withKey
		if i == 3 {
			h = map[string]string{"X-Api-Key": key, gateway.HeaderCallback: cb.URL + "/hooks/shipments"}
		}
		resp, body := call(t, "POST", fmt.Sprintf("%s/S-%d/shipment", base, i), h, "")
		if resp.StatusCode != http.StatusAccepted || !strings.Contains(body, `"state":"queued"`) {
			t.Fatalf("queued request %d: %d %s", i, resp.StatusCode, body)
		}
		locs = append(locs, resp.Header.Get("Location"))
	}
	resp, body = call(t, "POST", base+"/quotes", withKey, `{"qty": 3}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("queued flow request: %d %s", resp.StatusCode, body)
	}
	quote := resp.Header.Get("Location")
	// A route without whenOffline: queue fails fast, saying when to come back.
	resp, body = call(t, "POST", base+"/S-9/shipment-now", withKey, "")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("whenOffline fail: %d %s (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if _, v := status(t, "http://"+n.http+locs[0], key); v["state"] != "queued" {
		t.Fatalf("status during maintenance: %v", v)
	}
	if got := erp.shipped(); len(got) != 1 {
		t.Fatalf("the system got calls during its maintenance: %v", got)
	}

	// The node dies without a chance to write anything more; what it said 202 to is on
	// the bus.
	n.kill()
	if time.Until(windowEnds) < time.Second {
		t.Logf("the restart comes %v after the window closed", -time.Until(windowEnds))
	}
	n = startNode(t, cfg, n.dataDir)

	for i, loc := range locs {
		st := awaitState(t, "http://"+n.http+loc, key, "completed", 30*time.Second)
		res, _ := st["result"].(map[string]any)
		want := fmt.Sprintf("map[orderId:S-%d shippedAt:2026-11-24T10:00:00Z]", i+1)
		if fmt.Sprint(res["status"]) != "201" || fmt.Sprint(res["body"]) != want {
			t.Fatalf("request %d's result: %v", i+1, st)
		}
	}
	st := awaitState(t, "http://"+n.http+quote, key, "completed", 30*time.Second)
	res, _ := st["result"].(map[string]any)
	if fmt.Sprint(res["body"]) != "map[price:7 qty:3]" {
		t.Fatalf("queued flow request's result: %v", st)
	}
	// The message the queued run published names the request in its timeline.
	quoteRun, _ := res["runId"].(string)
	want := "API orders, POST /quotes by webshop; request " + strings.TrimPrefix(quote, "/v1/requests/") + "; run " + quoteRun
	if details := causedTimeline(t, n, quoteRun, "tell"); len(details) != 1 || details[0] != want {
		t.Errorf("gateway.request events %q; want one: %q", details, want)
	}
	if time.Now().Before(windowEnds) {
		t.Fatalf("requests ran before the maintenance window closed")
	}
	got := erp.shipped()
	if fmt.Sprint(got) != "[S-0 S-1 S-2 S-3 S-4 S-5]" {
		t.Fatalf("calls the system got: %v; want each queued request once, in order", got)
	}
	erp.mu.Lock()
	for i, k := range erp.keys[1:] {
		if k != strings.TrimPrefix(locs[i], "/v1/requests/") {
			t.Errorf("queued call %d carried Idempotency-Key %q; want the request id", i+1, k)
		}
	}
	erp.mu.Unlock()

	// The callback told the client, with the status, and the status says so.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, v := status(t, "http://"+n.http+locs[2], key)
		if c, _ := v["callback"].(map[string]any); c != nil {
			if c["state"] != "delivered" {
				t.Fatalf("callback outcome: %v", c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no callback outcome: %v", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if len(cb.got) != 1 || cb.got[0]["state"] != "completed" || cb.from[0] != strings.TrimPrefix(locs[2], "/v1/requests/") {
		t.Fatalf("callbacks received: %v from %v", cb.got, cb.from)
	}
}
