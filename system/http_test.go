package system_test

import (
	"strings"
	"testing"
)

func TestHTTPSettings(t *testing.T) {
	t.Setenv("CAUSEWAY_SECRET_ERP_TOKEN", "t0ken")
	s, err := loadSystem(t, `spec:
  http:
    baseURL: https://erp.example.com/api
    headers: {X-Tenant: acme}
    auth: {bearer: "${secret:ERP_TOKEN}"}
  operations:
    markShipped:
      description: Mark an order as shipped
      http: {method: POST, path: "/orders/{orderId}/ship/{orderId}", timeout: 5s}
    getOrder:
      http: {method: GET, path: "/orders/{id}", query: {expand: lines}}
`)
	if err != nil {
		t.Fatal(err)
	}
	if s.HTTP.Timeout.String() != "30s" {
		t.Errorf("default timeout %s, want 30s", s.HTTP.Timeout)
	}
	if s.HTTP.Auth.Bearer.Reveal() != "t0ken" {
		t.Error("bearer token not read from the secret")
	}
	op, ok := s.Operation("markShipped")
	if !ok || op.HTTP.String() != "POST /orders/{orderId}/ship/{orderId}" {
		t.Fatalf("markShipped: %v %v", op, ok)
	}
	if got := op.HTTP.PathParams(); len(got) != 1 || got[0] != "orderId" {
		t.Errorf("path params %v, want [orderId]", got)
	}
	if _, ok := s.Operation("nope"); ok {
		t.Error("an undeclared operation was found")
	}
}

func TestInvalidHTTPSettings(t *testing.T) {
	for spec, want := range map[string]string{
		"spec: {http: {baseURL: /api}}\n":                          `s.yaml:4:24: spec.http.baseURL: "/api" is not an absolute http or https URL`,
		"spec: {http: {baseURL: ftp://x/}}\n":                      `"ftp://x/" is not an absolute http or https URL`,
		"spec: {http: {baseURL: 'http://x/?a=1'}}\n":               `spec.http.baseURL: "http://x/?a=1" has a query or fragment`,
		"spec: {http: {timeout: 1s}}\n":                            `s.yaml:4:14: spec.http.baseURL: required field missing`,
		"spec: {http: {baseURL: http://x, timeout: 0s}}\n":         `spec.http.timeout: must be positive`,
		"spec: {http: {baseURL: http://x, headers: {'a b': x}}}\n": `spec.http.headers["a b"]: invalid header name "a b"`,
		"spec:\n  http:\n    baseURL: http://x\n    auth:\n      basic: {username: u, password: p}\n      header: {name: K, value: v}\n": `s.yaml:8:7: spec.http.auth: give only one of bearer, basic, header, query or oauth2`,
		"spec: {http: {baseURL: http://x, auth: {basic: {username: u}}}}\n":                                                              `spec.http.auth.basic.password: required field missing`,
		"spec: {operations: {ship: {http: {method: POST, path: /s}}}}\n":                                                                 `spec.operations.ship.http: operation "ship" is an HTTP request, but the system has no http settings`,
		"spec: {http: {baseURL: http://x}, operations: {ship: {description: d}}}\n":                                                      `operation "ship" says nothing about how to carry it out: give http`,
		"spec: {http: {baseURL: http://x}, operations: {ship: {http: {method: FETCH, path: /s}}}}\n":                                     `spec.operations.ship.http.method: must be one of "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", got "FETCH"`,
		"spec: {http: {baseURL: http://x}, operations: {ship: {http: {method: POST, path: s}}}}\n":                                       `spec.operations.ship.http.path: "s" must start with /`,
		"spec: {http: {baseURL: http://x}, operations: {ship: {http: {method: POST, path: '/o/{a-b}'}}}}\n":                              `invalid placeholder {a-b}`,
		"spec: {http: {baseURL: http://x}, operations: {ship: {http: {method: POST, path: '/o/{id'}}}}\n":                                `unbalanced braces in "/o/{id"`,
		"spec: {http: {baseURL: http://x}, operations: {'9ship': {http: {method: POST, path: /s}}}}\n":                                   `invalid operation name "9ship"`,
		"spec: {http: {baseURL: http://x}, operations: {ship: {http: {method: POST, path: /s, metod: GET}}}}\n":                          `unknown field "metod"`,
	} {
		_, err := loadSystem(t, spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\n got %v\nwant %q", spec, err, want)
		}
	}
}
