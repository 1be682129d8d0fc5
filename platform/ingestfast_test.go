package platform

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestIngestFastPathMatchesGeneral sends the same ingestion requests, in every content
// mode, to a node that serves what it can on ingestion's fast path (ServeFast) and to one
// that serves everything on the general path (--no-fast-lane): the answers must be the
// same, byte for byte but for the ids the nodes make, the fast path must serve exactly the
// requests meant for it, and what is stored must be the same, trace context included.
func TestIngestFastPathMatchesGeneral(t *testing.T) {
	fast := runPlatform(t)
	general := runPlatform(t, func(o *Options) { o.NoFastLane = true })
	const (
		tp    = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		order = `"source":"webshop","type":"order.created","time":"2026-11-24T10:00:00Z","data":{"orderId":"A-1","items":[{"sku":"S-1","qty":2}]}`
	)
	ce, batch := "application/cloudevents+json", "application/cloudevents-batch+json"
	cases := []struct {
		name        string
		fast        bool // the fast path serves it
		path, ctype string
		body        string
		headers     []string
	}{
		{"structured, producer id", true, "/v1/messages", ce, `{"specversion":"1.0","id":"p-1",` + order + `}`, nil},
		{"structured, generated id", true, "/v1/messages", ce, `{"specversion":"1.0",` + order + `}`, nil},
		{"structured with trace context", true, "/v1/messages", ce, `{"specversion":"1.0","id":"p-trace",` + order + `}`, []string{"traceparent", tp, "tracestate", "vendor=1"}},
		{"an id JSON escapes", true, "/v1/messages", ce, `{"specversion":"1.0","id":"<p&2>",` + order + `}`, nil},
		{"batch", true, "/v1/messages", batch, `[{"specversion":"1.0","id":"b-1",` + order + `},{"specversion":"1.0","id":"b-2",` + order + `}]`, []string{"traceparent", tp}},
		{"resent", true, "/v1/messages", ce, `{"specversion":"1.0","id":"p-1",` + order + `}`, nil},
		{"malformed", false, "/v1/messages", ce, `{"specversion":`, nil},
		{"schema violation", false, "/v1/messages", ce, `{"specversion":"1.0","source":"webshop","type":"order.created","data":{"orderId":""}}`, nil},
		{"unknown type", false, "/v1/messages", ce, `{"specversion":"1.0","source":"webshop","type":"nope","data":{}}`, nil},
		{"empty batch", false, "/v1/messages", batch, `[]`, nil},
		{"too large", false, "/v1/messages", ce, `{"specversion":"1.0",` + order + `,"x":"` + strings.Repeat("y", 5000) + `"}`, nil},
		{"plain JSON", true, "/v1/messages", "application/json", `{"specversion":"1.0","id":"j-1",` + order + `}`, nil},
		{"a parameter in the type", true, "/v1/messages", ce + "; charset=utf-8", `{"specversion":"1.0","id":"c-1",` + order + `}`, nil},
		{"a parameter in the type, in capitals", true, "/v1/messages", batch + "; Charset=UTF-8", `[{"specversion":"1.0","id":"c-2",` + order + `}]`, nil},
		{"a parameter that does not parse", false, "/v1/messages", ce + "; charset", `{"specversion":"1.0","id":"c-3",` + order + `}`, nil},
		{"a media type that is not accepted, with a parameter", false, "/v1/messages", "text/plain; charset=utf-8", `{"specversion":"1.0","id":"c-4",` + order + `}`, nil},
		{"compressed", false, "/v1/messages", ce, `{"specversion":"1.0","id":"z-1",` + order + `}`, []string{"Content-Encoding", "gzip"}},
		{"a query", false, "/v1/messages?x=1", ce, `{"specversion":"1.0","id":"q-1",` + order + `}`, nil},
		{"binary mode", true, "/v1/messages", "application/json", `{"orderId":"A-1","items":[{"sku":"S-1","qty":2}]}`,
			[]string{"ce-specversion", "1.0", "ce-id", "bin-1", "ce-source", "webshop", "ce-type", "order.created", "ce-time", "2026-11-24T10:00:00Z",
				"ce-subject", "a%20b%25", "ce-myext", "v", "traceparent", tp}},
		{"binary mode, schema violation", false, "/v1/messages", "application/json", `{"orderId":""}`,
			[]string{"ce-specversion", "1.0", "ce-id", "bin-2", "ce-source", "webshop", "ce-type", "order.created"}},
		{"binary mode, bad attribute", false, "/v1/messages", "application/json", `{"orderId":"A-1","items":[{"sku":"S-1","qty":2}]}`,
			[]string{"ce-specversion", "1.0", "ce-id", "bin-3", "ce-source", "webshop", "ce-type", "order.created", "ce-time", "yesterday"}},
		{"binary mode, a parameter in the type", true, "/v1/messages", "application/json; charset=utf-8", `{"orderId":"A-1","items":[{"sku":"S-1","qty":2}]}`,
			[]string{"ce-specversion", "1.0", "ce-id", "bin-4", "ce-source", "webshop", "ce-type", "order.created", "ce-time", "2026-11-24T10:00:00Z"}},
		{"binary mode, not JSON", false, "/v1/messages", "text/plain", `hello`,
			[]string{"ce-specversion", "1.0", "ce-id", "bin-5", "ce-source", "webshop", "ce-type", "order.created"}},
	}
	generated := regexp.MustCompile(`"[0-9A-HJKMNP-TV-Z]{26}"`)
	for _, c := range cases {
		before := ingestFastServed(t, fast)
		var got, want string
		for _, node := range []struct {
			p   *Platform
			out *string
		}{{fast, &got}, {general, &want}} {
			a := do(t, "POST", "http://"+node.p.HTTPAddr()+c.path, c.ctype, c.body, c.headers...)
			var hs []string
			for _, k := range []string{"Content-Type", "Content-Length", "Retry-After", "X-Content-Type-Options"} {
				hs = append(hs, k+": "+a.header.Get(k))
			}
			*node.out = fmt.Sprintf("%d\n%s\n%s", a.status, strings.Join(hs, "\n"), generated.ReplaceAllString(a.raw, `"<id>"`))
		}
		if got != want {
			t.Errorf("%s: the fast path answered\n%s\nthe general path\n%s", c.name, got, want)
		}
		if served := ingestFastServed(t, fast) - before; served != map[bool]int{true: 1}[c.fast] {
			t.Errorf("%s: the fast path served %d requests, want it to serve it: %v", c.name, served, c.fast)
		}
	}
	if n := ingestFastServed(t, general); n != 0 {
		t.Errorf("with the fast lane off the fast path served %d requests", n)
	}
	// What was stored is the same on both nodes.
	for _, id := range []string{"p-1", "p-trace", "b-1", "b-2", "j-1", "bin-1", "c-1", "c-2", "bin-4"} {
		var got, want string
		for _, node := range []struct {
			p   *Platform
			out *string
		}{{fast, &got}, {general, &want}} {
			*node.out = storedMessage(t, node.p, id)
		}
		if got != want {
			t.Errorf("%s: stored by the fast path as\n%s\nby the general path as\n%s", id, got, want)
		}
		if id == "p-trace" || id == "bin-1" || strings.HasPrefix(id, "b-") {
			if !strings.Contains(got, tp) {
				t.Errorf("%s: stored without the request's trace context: %s", id, got)
			}
		}
	}
}

// ingestFastServed is how many requests a node's ingestion fast path served.
func ingestFastServed(t *testing.T, p *Platform) int {
	a := do(t, "GET", "http://"+p.AdminAddr()+"/metrics", "", "")
	m := regexp.MustCompile(`(?m)^causeway_ingest_fast_requests_total (\d+)$`).FindStringSubmatch(a.raw)
	if m == nil {
		t.Fatal("no causeway_ingest_fast_requests_total in /metrics")
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

// storedMessage is the message a node stored under id, as GET /v1/messages/{id} shows it,
// its attributes in order; it waits for the tracking index to have it.
func storedMessage(t *testing.T, p *Platform, id string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := do(t, "GET", "http://"+p.AdminAddr()+"/v1/messages/"+id, "", "")
		if a.status == 200 {
			msg, _ := a.body["message"].(map[string]any)
			delete(msg, "node")
			var out []string
			for k, v := range msg {
				b, _ := json.Marshal(v)
				out = append(out, k+"="+string(b))
			}
			sort.Strings(out)
			return strings.Join(out, " ")
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %s", id, a.status, a.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
