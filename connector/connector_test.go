package connector

import (
	"fmt"
	"testing"

	"github.com/causeway/causeway/system"
)

// TestHTTPCallSortsParameters checks where each key of a call's with goes: the path's
// placeholders by name (a name that only appears inside another is not one), the body,
// query and headers, and anything else into the query.
func TestHTTPCallSortsParameters(t *testing.T) {
	op := &system.HTTPOperation{Method: "POST", Path: "/orders/{orderId}/lines/{line}"}
	call := HTTPCall(op, map[string]any{
		"orderId": "A-1", "line": 2.0, "order": "not the path's", "body": map[string]any{"qty": 1.0},
		"query": map[string]any{"expand": "all"}, "headers": map[string]any{"X-Tenant": 7.0},
	}, CallInfo{IdempotencyKey: "k", Raw: true})
	if got := fmt.Sprint(call.Params); got != "map[line:2 orderId:A-1]" {
		t.Errorf("params: %s", got)
	}
	if got := fmt.Sprint(call.Query); got != "map[expand:all order:not the path's]" {
		t.Errorf("query: %s", got)
	}
	if got := fmt.Sprint(call.Headers); got != "map[X-Tenant:7]" {
		t.Errorf("headers: %s", got)
	}
	if fmt.Sprint(call.Body) != "map[qty:1]" || call.IdempotencyKey != "k" || !call.Raw {
		t.Errorf("call: %+v", call)
	}
	empty := HTTPCall(op, nil, CallInfo{})
	if empty.Params != nil || empty.Query != nil || empty.Headers != nil {
		t.Errorf("a call without parameters made maps: %+v", empty)
	}
	for _, c := range []struct {
		path, name string
		want       bool
	}{
		{"/a/{id}", "id", true}, {"/a/{id}", "i", false}, {"/a/{idx}/{id}", "id", true},
		{"/a/id/{x}", "id", false}, {"{id}", "id", true}, {"/a/{id", "id", false}, {"/a", "", false},
	} {
		if got := inPath(c.path, c.name); got != c.want {
			t.Errorf("inPath(%q, %q) = %v", c.path, c.name, got)
		}
	}
}
