package platform

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// laneKey is the API key of the fast lane test's Consumer.
const laneKey = "lane-key-5d1e"

// laneDefs are routes of every shape the fast lane serves, and some it leaves to the
// general path, over one backend.
func laneDefs(backend string) string {
	sum := sha256.Sum256([]byte(laneKey))
	return `apiVersion: causeway/v1
kind: System
metadata: {name: inv}
spec:
  http: {baseURL: "` + backend + `/inv/", timeout: 5s, headers: {X-Tenant: acme}}
  operations:
    item: {http: {method: GET, path: "/items/{sku}"}}
    stock: {http: {method: GET, path: "/stock/{site}/{sku}", headers: {X-Op: stock}}}
    drop: {http: {method: DELETE, path: "/items/{sku}"}}
    mapped: {http: {method: GET, path: "/items/{sku}", response: "{sku: .body.sku, seen: .status}"}}
    put: {http: {method: PUT, path: "/items/{sku}"}}
---
apiVersion: causeway/v1
kind: Consumer
metadata: {name: shop}
spec:
  keys: [{name: main, sha256: "` + hex.EncodeToString(sum[:]) + `"}]
---
apiVersion: causeway/v1
kind: API
metadata: {name: inv}
spec:
  basePath: /inv
  policies: {auth: {none: true}}
  maxBodyBytes: 256
  routes:
    - match: PUT /items/{sku}
      proxy: {call: inv.put}
    - match: GET /items/{sku}
      proxy: {call: inv.item, with: {sku: "${{ .path.sku }}"}}
    - match: GET /plain/{sku}
      proxy: {call: inv.item}
    - match: GET /sites/{site}/stock/{sku}
      proxy:
        call: inv.stock
        with: {site: "${{ .path.site }}", sku: "${{ .path.sku }}"}
        response: {status: 203, headers: {Cache-Control: no-store}}
    - match: GET /main/{sku}
      proxy:
        call: inv.stock
        with: {site: main, sku: "${{ .path.sku }}"}
    - match: GET /shaped/{sku}
      proxy:
        call: inv.item
        with: {sku: "${{ .path.sku }}"}
        response: {body: '{id: .body.sku, price: (.body.cents / 100)}'}
    - match: GET /versioned/{sku}
      proxy:
        call: inv.item
        with: {sku: "${{ .path.sku }}"}
        response: {body: '{id: .body.sku, etag: .headers.etag}'}
    - match: GET /mapped/{sku}
      proxy: {call: inv.mapped, with: {sku: "${{ .path.sku }}"}}
    - match: DELETE /items/{sku}
      proxy: {call: inv.drop, with: {sku: "${{ .path.sku }}"}}
    - match: GET /slow/{sku}
      timeout: 200ms
      proxy: {call: inv.item, with: {sku: "${{ .path.sku }}"}}
    - match: GET /lower/{sku}
      proxy: {call: inv.item, with: {sku: "${{ .path.sku | ascii_downcase }}"}}
    - match: POST /items/{sku}
      proxy: {call: inv.item, with: {sku: "${{ .path.sku }}"}}
    - match: GET /cors/{sku}
      policies: {cors: {origins: ["https://shop.example"], expose: [ETag]}}
      proxy: {call: inv.item}
    - match: GET /fwd/{sku}
      policies: {headers: {forward: [X-Request-Id, User-Agent, Authorization]}}
      proxy: {call: inv.item}
    - match: GET /local/{sku}
      policies: {ip: {allow: [127.0.0.0/8], deny: [10.0.0.0/8]}}
      proxy: {call: inv.item}
    - match: GET /denied/{sku}
      policies: {ip: {deny: [127.0.0.1/32]}}
      proxy: {call: inv.item}
    - match: GET /kept/{sku}
      policies: {cache: {ttl: 1h}}
      proxy: {call: inv.item, response: {body: '{id: .body.sku}'}}
    - match: GET /kept-behind/{sku}
      policies: {cache: {ttl: 1h}, ip: {trustedProxies: [127.0.0.0/8]}}
      proxy: {call: inv.item}
    - match: GET /behind/{sku}
      policies:
        ip: {trustedProxies: [127.0.0.0/8, 10.0.0.0/8], allow: [203.0.113.0/24], deny: [203.0.113.66/32]}
        rateLimit: {requests: 2, per: 1m, by: ip}
      proxy: {call: inv.item}
---
apiVersion: causeway/v1
kind: API
metadata: {name: hooked}
spec:
  basePath: /hooks/stock
  policies: {auth: {none: true}}
  routes:
    - match: POST /items/{sku}
      proxy: {call: inv.item, with: {sku: "${{ .path.sku }}"}}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: stock-hook}
spec:
  system: inv
  webhook: {path: /hooks/stock/items/H-1}
  emit:
    type: order.created
    data: {orderId: "${{ .body.id }}", items: [{sku: h, qty: 1}]}
---
apiVersion: causeway/v1
kind: API
metadata: {name: keyed}
spec:
  basePath: /inv/keyed
  policies:
    auth: {apiKey: {header: X-Api-Key}}
    rateLimit: {requests: 4, per: 1m, burst: 4}
  routes:
    - match: GET /items/{sku}
      proxy:
        call: inv.item
        with: {sku: "${{ .path.sku }}"}
        response: {body: '{id: .body.sku}'}
---
apiVersion: causeway/v1
kind: MessageType
metadata: {name: item.update}
spec:
  schema:
    type: object
    required: [name]
    additionalProperties: false
    properties:
      name: {type: string, minLength: 1}
      qty: {type: integer, minimum: 0}
---
apiVersion: causeway/v1
kind: API
metadata: {name: checked}
spec:
  basePath: /checked
  policies: {auth: {none: true}}
  routes:
    - match: PUT /items/{sku}
      policies: {validate: {messageType: item.update, maxDepth: 3}}
      proxy: {call: inv.put}
    - match: PUT /inline/{sku}
      policies: {validate: {schema: {type: object, required: [qty], properties: {qty: {type: integer}}}, maxDepth: 3}}
      proxy: {call: inv.put, with: {sku: "${{ .path.sku }}"}}
---
apiVersion: causeway/v1
kind: API
metadata: {name: metered}
spec:
  basePath: /metered
  policies:
    auth: {apiKey: {header: X-Api-Key}}
    quota: {requests: 2, per: day}
  routes:
    - match: GET /items/{sku}
      proxy: {call: inv.item}
`
}

// laneBackend answers by the item's name, and records what each request carried.
func laneBackend(t *testing.T) (string, func() []string) {
	var (
		mu   sync.Mutex
		seen []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var hs []string
		for k, vs := range r.Header {
			if k == "Traceparent" {
				vs = []string{regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`).ReplaceAllString(vs[0], "<new trace>")}
			}
			hs = append(hs, k+": "+strings.Join(vs, ", "))
		}
		sort.Strings(hs)
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery+" "+strings.Join(hs, " | ")+" body "+string(body))
		mu.Unlock()
		sku := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		switch sku {
		case "gone":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"no row in inventory.items"}`)
		case "boom":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `panic at inventory.internal:7001`)
		case "busy":
			w.Header().Set("Retry-After", "9")
			w.WriteHeader(http.StatusServiceUnavailable)
		case "text":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "forty two")
		case "none":
			w.WriteHeader(http.StatusNoContent)
		case "liar":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"sku":`)
		case "slow":
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("ETag", `"e-`+sku+`"`)
			_, _ = io.WriteString(w, `{"sku":"`+sku+`","cents":1250}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := seen
		seen = nil
		return out
	}
}

// TestFastLaneMatchesGeneral sends the same requests to two nodes, one serving what it can
// on the fast lane and one serving everything on the general path, and wants the same
// answers (status, headers, body), the same requests at the backend and the same metrics.
func TestFastLaneMatchesGeneral(t *testing.T) {
	fast, general := laneNodes(t, laneDefs)

	trace := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	// lane says whether the fast lane serves the request (L) or leaves it (G).
	const L, G = true, false
	requests := []laneRequest{
		{L, "GET", "/inv/items/A-1", nil},
		{L, "GET", "/inv/items/A-1?ignored=yes", []string{"Traceparent", trace, "Idempotency-Key", "k-1", "X-Forwarded-For", "203.0.113.7", "Authorization", "Bearer client-secret"}},
		{L, "GET", "/inv/items/A-1", []string{"Traceparent", "not-a-trace"}},
		{L, "GET", "/inv/plain/B.2", nil},
		{L, "GET", "/inv/sites/north/stock/C~3", nil},
		{L, "GET", "/inv/main/D:4", nil},
		{L, "GET", "/inv/shaped/E@5", nil},
		{L, "GET", "/inv/versioned/F-6", nil},
		{L, "GET", "/inv/mapped/G-7", nil},
		{L, "DELETE", "/inv/items/H-8", nil},
		{G, "GET", "/inv/lower/ABC", nil},
		{L, "POST", "/inv/items/I-9", nil},
		{L, "GET", "/inv/items/gone", nil},
		{L, "GET", "/inv/items/boom", nil},
		{L, "GET", "/inv/items/busy", nil},
		{L, "GET", "/inv/items/text", nil},
		{L, "GET", "/inv/shaped/text", nil},
		{L, "GET", "/inv/items/none", nil},
		{L, "GET", "/inv/shaped/none", nil},
		{L, "GET", "/inv/items/liar", nil},
		{L, "GET", "/inv/shaped/liar", nil},
		{L, "GET", "/inv/slow/slow", nil},
		{L, "PUT", "/inv/items/P-1", []string{"body", `{ "b": 2, "a": [1, 2.50, "x\u00e9"], "n": null }`}},
		{L, "PUT", "/inv/items/P-2", []string{"body", `null`}},
		{L, "PUT", "/inv/items/P-3", nil},
		{L, "POST", "/inv/items/P-4", []string{"body", `{"ignored": true}`}},
		{G, "PUT", "/inv/items/P-5", []string{"body", `{"half":`}},
		{G, "PUT", "/inv/items/P-6", []string{"body", strings.Repeat("[", 40) + strings.Repeat("]", 40)}},
		{G, "PUT", "/inv/items/P-7", []string{"body", `{"big":"` + strings.Repeat("x", 300) + `"}`}},
		{G, "POST", "/hooks/stock/items/H-1", []string{"body", `{"id":"h-1"}`}},
		{G, "POST", "/hooks/stock/items/H-2", []string{"body", `{"id":"h-2"}`}},
		{L, "GET", "/inv/cors/A-1", nil},
		{G, "GET", "/inv/cors/A-1", []string{"Origin", "https://shop.example"}},
		{L, "GET", "/inv/fwd/A-1", []string{"X-Request-Id", "r-1", "User-Agent", "probe/1", "Authorization", "Bearer client-secret"}},
		{L, "GET", "/inv/fwd/A-1", []string{"X-Request-Id", "r-2", "Connection", "X-Request-Id"}},
		{L, "GET", "/inv/local/A-1", nil},
		{G, "GET", "/inv/denied/A-1", nil},
		// Response caching: the first request calls the backend, the next is answered from
		// the cache (no backend request, an Age header); a query is another URL; errors and
		// other callers are not served from it.
		{L, "GET", "/inv/kept/C-1", nil},
		{L, "GET", "/inv/kept/C-1", nil},
		{L, "GET", "/inv/kept/C-1?v=2", nil},
		{L, "GET", "/inv/kept/C-1?v=2", nil},
		{L, "GET", "/inv/kept/gone", nil},
		{L, "GET", "/inv/kept/gone", nil},
		{L, "GET", "/inv/kept-behind/C-2", []string{"X-Forwarded-For", "203.0.113.7"}},
		{L, "GET", "/inv/kept-behind/C-2", []string{"X-Forwarded-For", "203.0.113.8"}},
		{L, "GET", "/inv/kept-behind/C-2", []string{"X-Forwarded-For", "203.0.113.7"}},
		// Behind trusted proxies: the client is the last address in X-Forwarded-For that is
		// not one of them; the address lists and the limit by address apply to it.
		{L, "GET", "/inv/behind/T-1", []string{"X-Forwarded-For", "203.0.113.7"}},
		{L, "GET", "/inv/behind/T-2", []string{"X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.1.2.3"}},
		{L, "GET", "/inv/behind/T-3", []string{"X-Forwarded-For", "203.0.113.7"}},
		{L, "GET", "/inv/behind/T-4", []string{"X-Forwarded-For", "203.0.113.8"}},
		{G, "GET", "/inv/behind/T-5", []string{"X-Forwarded-For", "203.0.113.66"}},
		{G, "GET", "/inv/behind/T-6", []string{"X-Forwarded-For", "198.51.100.1"}},
		{G, "GET", "/inv/behind/T-7", nil},
		{G, "GET", "/inv/behind/T-8", []string{"X-Forwarded-For", "not-an-address"}},
		// What the fast lane leaves to the general path.
		{G, "GET", "/inv/items/%41-1", nil},
		{G, "GET", "/inv/items/..", nil},
		{G, "GET", "/inv/items/a%2Fb", nil},
		{G, "GET", "/inv/items/", nil},
		// The ServeMux redirects this one to /inv/items/x, which the fast lane serves.
		{L, "GET", "/inv/items//x", nil},
		{G, "GET", "/inv/items/x/y", nil},
		{G, "HEAD", "/inv/items/A-1", nil},
		{G, "PATCH", "/inv/items/A-1", nil},
		{G, "GET", "/inv/openapi.json", nil},
		{G, "GET", "/inv", nil},
		{G, "GET", "/invx/items/A-1", nil},
		// The keyed API: no key, a wrong key, then the key until the limit of 4 refuses.
		{G, "GET", "/inv/keyed/items/K-1", nil},
		{G, "GET", "/inv/keyed/items/K-1", []string{"X-Api-Key", "wrong"}},
		{L, "GET", "/inv/keyed/items/K-1", []string{"X-Api-Key", laneKey}},
		{L, "GET", "/inv/keyed/items/K-2", []string{"X-Api-Key", laneKey}},
		{L, "GET", "/inv/keyed/items/gone", []string{"X-Api-Key", laneKey}},
		{L, "GET", "/inv/keyed/items/K-4", []string{"X-Api-Key", laneKey}},
		{L, "GET", "/inv/keyed/items/K-5", []string{"X-Api-Key", laneKey}},
		// The checked API: bodies validated against a MessageType's schema or an inline one.
		{L, "PUT", "/checked/items/V-1", []string{"body", `{"name": "bolt", "qty": 3}`}},
		{G, "PUT", "/checked/items/V-2", []string{"body", `{"name": "bolt", "colour": "red"}`}},
		{G, "PUT", "/checked/items/V-3", []string{"body", `{"qty": -1}`}},
		{G, "PUT", "/checked/items/V-4", []string{"body", `{"name": {"a": {"b": {"c": 1}}}}`}},
		{G, "PUT", "/checked/items/V-5", []string{"body", `{"name":`}},
		{G, "PUT", "/checked/items/V-6", nil},
		{L, "PUT", "/checked/inline/V-7", []string{"body", `{"qty": 1, "extra": true}`}},
		{G, "PUT", "/checked/inline/V-8", []string{"body", `{"qty": "one"}`}},
		{L, "PUT", "/checked/inline/V-9", []string{"body", `{"qty": 2, "bins": [[1]]}`}},
		{G, "PUT", "/checked/inline/V-10", []string{"body", `{"qty": 2, "bins": [[[1]]]}`}},
		// The metered API: a quota of 2 a day, its RateLimit headers, then 429.
		{G, "GET", "/metered/items/Q-1", nil},
		{L, "GET", "/metered/items/Q-1", []string{"X-Api-Key", laneKey}},
		{L, "GET", "/metered/items/Q-2", []string{"X-Api-Key", laneKey}},
		{L, "GET", "/metered/items/Q-3", []string{"X-Api-Key", laneKey}},
	}
	compareLane(t, fast, general, requests)
	// While the system is in maintenance its routes go the general way, which answers 503.
	for _, n := range []laneNode{fast, general} {
		if a := do(t, "PUT", n.admin+"/v1/systems/inv/status", "application/json", `{"status":"maintenance","reason":"stocktaking"}`); a.status != 200 {
			t.Fatalf("maintenance: %d %s", a.status, a.raw)
		}
	}
	before := laneServed(t, fast.admin)
	got, want := laneDo(t, "GET", fast.base+"/inv/items/A-1", nil), laneDo(t, "GET", general.base+"/inv/items/A-1", nil)
	if got != want || !strings.HasPrefix(got, "503") || laneServed(t, fast.admin) != before {
		t.Errorf("in maintenance the fast lane node answered\n%s\nthe general one\n%s", got, want)
	}
	// The nodes counted alike, and the fast lane served the requests it should.
	fm, gm := laneMetrics(t, fast.admin), laneMetrics(t, general.admin)
	if !slices.Equal(fm, gm) {
		t.Errorf("metrics with the fast lane:\n%s\nwith the general path:\n%s", strings.Join(fm, "\n"), strings.Join(gm, "\n"))
	}
	if n := laneServed(t, general.admin); n != 0 {
		t.Errorf("with the fast lane off it served %d requests", n)
	}
}

// laneNode is a node of the fast lane tests, with what its backend saw.
type laneNode struct {
	base, admin string
	seen        func() []string
}

// laneNodes starts two nodes with the definitions defs makes for a backend of their own:
// one with the fast lane, one without.
func laneNodes(t *testing.T, defs func(backend string) string) (fast, general laneNode) {
	start := func(noFast bool) laneNode {
		backend, seen := laneBackend(t)
		p := runPlatform(t, func(o *Options) {
			o.NoFastLane = noFast
			if err := os.WriteFile(filepath.Join(o.ConfigDir, "inv.yaml"), []byte(defs(backend)), 0o644); err != nil {
				t.Fatal(err)
			}
		})
		return laneNode{base: "http://" + p.HTTPAddr(), admin: "http://" + p.AdminAddr(), seen: seen}
	}
	return start(false), start(true)
}

// laneRequest is a request of a fast lane test, and whether the fast lane serves it.
type laneRequest struct {
	lane         bool
	method, path string
	headers      []string
}

// compareLane sends each request to both nodes and wants the same answers, the same
// requests at the backend, and the fast lane serving the requests marked for it.
func compareLane(t *testing.T, fast, general laneNode, requests []laneRequest) {
	t.Helper()
	for _, rq := range requests {
		name := rq.method + " " + rq.path
		before := laneServed(t, fast.admin)
		want := laneDo(t, rq.method, general.base+rq.path, rq.headers)
		got := laneDo(t, rq.method, fast.base+rq.path, rq.headers)
		if got != want {
			t.Errorf("%s: the fast lane answered\n%s\nthe general path\n%s", name, got, want)
		}
		// X-Forwarded-Host names each node's own address.
		if got, want := host(fast.seen(), fast.base), host(general.seen(), general.base); !slices.Equal(got, want) {
			t.Errorf("%s: with the fast lane the backend saw\n%s\nwith the general path\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if served := laneServed(t, fast.admin) > before; served != rq.lane {
			t.Errorf("%s: served on the fast lane: %v, want %v", name, served, rq.lane)
		}
	}
}

// host writes a node's address as <node> in what the backend saw.
func host(seen []string, base string) []string {
	for i, s := range seen {
		seen[i] = strings.ReplaceAll(s, strings.TrimPrefix(base, "http://"), "<node>")
	}
	return seen
}

// laneDo makes a request and describes the answer: status, headers but the date, body.
func laneDo(t *testing.T, method, url string, headers []string) string {
	t.Helper()
	body, contentType := "", ""
	if len(headers) >= 2 && headers[0] == "body" {
		body, contentType, headers = headers[1], "application/json", headers[2:]
	}
	a := do(t, method, url, contentType, body, headers...)
	var hs []string
	for k, vs := range a.header {
		if k != "Date" {
			hs = append(hs, k+": "+strings.Join(vs, ", "))
		}
	}
	sort.Strings(hs)
	// A webhook's answer names the message it accepted, different on each node.
	raw := regexp.MustCompile(`"id":"[0-9A-Z]{26}"`).ReplaceAllString(a.raw, `"id":"<id>"`)
	return fmt.Sprintf("%d\n%s\n%s", a.status, strings.Join(hs, "\n"), raw)
}

// laneServed is how many requests a node's fast lane served.
func laneServed(t *testing.T, admin string) int {
	a := do(t, "GET", admin+"/metrics", "", "")
	n := 0
	for _, m := range regexp.MustCompile(`(?m)^causeway_gateway_fast_lane_requests_total\{[^}]*\} (\d+)$`).FindAllStringSubmatch(a.raw, -1) {
		var v int
		fmt.Sscan(m[1], &v)
		n += v
	}
	return n
}

// laneMetrics are a node's gateway request counts and refusals, and its connector calls.
func laneMetrics(t *testing.T, admin string) []string {
	a := do(t, "GET", admin+"/metrics", "", "")
	var out []string
	for _, line := range strings.Split(a.raw, "\n") {
		for _, name := range []string{"causeway_gateway_requests_total{", "causeway_gateway_refused_total{", "causeway_gateway_request_duration_seconds_count{", "causeway_connector_calls_total{"} {
			if strings.HasPrefix(line, name) {
				out = append(out, line)
			}
		}
	}
	return out
}
