package platform

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/kinds"
)

const testTypes = `apiVersion: causeway/v1
kind: MessageType
metadata:
  name: order.created
  description: An order was placed
spec:
  schema:
    type: object
    required: [orderId, items]
    properties:
      orderId: {type: string, minLength: 1}
      items:
        type: array
        minItems: 1
        items:
          type: object
          required: [sku, qty]
          properties:
            sku: {type: string}
            qty: {type: integer, minimum: 1}
---
apiVersion: causeway/v1
kind: System
metadata:
  name: webshop
  description: The web shop
spec: {}
`

// runPlatform starts a node in this process on temporary directories and random loopback
// ports, and stops it when the test ends.
func runPlatform(t *testing.T, mutate ...func(*Options)) *Platform {
	t.Helper()
	cfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg, "types.yaml"), []byte(testTypes), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{
		ConfigDir: cfg, DataDir: t.TempDir(), Registry: kinds.Default(),
		HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Node: "test",
		Sync: bus.Sync{Interval: time.Second}, MaxMessageBytes: 4096, MaxBatchBytes: 64 << 10,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, m := range mutate {
		m(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := New(ctx, o)
	if err != nil {
		t.Fatalf("start platform: %v", err)
	}
	p.Start()
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, method, url, contentType, body string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

const goodOrder = `{"specversion":"1.0","source":"webshop","type":"order.created","data":{"orderId":"A-1","items":[{"sku":"S-1","qty":2}]}}`

// TestIngestAnswers runs under both engines of the http listener: every answer, error and
// limit is the handlers' own whichever serves them.
func TestIngestAnswers(t *testing.T) {
	for _, engine := range []string{EngineLean, EngineStandard} {
		t.Run(engine, func(t *testing.T) { testIngestAnswers(t, engine) })
	}
}

func testIngestAnswers(t *testing.T, engine string) {
	p := runPlatform(t, func(o *Options) { o.HTTPServer = engine })
	url := "http://" + p.HTTPAddr() + "/v1/messages"
	big := `{"source":"webshop","type":"order.created","data":{"orderId":"` + strings.Repeat("x", 5000) + `","items":[{"sku":"S","qty":1}]}}`
	cases := []struct {
		name, contentType, body string
		headers                 []string
		status                  int
		problemType             string
		pointer                 string // an errors[].pointer the answer must include
		detail                  string // a substring of detail
	}{
		{name: "structured", contentType: "application/cloudevents+json", body: goodOrder, status: 202},
		{name: "plain json", contentType: "application/json; charset=utf-8", body: goodOrder, status: 202},
		{name: "malformed", contentType: "application/cloudevents+json", body: `{"source":`, status: 400, problemType: "malformed-json", detail: "malformed JSON"},
		{name: "array as single", contentType: "application/cloudevents+json", body: `[1]`, status: 400, problemType: "malformed-json", detail: "JSON object"},
		{name: "wrong media type", contentType: "text/plain", body: goodOrder, status: 415, problemType: "unsupported-media-type", detail: "text/plain"},
		{name: "no media type", contentType: "", body: goodOrder, status: 415, problemType: "unsupported-media-type"},
		{name: "compressed", contentType: "application/cloudevents+json", body: goodOrder, headers: []string{"Content-Encoding", "gzip"}, status: 415, problemType: "unsupported-media-type", detail: "gzip"},
		{name: "too large", contentType: "application/cloudevents+json", body: big, status: 413, problemType: "too-large", detail: "--max-message-bytes"},
		{name: "missing source", contentType: "application/cloudevents+json", body: `{"type":"order.created","data":{"orderId":"A","items":[{"sku":"S","qty":1}]}}`, status: 422, problemType: "invalid-message", pointer: "/source"},
		{name: "unknown type", contentType: "application/cloudevents+json", body: `{"source":"s","type":"order.deleted","data":{}}`, status: 422, problemType: "invalid-message", pointer: "/type", detail: "order.created"},
		{name: "schema violation", contentType: "application/cloudevents+json", body: `{"source":"s","type":"order.created","data":{"orderId":"A","items":[{"sku":"S","qty":0}]}}`, status: 422, problemType: "invalid-message", pointer: "/data/items/0/qty"},
		{name: "missing data member", contentType: "application/cloudevents+json", body: `{"source":"s","type":"order.created","data":{"items":[{"sku":"S","qty":1}]}}`, status: 422, pointer: "/data", detail: "orderId"},
		{name: "bad attribute", contentType: "application/cloudevents+json", body: `{"source":"s","type":"order.created","time":"yesterday","data":{"orderId":"A","items":[{"sku":"S","qty":1}]}}`, status: 422, pointer: "/time"},
		{name: "binary mode", contentType: "application/json", body: `{"orderId":"A","items":[{"sku":"S","qty":1}]}`, headers: []string{"ce-specversion", "1.0", "ce-id", "bin-1", "ce-source", "webshop", "ce-type", "order.created"}, status: 202},
		{name: "binary mode, not JSON", contentType: "text/plain", body: `hello`, headers: []string{"ce-specversion", "1.0", "ce-source", "webshop", "ce-type", "order.created"}, status: 415, problemType: "unsupported-media-type"},
		{name: "binary mode, schema violation", contentType: "application/json", body: `{"orderId":""}`, headers: []string{"ce-specversion", "1.0", "ce-source", "webshop", "ce-type", "order.created"}, status: 422, pointer: "/data/orderId"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, "POST", url, c.contentType, c.body, c.headers...)
			if a.status != c.status {
				t.Fatalf("status %d, want %d: %s", a.status, c.status, a.raw)
			}
			if c.status == 202 {
				ids, _ := a.body["ids"].([]any)
				if len(ids) != 1 || ids[0] == "" {
					t.Fatalf("202 without one id: %s", a.raw)
				}
				return
			}
			if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q, want application/problem+json", ct)
			}
			if c.problemType != "" && a.body["type"] != "urn:causeway:problem:"+c.problemType {
				t.Errorf("problem type %v, want %s", a.body["type"], c.problemType)
			}
			if c.detail != "" && !strings.Contains(a.raw, c.detail) {
				t.Errorf("answer does not mention %q: %s", c.detail, a.raw)
			}
			if c.pointer != "" {
				found := false
				errs, _ := a.body["errors"].([]any)
				for _, e := range errs {
					if ptr, _ := e.(map[string]any)["pointer"].(string); strings.HasPrefix(ptr, c.pointer) {
						found = true
					}
				}
				if !found {
					t.Errorf("no error with pointer %s: %s", c.pointer, a.raw)
				}
			}
		})
	}
}

func TestBatchIsAllOrNothing(t *testing.T) {
	p := runPlatform(t)
	url := "http://" + p.HTTPAddr() + "/v1/messages"
	bad := `[` + goodOrder + `,{"source":"s","type":"order.created","data":{"orderId":"B","items":[]}},{"type":"order.created"}]`
	a := do(t, "POST", url, "application/cloudevents-batch+json", bad)
	if a.status != 422 {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	for _, want := range []string{`"/1/data/items"`, `"/2/source"`} {
		if !strings.Contains(a.raw, want) {
			t.Errorf("batch errors lack %s: %s", want, a.raw)
		}
	}
	if n := streamMessages(t, p); n != 0 {
		t.Fatalf("a refused batch stored %d messages", n)
	}
	good := `[` + goodOrder + `,` + goodOrder + `,` + goodOrder + `]`
	a = do(t, "POST", url, "application/cloudevents-batch+json", good)
	if a.status != 202 || len(a.body["ids"].([]any)) != 3 {
		t.Fatalf("good batch: %d %s", a.status, a.raw)
	}
	if n := streamMessages(t, p); n != 3 {
		t.Fatalf("stream holds %d, want 3", n)
	}
	a = do(t, "POST", url, "application/cloudevents-batch+json", `[]`)
	if a.status != 422 {
		t.Fatalf("empty batch: %d %s", a.status, a.raw)
	}
}

func streamMessages(t *testing.T, p *Platform) uint64 {
	t.Helper()
	s, err := p.Bus().Stream(context.Background(), bus.StreamMessages)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestResentIDIsStoredOnceAndLookedUp(t *testing.T) {
	p := runPlatform(t)
	url := "http://" + p.HTTPAddr() + "/v1/messages"
	msg := `{"id":"order-A-1","source":"webshop","type":"order.created","subject":"A-1","data":{"orderId":"A-1","items":[{"sku":"S-1","qty":2}]}}`
	for range 3 {
		a := do(t, "POST", url, "application/cloudevents+json", msg)
		if a.status != 202 || a.body["ids"].([]any)[0] != "order-A-1" {
			t.Fatalf("%d %s", a.status, a.raw)
		}
	}
	if n := streamMessages(t, p); n != 1 {
		t.Fatalf("a message sent 3 times is stored %d times", n)
	}
	admin := "http://" + p.AdminAddr()
	var a answer
	deadline := time.Now().Add(10 * time.Second)
	for {
		a = do(t, "GET", admin+"/v1/messages/order-A-1", "", "")
		if a.status == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a.status != 200 {
		t.Fatalf("lookup: %d %s", a.status, a.raw)
	}
	m := a.body["message"].(map[string]any)
	if m["id"] != "order-A-1" || m["correlationid"] != "order-A-1" || m["kind"] != "original" || m["subject"] != "A-1" || m["time"] == nil {
		t.Errorf("stored message lacks its defaults: %v", m)
	}
	if data := m["data"].(map[string]any); data["orderId"] != "A-1" {
		t.Errorf("data: %v", data)
	}
	tl := a.body["timeline"].([]any)
	if len(tl) != 1 || tl[0].(map[string]any)["event"] != "accepted" || tl[0].(map[string]any)["node"] != "test" {
		t.Errorf("timeline: %v", tl)
	}
	nf := do(t, "GET", admin+"/v1/messages/nope", "", "")
	if nf.status != 404 || nf.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown id: %d %s", nf.status, nf.raw)
	}
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	p := runPlatform(t)
	for _, base := range []string{"http://" + p.HTTPAddr(), "http://" + p.AdminAddr()} {
		for _, path := range []string{"/healthz", "/readyz"} {
			if a := do(t, "GET", base+path, "", ""); a.status != 200 {
				t.Errorf("%s%s: %d %s", base, path, a.status, a.raw)
			}
		}
	}
	url := "http://" + p.HTTPAddr() + "/v1/messages"
	do(t, "POST", url, "application/cloudevents+json", `{"id":"metrics-1","source":"webshop","type":"order.created","data":{"orderId":"A-1","items":[{"sku":"S","qty":1}]}}`)
	waitMessage(t, p, "metrics-1") // indexed, so the index metrics have moved
	do(t, "POST", url, "application/cloudevents+json", `{"source":"s"}`)
	do(t, "POST", url, "text/csv", `a,b`)
	wants := []string{
		`causeway_ingest_messages_total{reason="",result="accepted",type="order.created"} 1`,
		`causeway_ingest_messages_total{reason="invalid",result="rejected",type=""} 1`,
		`causeway_ingest_messages_total{reason="unsupported-media-type",result="rejected",type=""} 1`,
		`causeway_ingest_request_duration_seconds_count{mode="structured"} 1`,
		`causeway_bus_publish_duration_seconds_count{stream="MESSAGES"} 1`,
		`causeway_stream_messages{stream="MESSAGES"} 1`,
		`causeway_tracking_indexed_total{stream="MESSAGES"} 1`,
		`causeway_tracking_index_lag{stream="MESSAGES"} 0`,
		`causeway_tracking_index_transaction_entries_sum{stream="MESSAGES"} 1`,
		`causeway_tracking_index_transaction_seconds_count{stream="MESSAGES"} 1`,
	}
	// The index metrics move a moment after the lookup succeeds; poll with a deadline.
	var missing []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		m := do(t, "GET", "http://"+p.AdminAddr()+"/metrics", "", "")
		missing = missing[:0]
		for _, want := range wants {
			if !strings.Contains(m.raw, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range missing {
		t.Errorf("metrics lack %s", want)
	}
	if a := do(t, "GET", "http://"+p.HTTPAddr()+"/nowhere", "", ""); a.status != 404 || a.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown route: %d %s", a.status, a.raw)
	}
	if a := do(t, "GET", "http://"+p.HTTPAddr()+"/metrics", "", ""); a.status != 404 {
		t.Errorf("metrics must not be on the public listener: %d", a.status)
	}
}

// TestUnknownHTTPServerEngine refuses to start with an engine it does not know.
func TestUnknownHTTPServerEngine(t *testing.T) {
	_, err := New(context.Background(), Options{ConfigDir: "../examples/quickstart", DataDir: t.TempDir(), Registry: kinds.Default(), HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", HTTPServer: "turbo"})
	if err == nil || !strings.Contains(err.Error(), `--http-server "turbo"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestBadDefinitionsStopTheStart(t *testing.T) {
	cfg := t.TempDir()
	os.WriteFile(filepath.Join(cfg, "bad.yaml"), []byte("apiVersion: causeway/v1\nkind: MessageType\nmetadata:\n  name: x\nspec:\n  shema: {}\n"), 0o644)
	data := t.TempDir()
	_, err := New(context.Background(), Options{ConfigDir: cfg, DataDir: data, Registry: kinds.Default(), HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s:6:3", filepath.Join(cfg, "bad.yaml"))) {
		t.Fatalf("want a positioned definition error, got %v", err)
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Fatalf("a failed start left files in the data directory: %v", entries)
	}
}

// TestBusDownAnswers503WithIDs cuts the node's bus connection: ingestion must say 503 with
// the ids (so the client can resend without duplicates), and readiness must drop.
func TestBusDownAnswers503WithIDs(t *testing.T) {
	p := runPlatform(t)
	p.Bus().Conn().Close()
	a := do(t, "POST", "http://"+p.HTTPAddr()+"/v1/messages", "application/cloudevents+json",
		`{"id":"down-1","source":"webshop","type":"order.created","data":{"orderId":"A-1","items":[{"sku":"S","qty":1}]}}`)
	if a.status != 503 || a.body["type"] != "urn:causeway:problem:bus-unavailable" || a.header.Get("Retry-After") == "" {
		t.Fatalf("bus down: %d %s", a.status, a.raw)
	}
	if ids, _ := a.body["ids"].([]any); len(ids) != 1 || ids[0] != "down-1" {
		t.Fatalf("503 must list the ids: %s", a.raw)
	}
	if r := do(t, "GET", "http://"+p.HTTPAddr()+"/readyz", "", ""); r.status != 503 {
		t.Fatalf("readyz with the bus down: %d", r.status)
	}
}

// TestManyLargeBatchesAtOnce sends more messages at once than the bus client keeps in flight
// (eight batches of 1,000 with fsync always): ingestion must wait for room, not fail.
func TestManyLargeBatchesAtOnce(t *testing.T) {
	p := runPlatform(t, func(o *Options) { o.Sync = bus.Sync{Always: true}; o.MaxBatchBytes = 10 << 20 })
	url := "http://" + p.HTTPAddr() + "/v1/messages"
	var b strings.Builder
	b.WriteString("[")
	for i := range 1000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"source":"s","type":"order.created","data":{"orderId":"A","items":[{"sku":"S","qty":1}]}}`)
	}
	b.WriteString("]")
	body := b.String()
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			resp, err := http.Post(url, "application/cloudevents-batch+json", strings.NewReader(body))
			if err != nil {
				errs <- err.Error()
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 202 {
				errs <- fmt.Sprintf("%d %s", resp.StatusCode, raw)
				return
			}
			errs <- ""
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Fatalf("batch refused: %s", e)
		}
	}
	if n := streamMessages(t, p); n != 8000 {
		t.Fatalf("stream holds %d, want 8000", n)
	}
}
