package platform

import (
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// gatewayDefs puts one API in front of two differently shaped backends: an ERP with an
// HTTP API of its own vocabulary, and a CRM reachable only through its SQLite database; and
// a route that invokes a flow.
func gatewayDefs(erpURL, crmDB string) string {
	return `apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "` + erpURL + `/erp", timeout: 5s}
  operations:
    getOrder: {http: {method: GET, path: "/orders/{no}"}}
---
apiVersion: causeway/v1
kind: System
metadata: {name: crm}
spec:
  sql: {driver: sqlite, dsn: "` + crmDB + `"}
  operations:
    getCustomer: {sql: {query: "SELECT id, full_name, tier FROM customers WHERE id = :id", one: true}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: quote}
spec:
  trigger: {invoke: {timeout: 5s}}
  steps:
    - id: answer
      reply:
        status: 200
        body: {orderId: "${{ .data.orderId }}", price: "${{ .data.qty * 10 }}"}
---
apiVersion: causeway/v1
kind: API
metadata: {name: shop}
spec:
  basePath: /api/shop
  policies: {auth: {none: true}}
  maxBodyBytes: 256
  routes:
    - match: GET /orders/{id}
      proxy:
        call: erp.getOrder
        with: {no: "${{ .path.id }}"}
        response:
          body: '{id: .body.order_no, total: (.body.amount | tonumber), status: (.body.state | ascii_downcase)}'
          headers: {Cache-Control: no-store}
    - match: GET /orders/{id}/version
      proxy:
        call: erp.getOrder
        with: {no: "${{ .path.id }}"}
        response:
          body: '{id: .body.order_no, version: .headers.etag, status: .status}'
    - match: POST /orders/lookup
      proxy:
        call: erp.getOrder
        with: {no: "${{ .body.no | ascii_downcase }}"}
    - match: GET /orders/{id}/slow
      timeout: 300ms
      proxy:
        call: erp.getOrder
        with: {no: slow}
    - match: GET /customers/{id}
      proxy:
        call: crm.getCustomer
        with: {id: "${{ .path.id }}"}
        response:
          body: '{id: .body.id, name: .body.full_name, tier: .body.tier}'
    - match: POST /orders/{id}/quote
      flow:
        name: quote
        input: '{orderId: .path.id, qty: .body.qty}'
`
}

// TestGatewayStandardizesTwoBackends serves one API over an HTTP ERP and a SQL CRM, maps
// both into the API's objects, and turns every bad input and backend failure into a
// problem without the backend's details.
func TestGatewayStandardizesTwoBackends(t *testing.T) {
	erp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/erp/orders/A-1":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("ETag", `"v7"`)
			_, _ = io.WriteString(w, `{"order_no":"A-1","amount":"12.50","state":"OPEN"}`)
		case "/erp/orders/boom":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `panic: pq: connection to db.internal:5432 refused`)
		case "/erp/orders/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer erp.Close()
	crmDB := filepath.Join(t.TempDir(), "crm.db")
	db, err := sql.Open("sqlite", crmDB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE customers (id TEXT PRIMARY KEY, full_name TEXT, tier TEXT); INSERT INTO customers VALUES ('c-7', 'Ada Lovelace', 'gold')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	p := runPlatform(t, func(o *Options) {
		if err := os.WriteFile(filepath.Join(o.ConfigDir, "api.yaml"), []byte(gatewayDefs(erp.URL, crmDB)), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	base := "http://" + p.HTTPAddr() + "/api/shop"

	a := do(t, "GET", base+"/orders/A-1", "", "")
	if a.status != 200 || a.raw != `{"id":"A-1","status":"open","total":12.5}` || a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("order: %d %s %v", a.status, a.raw, a.header)
	}
	a = do(t, "GET", base+"/orders/A-1/version", "", "")
	if a.status != 200 || a.raw != `{"id":"A-1","status":200,"version":"\"v7\""}` {
		t.Errorf("a mapping of the answer's headers: %d %s", a.status, a.raw)
	}
	a = do(t, "GET", base+"/customers/c-7", "", "")
	if a.status != 200 || a.raw != `{"id":"c-7","name":"Ada Lovelace","tier":"gold"}` {
		t.Errorf("customer: %d %s", a.status, a.raw)
	}
	a = do(t, "POST", base+"/orders/A-1/quote", "application/json", `{"qty":3}`)
	if a.status != 200 || a.body["orderId"] != "A-1" || a.body["price"] != float64(30) || a.header.Get("Causeway-Run-Id") == "" {
		t.Errorf("quote: %d %s", a.status, a.raw)
	}

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		problem                  string
	}{
		{"unknown order", "GET", "/orders/nope", "", 404, "not-found"},
		{"backend 500", "GET", "/orders/boom", "", 502, "bad-gateway"},
		{"backend hangs", "GET", "/orders/x/slow", "", 504, "timeout"},
		{"unknown customer", "GET", "/customers/c-0", "", 404, "not-found"},
		{"dot segment", "GET", "/orders/%2e%2e", "", 400, "bad-path"},
		{"encoded slash", "GET", "/orders/a%2Fb", "", 400, "bad-path"},
		{"wrong method", "DELETE", "/orders/A-1", "", 405, "method-not-allowed"},
		{"no route", "GET", "/invoices/1", "", 404, "not-found"},
		{"oversized body", "POST", "/orders/A-1/quote", `{"qty":"` + strings.Repeat("9", 300) + `"}`, 413, "too-large"},
		{"malformed body", "POST", "/orders/A-1/quote", `{"qty":`, 400, "malformed"},
		{"unmappable body", "POST", "/orders/lookup", `{"no":5}`, 400, "bad-request"},
	} {
		a := do(t, tc.method, base+tc.path, "application/json", tc.body)
		if a.status != tc.status || a.body["type"] != "urn:causeway:problem:"+tc.problem || a.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s", tc.name, a.status, a.raw)
		}
		if strings.Contains(a.raw, "db.internal") || strings.Contains(a.raw, erp.URL) || strings.Contains(a.raw, "erp") || strings.Contains(a.raw, "ascii_downcase") {
			t.Errorf("%s: the answer shows the backend: %s", tc.name, a.raw)
		}
	}
	if a := do(t, "DELETE", base+"/orders/A-1", "", ""); a.header.Get("Allow") != "GET" {
		t.Errorf("Allow: %q", a.header.Get("Allow"))
	}

	// The ERP in maintenance: 503 with Retry-After, and no call.
	admin := "http://" + p.AdminAddr()
	if a := do(t, "PUT", admin+"/v1/systems/erp/status", "application/json", `{"status":"maintenance","until":"10m","reason":"upgrade"}`); a.status != 200 {
		t.Fatalf("switch: %d %s", a.status, a.raw)
	}
	a = do(t, "GET", base+"/orders/A-1", "", "")
	if a.status != 503 || a.body["type"] != "urn:causeway:problem:unavailable" || a.header.Get("Retry-After") == "" {
		t.Errorf("maintenance: %d %s %v", a.status, a.raw, a.header)
	}
	m := do(t, "GET", admin+"/metrics", "", "")
	for _, series := range []string{
		`causeway_gateway_requests_total{api="shop",consumer="-",route="GET /orders/{id}",status="200"} 1`,
		`causeway_gateway_requests_total{api="shop",consumer="-",route="GET /orders/{id}",status="404"} 1`,
		// Requests no route took: the two bad paths, the two of the wrong method, the one
		// without a route.
		`causeway_gateway_requests_total{api="shop",consumer="-",route="unmatched",status="400"} 2`,
		`causeway_gateway_requests_total{api="shop",consumer="-",route="unmatched",status="405"} 2`,
		`causeway_gateway_requests_total{api="shop",consumer="-",route="unmatched",status="404"} 1`,
		`causeway_gateway_request_duration_seconds_count{api="shop",route="GET /orders/{id}"} 4`,
	} {
		if !strings.Contains(m.raw, series) {
			t.Errorf("metrics lack %s", series)
		}
	}
}
