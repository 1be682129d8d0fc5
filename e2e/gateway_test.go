package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	jwtlib "github.com/golang-jwt/jwt/v5"

	"github.com/causeway/causeway/gateway"
	"github.com/causeway/causeway/internal/testissuer"
)

// backend is the system behind the gateway's APIs in these tests: a small HTTP API that can
// also hang, reset the connection, fail with internals in its answer, and echo the headers
// it was sent.
type backend struct {
	*httptest.Server
	items   atomic.Int64
	mu      sync.Mutex
	headers http.Header
}

func startBackend(t *testing.T) *backend {
	b := &backend{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		b.items.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"name":"widget","price_cents":1999,"in_stock":true}`, r.PathValue("id"))
	})
	mux.HandleFunc("GET /hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("GET /reset", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			conn.Close()
		}
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, "pq: password authentication failed for user erp_admin at db-internal-7:5432")
	})
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.headers = r.Header.Clone()
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	})
	b.Server = httptest.NewServer(mux)
	t.Cleanup(b.Close)
	return b
}

func gatewayPolicyDefs(backendURL, jwksURL, goodKey, revokedKey string) map[string]string {
	return map[string]string{"defs.yaml": `apiVersion: causeway/v1
kind: System
metadata: {name: store}
spec:
  http: {baseURL: "` + backendURL + `", timeout: 5s}
  health: {breaker: {disabled: true}}
  operations:
    getItem: {http: {method: GET, path: "/items/{id}"}}
    hang: {http: {method: GET, path: "/hang"}}
    reset: {http: {method: GET, path: "/reset"}}
    fail: {http: {method: GET, path: "/fail"}}
    echo: {http: {method: GET, path: "/echo"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: quote}
spec:
  trigger: {invoke: {timeout: 5s}}
  steps:
    - {id: answer, reply: {status: 200, body: {qty: "${{ .data.qty }}"}}}
---
apiVersion: causeway/v1
kind: Consumer
metadata: {name: webshop}
spec:
  keys:
    - {name: current, sha256: ` + gateway.HashKey(goodKey) + `}
    - {name: leaked, sha256: ` + gateway.HashKey(revokedKey) + `, revoked: true}
  scopes: ["items:read"]
---
apiVersion: causeway/v1
kind: Consumer
metadata: {name: partner}
spec:
  subjects: [partner-app]
  scopes: ["items:read"]
---
apiVersion: causeway/v1
kind: API
metadata: {name: shop}
spec:
  basePath: /api/shop
  maxBodyBytes: 2048
  policies:
    auth: {apiKey: {header: X-Api-Key}}
    rateLimit: {requests: 4, per: 1m}
    cors: {origins: ["https://shop.example.com"], headers: [X-Api-Key], expose: [RateLimit-Remaining]}
    headers: {forward: [Accept-Language]}
  routes:
    - match: GET /items/{id}
      policies: {scopes: ["items:read"], rateLimit: {requests: 1000, per: 1s}, cache: {ttl: 1m}}
      proxy:
        call: store.getItem
        with: {id: "${{ .path.id }}"}
        response: {body: '{id: .body.id, name: .body.name, price: (.body.price_cents / 100)}'}
    - match: GET /limited/{id}
      proxy: {call: store.getItem, with: {id: "${{ .path.id }}"}}
    - match: GET /admin/{id}
      policies: {scopes: ["items:admin"]}
      proxy: {call: store.getItem, with: {id: "${{ .path.id }}"}}
    - match: GET /hang
      timeout: 300ms
      policies: {rateLimit: {requests: 1000, per: 1s}}
      proxy: {call: store.hang}
    - match: GET /reset
      policies: {rateLimit: {requests: 1000, per: 1s}}
      proxy: {call: store.reset}
    - match: GET /fail
      policies: {rateLimit: {requests: 1000, per: 1s}}
      proxy: {call: store.fail}
    - match: GET /echo
      policies: {rateLimit: {requests: 1000, per: 1s}}
      proxy: {call: store.echo}
    - match: POST /quotes
      policies:
        rateLimit: {requests: 1000, per: 1s}
        validate:
          schema: {type: object, required: [qty], additionalProperties: false, properties: {qty: {type: integer, minimum: 1}}}
          maxDepth: 5
          maxElements: 50
      flow: {name: quote}
---
apiVersion: causeway/v1
kind: API
metadata: {name: partners}
spec:
  basePath: /api/partners
  policies:
    auth: {jwt: {issuer: "https://login.test/", audiences: [shop], jwksURL: "` + jwksURL + `", claims: {tenant: acme}}}
    scopes: ["items:read"]
    quota: {requests: 3, per: day}
  routes:
    - match: GET /items/{id}
      proxy: {call: store.getItem, with: {id: "${{ .path.id }}"}}
---
apiVersion: causeway/v1
kind: API
metadata: {name: internal}
spec:
  basePath: /api/internal
  policies:
    auth: {none: true}
    ip: {allow: [10.0.0.0/8], trustedProxies: [127.0.0.1]}
  routes:
    - match: GET /items/{id}
      proxy: {call: store.getItem, with: {id: "${{ .path.id }}"}}
`}
}

// call makes a request and returns the answer with its body read.
func call(t *testing.T, method, url string, headers map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// problemType reads the type of a problem+json answer.
func problemType(t *testing.T, resp *http.Response, body string) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%d answer is %s, not a problem: %s", resp.StatusCode, ct, body)
	}
	var p struct{ Type string }
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(p.Type, "urn:causeway:problem:")
}

func TestGatewayPolicies(t *testing.T) {
	be := startBackend(t)
	is := testissuer.Start(t)
	goodKey, _, _ := gateway.NewKey()
	revokedKey, _, _ := gateway.NewKey()
	n := startNode(t, writeConfig(t, gatewayPolicyDefs(be.URL, is.URL, goodKey, revokedKey)), t.TempDir())
	base := "http://" + n.http
	withKey := map[string]string{"X-Api-Key": goodKey}

	t.Run("api keys", func(t *testing.T) {
		for _, c := range []struct {
			name, key, want string
		}{
			{"missing", "", "an API key is required"},
			{"wrong", "cw_not-a-key-of-anyone", "the API key is not valid"},
			{"revoked", revokedKey, "the API key has been revoked"},
		} {
			resp, body := call(t, "GET", base+"/api/shop/items/1", map[string]string{"X-Api-Key": c.key}, "")
			if resp.StatusCode != 401 || problemType(t, resp, body) != "unauthorized" || !strings.Contains(body, c.want) {
				t.Errorf("%s key: %d %s", c.name, resp.StatusCode, body)
			}
			if c.key != "" && strings.Contains(body, c.key) {
				t.Errorf("%s key: the answer repeats the key", c.name)
			}
		}
		resp, body := call(t, "GET", base+"/api/shop/items/7", withKey, "")
		if resp.StatusCode != 200 || body != `{"id":"7","name":"widget","price":19.99}` {
			t.Fatalf("good key: %d %s", resp.StatusCode, body)
		}
		resp, body = call(t, "GET", base+"/api/shop/admin/7", withKey, "")
		if resp.StatusCode != 403 || problemType(t, resp, body) != "insufficient-scope" {
			t.Errorf("missing scope: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("openapi", func(t *testing.T) {
		resp, body := call(t, "GET", base+"/api/shop/openapi.json", nil, "")
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		doc, err := openapi3.NewLoader().LoadFromData([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Errorf("the document is not valid OpenAPI: %v", err)
		}
		get := doc.Paths.Find("/items/{id}")
		if doc.OpenAPI != "3.1.0" || len(doc.Servers) != 1 || doc.Servers[0].URL != "/api/shop" || get == nil || get.Get == nil ||
			get.Get.Responses.Status(429) == nil || get.Get.Responses.Status(401) == nil || doc.Paths.Find("/quotes").Post.RequestBody == nil {
			t.Errorf("the document does not describe the API: %s", body)
		}
	})

	t.Run("cache", func(t *testing.T) {
		before := be.items.Load()
		for range 3 {
			if resp, body := call(t, "GET", base+"/api/shop/items/cached", withKey, ""); resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		}
		resp, _ := call(t, "GET", base+"/api/shop/items/cached", withKey, "")
		if got := be.items.Load() - before; got != 1 || resp.Header.Get("Age") == "" {
			t.Errorf("the backend was called %d times for 4 GETs of one URL (Age %q); want once", got, resp.Header.Get("Age"))
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		var statuses []int
		var last *http.Response
		var lastBody string
		for range 6 {
			last, lastBody = call(t, "GET", base+"/api/shop/limited/1", withKey, "")
			statuses = append(statuses, last.StatusCode)
		}
		if fmt.Sprint(statuses) != "[200 200 200 200 429 429]" {
			t.Fatalf("statuses %v; want four 200 then 429", statuses)
		}
		if problemType(t, last, lastBody) != "rate-limited" || last.Header.Get("Retry-After") == "" ||
			last.Header.Get("RateLimit-Limit") != "4" || last.Header.Get("RateLimit-Remaining") != "0" || last.Header.Get("RateLimit-Reset") == "" {
			t.Errorf("429 answer: headers %v body %s", last.Header, lastBody)
		}
	})

	t.Run("jwt", func(t *testing.T) {
		now := time.Now()
		good := jwtlib.MapClaims{"iss": "https://login.test/", "aud": "shop", "sub": "partner-app", "tenant": "acme", "exp": now.Add(time.Hour).Unix()}
		with := func(k string, v any) jwtlib.MapClaims {
			c := jwtlib.MapClaims{}
			for kk, vv := range good {
				c[kk] = vv
			}
			c[k] = v
			return c
		}
		forger := testissuer.NewKey(t)
		for _, c := range []struct {
			name   string
			token  string
			status int
		}{
			{"expired", testissuer.Sign(t, is.Key, with("exp", now.Add(-time.Hour).Unix())), 401},
			{"wrong audience", testissuer.Sign(t, is.Key, with("aud", "billing")), 401},
			{"wrong issuer", testissuer.Sign(t, is.Key, with("iss", "https://evil.test/")), 401},
			{"forged", testissuer.Sign(t, forger, good), 401},
			{"garbage", "not.a.token", 401},
			{"other tenant", testissuer.Sign(t, is.Key, with("tenant", "globex")), 403},
		} {
			// Sent twice: a refused token's second request is refused from the refused-token
			// cache, with the same answer.
			for range 2 {
				resp, body := call(t, "GET", base+"/api/partners/items/1", map[string]string{"Authorization": "Bearer " + c.token}, "")
				if resp.StatusCode != c.status {
					t.Errorf("%s token: %d %s", c.name, resp.StatusCode, body)
				}
				if strings.Contains(body, c.token) {
					t.Errorf("%s token: the answer repeats the token", c.name)
				}
			}
		}
		ok := testissuer.Sign(t, is.Key, good)
		var statuses []int
		for range 4 {
			resp, _ := call(t, "GET", base+"/api/partners/items/1", map[string]string{"Authorization": "Bearer " + ok}, "")
			statuses = append(statuses, resp.StatusCode)
		}
		if fmt.Sprint(statuses) != "[200 200 200 429]" {
			t.Errorf("a good token with a quota of 3 a day: %v", statuses)
		}
		// The good token's signature was checked once; its next three requests were
		// answered from the verified-token cache, which also holds the other tenant's
		// valid token (refused by the route's claims, not by its signature: its second
		// request is a hit too) and none of the refused ones, whose second requests were
		// answered from the refused-token cache.
		_, metrics := call(t, "GET", "http://"+n.admin+"/metrics", nil, "")
		for _, want := range []string{
			`causeway_gateway_jwt_cache_hits_total{issuer="https://login.test/"} 4`,
			`causeway_gateway_jwt_cached_tokens{issuer="https://login.test/"} 2`,
			`causeway_gateway_jwt_refused_cache_hits_total{issuer="https://login.test/"} 5`,
			`causeway_gateway_jwt_refused_tokens{issuer="https://login.test/"} 5`,
			`causeway_gateway_jwks_fetch_errors_total{issuer="https://login.test/"} 0`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics: no %s", want)
			}
		}
	})

	t.Run("ip allow list", func(t *testing.T) {
		resp, body := call(t, "GET", base+"/api/internal/items/1", nil, "")
		if resp.StatusCode != 403 {
			t.Errorf("from 127.0.0.1: %d %s", resp.StatusCode, body)
		}
		// The peer is a trusted proxy, so the client is the address it forwarded for.
		resp, body = call(t, "GET", base+"/api/internal/items/1", map[string]string{"X-Forwarded-For": "10.20.30.40"}, "")
		if resp.StatusCode != 200 {
			t.Errorf("forwarded for 10.20.30.40 by a trusted proxy: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("cors", func(t *testing.T) {
		resp, body := call(t, "OPTIONS", base+"/api/shop/items/1", map[string]string{"Origin": "https://shop.example.com", "Access-Control-Request-Method": "GET"}, "")
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" || resp.Header.Get("Access-Control-Allow-Methods") != "GET" {
			t.Errorf("preflight: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		resp, _ = call(t, "OPTIONS", base+"/api/shop/items/1", map[string]string{"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"}, "")
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from another origin: %d %v", resp.StatusCode, resp.Header)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, c := range []struct {
			name, method, path, body string
			status                   int
			problem                  string
		}{
			{"traversal", "GET", "/api/shop/items/..%2F..%2Fadmin", "", 400, "bad-path"},
			{"dot segment", "GET", "/api/shop/items/%2e%2e", "", 400, "bad-path"},
			{"oversized", "POST", "/api/shop/quotes", `{"qty":1,"pad":"` + strings.Repeat("x", 4096) + `"}`, 413, "too-large"},
			{"deeply nested", "POST", "/api/shop/quotes", strings.Repeat("[", 40) + strings.Repeat("]", 40), 400, "too-complex"},
			{"too many values", "POST", "/api/shop/quotes", "[" + strings.Repeat("1,", 60) + "1]", 400, "too-complex"},
			{"schema violation", "POST", "/api/shop/quotes", `{"qty":0}`, 422, "schema-violation"},
			{"unknown field", "POST", "/api/shop/quotes", `{"qty":2,"discount":50}`, 422, "schema-violation"},
			{"not JSON", "POST", "/api/shop/quotes", `{"qty":`, 400, "malformed"},
		} {
			resp, body := call(t, c.method, base+c.path, withKey, c.body)
			if resp.StatusCode != c.status || problemType(t, resp, body) != c.problem {
				t.Errorf("%s: %d %s; want %d %s", c.name, resp.StatusCode, body, c.status, c.problem)
			}
		}
		resp, body := call(t, "POST", base+"/api/shop/quotes", withKey, `{"qty":2}`)
		if resp.StatusCode != 200 || body != `{"qty":2}` {
			t.Errorf("a valid quote: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("failing backends", func(t *testing.T) {
		for _, c := range []struct {
			path, problem string
			status        int
		}{
			{"/api/shop/hang", "timeout", 504},
			{"/api/shop/reset", "bad-gateway", 502},
			{"/api/shop/fail", "bad-gateway", 502},
		} {
			start := time.Now()
			resp, body := call(t, "GET", base+c.path, withKey, "")
			if resp.StatusCode != c.status || problemType(t, resp, body) != c.problem {
				t.Errorf("%s: %d %s", c.path, resp.StatusCode, body)
			}
			for _, secret := range []string{"erp_admin", "db-internal", "127.0.0.1", be.URL, "pq:"} {
				if strings.Contains(body, secret) {
					t.Errorf("%s: the answer leaks %q: %s", c.path, secret, body)
				}
			}
			if c.status == 504 && time.Since(start) > 3*time.Second {
				t.Errorf("the hanging backend took %s to be given up", time.Since(start))
			}
		}
	})

	t.Run("headers", func(t *testing.T) {
		resp, body := call(t, "GET", base+"/api/shop/echo", map[string]string{
			"X-Api-Key": goodKey, "Authorization": "Basic c2VjcmV0", "Cookie": "session=abc",
			"Accept-Language": "nl", "Connection": "X-Hop", "X-Hop": "1", "X-Other": "2",
			"Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		}, "")
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		be.mu.Lock()
		h := be.headers
		be.mu.Unlock()
		for _, name := range []string{"X-Api-Key", "Authorization", "Cookie", "X-Hop", "X-Other"} {
			if h.Get(name) != "" {
				t.Errorf("the backend was sent the client's %s", name)
			}
		}
		if h.Get("Accept-Language") != "nl" || h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Proto") != "http" ||
			h.Get("X-Forwarded-Host") != n.http || !strings.HasPrefix(h.Get("Traceparent"), "00-0af7651916cd43dd8448eb211c80319c-") {
			t.Errorf("the backend was sent %v", h)
		}
	})
}

// TestGatewayLimitsSharedByTwoNodes runs two processes on one bus: a caller's rate limit and
// quota count its requests to either, and the quota survives a kill -9 of both.
func TestGatewayLimitsSharedByTwoNodes(t *testing.T) {
	be := startBackend(t)
	key, hash, _ := gateway.NewKey()
	defs := map[string]string{"defs.yaml": `apiVersion: causeway/v1
kind: System
metadata: {name: store}
spec:
  http: {baseURL: "` + be.URL + `"}
  operations:
    getItem: {http: {method: GET, path: "/items/{id}"}}
---
apiVersion: causeway/v1
kind: Consumer
metadata: {name: app}
spec:
  keys: [{name: k, sha256: ` + hash + `}]
---
apiVersion: causeway/v1
kind: API
metadata: {name: shop}
spec:
  basePath: /api/shop
  policies:
    auth: {apiKey: {}}
    rateLimit: {requests: 6, per: 1h}
  routes:
    - match: GET /items/{id}
      proxy: {call: store.getItem, with: {id: "${{ .path.id }}"}}
    - match: GET /metered/{id}
      policies: {rateLimit: {requests: 1000, per: 1s}, quota: {requests: 5, per: day}}
      proxy: {call: store.getItem, with: {id: "${{ .path.id }}"}}
`}
	cfg := writeConfig(t, defs)
	a := startNode(t, cfg, t.TempDir())
	b := startNode(t, cfg, t.TempDir(), "--nats", "nats://"+a.nats, "--node", "e2e-b")
	withKey := map[string]string{"X-Api-Key": key}
	var statuses []int
	for i := range 10 {
		n := a
		if i%2 == 1 {
			n = b
		}
		resp, _ := call(t, "GET", "http://"+n.http+"/api/shop/items/1", withKey, "")
		statuses = append(statuses, resp.StatusCode)
	}
	if fmt.Sprint(statuses) != "[200 200 200 200 200 200 429 429 429 429]" {
		t.Fatalf("10 requests, alternating between two nodes, against a limit of 6: %v", statuses)
	}

	metered := func(n *node) int {
		resp, _ := call(t, "GET", "http://"+n.http+"/api/shop/metered/1", withKey, "")
		return resp.StatusCode
	}
	for i, n := range []*node{a, b, a} {
		if s := metered(n); s != 200 {
			t.Fatalf("metered request %d: %d", i, s)
		}
	}
	// Both processes die without a chance to write anything more; the three requests
	// counted so far must still count when they are back.
	b.kill()
	a.kill()
	a = startNode(t, cfg, a.dataDir)
	b = startNode(t, cfg, t.TempDir(), "--nats", "nats://"+a.nats, "--node", "e2e-b")
	got := []int{metered(b), metered(a), metered(b)}
	if fmt.Sprint(got) != "[200 200 429]" {
		t.Fatalf("after a kill -9 of both nodes, with 3 of a quota of 5 used: %v; want two more then 429", got)
	}

	// The consumer sees its usage with its key, counted across both nodes; the operator
	// sees the same on the admin listener and in the portal.
	resp, body := call(t, "GET", "http://"+a.http+"/v1/usage", withKey, "")
	var u gateway.Usage
	if err := json.Unmarshal([]byte(body), &u); resp.StatusCode != http.StatusOK || err != nil || len(u.APIs) != 1 || len(u.APIs[0].Quotas) != 1 {
		t.Fatalf("GET /v1/usage: %d %s", resp.StatusCode, body)
	}
	if q := u.APIs[0].Quotas[0]; q.Used != 5 || q.Remaining != 0 || q.Requests != 5 || q.Per != "day" || fmt.Sprint(q.Routes) != "[GET /metered/{id}]" || !q.Resets.After(time.Now()) {
		t.Fatalf("quota usage: %+v", q)
	}
	if rl := u.APIs[0].RateLimits; len(rl) != 2 || rl[0].Requests != 6 || rl[1].Requests != 1000 {
		t.Fatalf("rate limits: %+v", rl)
	}
	if resp, _ := call(t, "GET", "http://"+a.http+"/v1/usage", map[string]string{"X-Api-Key": "cw_wrong"}, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("usage with a wrong key: %d", resp.StatusCode)
	}
	if code, v, _ := getJSON("http://" + b.admin + "/v1/consumers/app/usage"); code != http.StatusOK || !strings.Contains(fmt.Sprint(v), "used:5") {
		t.Fatalf("admin usage: %d %v", code, v)
	}
	for url, want := range map[string][]string{
		"/portal":                    {`href="/portal/apis/shop"`, "/api/shop", "API key", `href="/portal/consumers/app"`},
		"/portal/apis/shop":          {"/api/shop/items/{id}", "/api/shop/metered/{id}", "429", "X-Api-Key"},
		"/portal/consumers/app":      {"5 per day", "GET /metered/{id}", "6 per 1h0m0s"},
		"/v1/apis/shop/openapi.json": {`"openapi": "3.1.0"`},
	} {
		resp, body := call(t, "GET", "http://"+b.admin+url, nil, "")
		for _, w := range want {
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, w) {
				t.Fatalf("%s: %d, want %q in:\n%s", url, resp.StatusCode, w, body)
			}
		}
	}
	_, metrics := call(t, "GET", "http://"+b.admin+"/metrics", nil, "")
	if !strings.Contains(metrics, `causeway_gateway_requests_total{api="shop",consumer="app",route="GET /metered/{id}",status="429"} 1`) {
		t.Fatalf("no per-consumer request count in the metrics of node b")
	}
	if resp, _ := call(t, "GET", "http://"+b.admin+"/portal/consumers/nobody", nil, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("portal of an unknown consumer: %d", resp.StatusCode)
	}
}
