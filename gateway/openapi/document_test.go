package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/causeway/causeway/gateway/openapi"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden.json and testdata/import/*.golden.yaml files")

// documentCases are APIs whose documents are kept in testdata/NAME.golden.json.
var documentCases = map[string]openapi.API{
	"orders": {
		Name:        "orders",
		Title:       "Orders",
		Description: "Orders, whatever system holds them.",
		Version:     "v2",
		BasePath:    "/api/orders",
		// An API key in a header or, for clients that cannot set one, a query parameter.
		Security: []openapi.Scheme{{Type: openapi.SchemeAPIKey, In: "header", Name: "X-Api-Key"}, {Type: openapi.SchemeAPIKey, In: "query", Name: "api_key"}},
		Routes: []openapi.Route{
			{Method: "GET", Path: "/{orderId}", Summary: "Get an order"},
			{Method: "POST", Path: "/", Summary: "Place an order", SuccessStatus: 201, RateLimited: true,
				RequestSchema: json.RawMessage(`{"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}}`)},
			{Method: "DELETE", Path: "/{orderId}", Summary: "Cancel an order", Scopes: []string{"orders:cancel"}, SuccessStatus: 204},
			{Method: "POST", Path: "/{orderId}/quote", Kind: openapi.KindFlow, Description: "Price an order.\n\nThe quote is valid for an hour."},
			{Method: "POST", Path: "/{orderId}/shipment", Kind: openapi.KindPublish, Queued: true, OperationID: "shipOrder"},
			{Method: "PUT", Path: "/{orderId}/lines/{line}", Queued: true},
			{Method: "GET", Path: "/status", Security: &[]openapi.Scheme{}},
		},
	},
	"open": {
		Name:     "catalog",
		BasePath: "/api/catalog",
		Routes: []openapi.Route{
			{Method: "GET", Path: "/"},
			{Method: "GET", Path: "/items/{sku}", Summary: "An item"},
			// A JWT route in an open API, with optional credentials on another.
			{Method: "PATCH", Path: "/items/{sku}", Security: &[]openapi.Scheme{{Type: openapi.SchemeJWT, Issuer: "https://login.example.com/"}}, Scopes: []string{"catalog.write"}},
			{Method: "GET", Path: "/prices", Security: &[]openapi.Scheme{{Type: openapi.SchemeNone}, {Type: openapi.SchemeJWT, Issuer: "https://login.example.com/"}}},
			// Paths that differ only in punctuation derive the same id; a number tells them apart.
			{Method: "GET", Path: "/order-items"},
			{Method: "GET", Path: "/order_items"},
		},
	},
}

// golden compares got with the file at path, or rewrites the file with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; write it with: go test ./gateway/openapi -update", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs; if the change is right, rewrite it with: go test ./gateway/openapi -update\ngot:\n%s", path, got)
	}
}

func TestDocumentGolden(t *testing.T) {
	for name, api := range documentCases {
		t.Run(name, func(t *testing.T) {
			got, err := openapi.Document(api)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := openapi.Document(api)
			if !bytes.Equal(got, again) {
				t.Error("two documents of the same API differ")
			}
			golden(t, filepath.Join("testdata", name+".golden.json"), got)
			checkWithLoader(t, got)
			checkByHand(t, got)
		})
	}
}

// checkWithLoader reads a document back with the OpenAPI library and validates it as 3.1.
func checkWithLoader(t *testing.T, data []byte) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		t.Fatalf("the document does not load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q is not 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Errorf("the document is not valid OpenAPI 3.1: %v", err)
	}
}

// checkByHand checks what the library's validation may not: every reference resolves,
// every path parameter is declared once and required, operation ids are unique, every
// problem answer is problem+json, and a secured operation answers 401.
func checkByHand(t *testing.T, data []byte) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi: %v", doc["openapi"])
	}
	for _, m := range regexp.MustCompile(`"\$ref": "#/([^"]+)"`).FindAllStringSubmatch(string(data), -1) {
		var at any = doc
		for _, part := range strings.Split(m[1], "/") {
			obj, _ := at.(map[string]any)
			at = obj[part]
		}
		if at == nil {
			t.Errorf("$ref #/%s resolves to nothing", m[1])
		}
	}
	ids := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		for method, o := range item.(map[string]any) {
			op := o.(map[string]any)
			id, _ := op["operationId"].(string)
			if id == "" || ids[id] {
				t.Errorf("%s %s: operationId %q missing or not unique", method, path, id)
			}
			ids[id] = true
			declared := map[string]bool{}
			for _, p := range asList(op["parameters"]) {
				p := p.(map[string]any)
				if p["in"] == "path" {
					if p["required"] != true || declared[p["name"].(string)] {
						t.Errorf("%s %s: path parameter %v", method, path, p)
					}
					declared[p["name"].(string)] = true
				}
			}
			for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
				if !declared[m[1]] {
					t.Errorf("%s %s: parameter %s not declared", method, path, m[1])
				}
			}
			responses := op["responses"].(map[string]any)
			for _, status := range []string{"400", "404", "502", "503", "504"} {
				if responses[status] == nil {
					t.Errorf("%s %s: no %s answer", method, path, status)
				}
			}
			security := doc["security"]
			if s, ok := op["security"]; ok {
				security = s
			}
			if len(asList(security)) > 0 && responses["401"] == nil {
				t.Errorf("%s %s: secured but no 401", method, path)
			}
		}
	}
	for name, r := range doc["components"].(map[string]any)["responses"].(map[string]any) {
		content := r.(map[string]any)["content"].(map[string]any)
		if _, ok := content["application/problem+json"]; !ok || len(content) != 1 {
			t.Errorf("response %s is not problem+json: %v", name, content)
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestDocumentRefusesWhatTheGatewayCouldNotServe(t *testing.T) {
	for _, tc := range []struct {
		name string
		api  openapi.API
		want string
	}{
		{"base path", openapi.API{BasePath: "api"}, `basePath "api": start with /`},
		{"method", openapi.API{BasePath: "/a", Routes: []openapi.Route{{Method: "HEAD", Path: "/"}}}, `routes[0] (HEAD /): method "HEAD": one of GET, POST, PUT, PATCH, DELETE`},
		{"path", openapi.API{BasePath: "/a", Routes: []openapi.Route{{Method: "GET", Path: "x"}}}, `routes[0] (GET x): path "x": start with /`},
		{"mixed segment", openapi.API{BasePath: "/a", Routes: []openapi.Route{{Method: "GET", Path: "/{id}.json"}}}, `segment "{id}.json" is neither a plain segment nor a {parameter}`},
		{"empty segment", openapi.API{BasePath: "/a", Routes: []openapi.Route{{Method: "GET", Path: "/a//b"}}}, `segment "" is neither`},
		{"twice", openapi.API{BasePath: "/a", Routes: []openapi.Route{{Method: "GET", Path: "/{id}/{id}"}}}, `parameter id appears twice`},
		{"duplicate", openapi.API{BasePath: "/a", Routes: []openapi.Route{{Method: "GET", Path: "/x"}, {Method: "GET", Path: "/x", OperationID: "other"}}}, `routes[1] (GET /x): the same method and path as another route`},
		{"operation id", openapi.API{BasePath: "/a", Routes: []openapi.Route{{Method: "GET", Path: "/x", OperationID: "a"}, {Method: "GET", Path: "/y", OperationID: "a"}}}, `routes[1] (GET /y): operationId "a" is also that of routes[0]`},
		{"schema", openapi.API{BasePath: "/a", Routes: []openapi.Route{{Method: "POST", Path: "/x", RequestSchema: json.RawMessage(`{`)}}}, `the request schema is not JSON`},
		{"status", openapi.API{BasePath: "/a", Routes: []openapi.Route{{Method: "GET", Path: "/x", SuccessStatus: 404}}}, `success status 404 is not 2xx`},
		{"kind", openapi.API{BasePath: "/a", Routes: []openapi.Route{{Method: "GET", Path: "/x", Kind: "relay"}}}, `kind "relay": one of proxy, flow and publish`},
		{"scheme", openapi.API{BasePath: "/a", Security: []openapi.Scheme{{Type: "basic"}}}, `security: [0]: type "basic": one of none, apiKey and jwt`},
		{"key in", openapi.API{BasePath: "/a", Security: []openapi.Scheme{{Type: openapi.SchemeAPIKey, In: "cookie", Name: "k"}}}, `an API key is in header or query, not "cookie"`},
		{"key name", openapi.API{BasePath: "/a", Routes: []openapi.Route{{Method: "GET", Path: "/", Security: &[]openapi.Scheme{{Type: openapi.SchemeAPIKey, In: "header"}}}}}, `routes[0] (GET /): security: [0]: name the header parameter that carries the API key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openapi.Document(tc.api)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOperationID(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/orders/{id}", "getOrdersById"},
		{"POST", "/orders", "postOrders"},
		{"GET", "/", "getRoot"},
		{"DELETE", "/order-items/{line_no}", "deleteOrderItemsByLineNo"},
		{"PATCH", "/v2/users/{userId}/e-mail", "patchV2UsersByUserIdEMail"},
	} {
		if got := openapi.OperationID(tc.method, tc.path); got != tc.want {
			t.Errorf("OperationID(%s, %s) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

// TestDocumentKeepsGivenOperationIDs checks that a derived id gives way to one given to a
// later route, rather than the other way round.
func TestDocumentKeepsGivenOperationIDs(t *testing.T) {
	got, err := openapi.Document(openapi.API{Name: "a", BasePath: "/a", Routes: []openapi.Route{
		{Method: "GET", Path: "/x"},
		{Method: "GET", Path: "/y", OperationID: "getX"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct{ OperationID string }
	}
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	if x, y := doc.Paths["/x"]["get"].OperationID, doc.Paths["/y"]["get"].OperationID; x != "getX2" || y != "getX" {
		t.Errorf("operation ids %q and %q, want getX2 and getX", x, y)
	}
}
