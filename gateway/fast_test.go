package gateway

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/catalog"
	"github.com/causeway/causeway/config"
	httpconn "github.com/causeway/causeway/connector/http"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/system"
)

// laneRoutes are routes with and without a fast lane; each route's description says which
// it should be: "lane", or a part of the reason it has none.
const laneRoutes = `apiVersion: causeway/v1
kind: System
metadata: {name: inv}
spec:
  http: {baseURL: "http://127.0.0.1:1/inv"}
  operations:
    item: {http: {method: GET, path: "/items/{sku}"}}
    pair: {http: {method: GET, path: "/a/{x}/b/{y}"}}
    queried: {http: {method: GET, path: "/items", query: {all: "true"}}}
---
apiVersion: causeway/v1
kind: System
metadata: {name: moved}
spec:
  http: {baseURL: "http://127.0.0.1:1/moved", followRedirects: true}
  operations:
    item: {http: {method: GET, path: "/items/{sku}"}}
---
apiVersion: causeway/v1
kind: API
metadata: {name: inv}
spec:
  basePath: /inv
  policies: {auth: {none: true}}
  routes:
    - {match: "GET /a/{sku}", description: lane, proxy: {call: inv.item}}
    - {match: "GET /b/{sku}", description: lane, proxy: {call: inv.item, with: {sku: "${{ .path.sku }}"}}}
    - {match: "GET /c/{p}/{q}", description: lane, proxy: {call: inv.pair, with: {x: "${{ .path.q }}", y: "${{ .path.p }}"}}}
    - {match: "GET /d/{q}", description: lane, proxy: {call: inv.pair, with: {x: fixed, y: "${{ .path.q }}"}}}
    - {match: "DELETE /e/{sku}", description: lane, proxy: {call: inv.item, with: {sku: "${{ .path.sku }}"}, response: {body: '{gone: true}'}}}
    - {match: "POST /f/{sku}", description: lane, proxy: {call: inv.item}}
    - {match: "GET /g/{id}", description: is not given, proxy: {call: inv.item}}
    - {match: "GET /h/{sku}", description: not a parameter, proxy: {call: inv.item, with: {sku: "${{ .path.sku }}", extra: "1"}}}
    - {match: "GET /i/{sku}", description: more than the path, proxy: {call: inv.item, with: {sku: "${{ .query.sku }}"}}}
    - {match: "GET /j/{sku}", description: not one expression, proxy: {call: inv.item, with: {sku: "s-${{ .path.sku }}"}}}
    - {match: "GET /k/{sku}", description: more than the path, proxy: {call: inv.item, with: {sku: "${{ .path.sku | ascii_downcase }}"}}}
    - {match: "GET /l/{sku}", description: not a string, proxy: {call: inv.item, with: {sku: 5}}}
    - {match: "GET /m", description: query of its own, proxy: {call: inv.queried}}
    - {match: "GET /n/{sku}", description: redirects, proxy: {call: moved.item}}
    - {match: "GET /o/{sku}", description: lane, proxy: {call: inv.item}, policies: {cors: {origins: ["*"]}}}
    - {match: "GET /p/{sku}", description: lane, proxy: {call: inv.item}, policies: {quota: {requests: 10, per: day}}}
    - {match: "GET /pv/{sku}", description: lane, proxy: {call: inv.item}, policies: {validate: {maxDepth: 4}}}
    - {match: "GET /pc/{sku}", description: lane, proxy: {call: inv.item}, policies: {cache: {ttl: 10s}}}
    - {match: "GET /q/{sku}", description: not a proxy route, flow: {name: quote}}
    - {match: "GET /r/{sku}", description: lane, proxy: {call: inv.item}, policies: {rateLimit: {requests: 5, per: 1s}}}
    - {match: "GET /s/{sku}", description: lane, proxy: {call: inv.item}, policies: {headers: {forward: [X-Request-Id]}}}
    - {match: "GET /u/{sku}", description: forwards Cookie, proxy: {call: inv.item}, policies: {headers: {forward: [X-Request-Id], forwardCredentials: true}}}
    - {match: "GET /v/{sku}", description: lane, proxy: {call: inv.item}, policies: {ip: {allow: [127.0.0.0/8]}}}
    - {match: "GET /w/{sku}", description: lane, proxy: {call: inv.item}, policies: {ip: {trustedProxies: [10.0.0.0/8]}}}
    - {match: "GET /t/{sku}", description: is not given, proxy: {call: inv.pair, with: {x: "${{ .path.sku }}"}}}
    - {match: "GET /x/{sku}", description: lane, proxy: {call: inv.item}, policies: {auth: {jwt: {issuer: i, audiences: [a], jwksURL: "http://127.0.0.1:1/jwks"}}, scopes: ["inv:read"]}}
    - {match: "GET /y/{sku}", description: without the token cache, proxy: {call: inv.item}, policies: {auth: {jwt: {issuer: i, audiences: [a], jwksURL: "http://127.0.0.1:1/jwks", cacheSize: 0}}}}
    - {match: "GET /z/{sku}", description: in the query only, proxy: {call: inv.item}, policies: {auth: {apiKey: {header: "", query: key}}}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: quote}
spec:
  trigger: {invoke: {timeout: 5s}}
  steps:
    - {id: answer, reply: {status: 200, body: {ok: true}}}
`

// TestPlanLane checks which routes get a fast lane, and that the others say why not.
func TestPlanLane(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "defs.yaml"), []byte(laneRoutes), 0o644); err != nil {
		t.Fatal(err)
	}
	r := config.NewRegistry()
	for _, reg := range []func(*config.Registry) error{system.Register, Register, RegisterConsumer, flow.Register, catalog.Register} {
		if err := reg(r); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(dir, config.Options{Registry: r})
	if err != nil {
		t.Fatal(err)
	}
	conns := httpconn.New(nil)
	defer conns.Close()
	g, err := New(Options{Config: cfg, Prepare: conns.Prepare, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a := g.apis[0]
	for _, rt := range a.spec.Routes {
		l, why := a.planLane(rt)
		switch want := rt.Description; {
		case want == "lane" && l == nil:
			t.Errorf("%s: no lane: %s", rt.Match, why)
		case want == "lane" && a.lanes[rt] == nil:
			t.Errorf("%s: planned but not kept", rt.Match)
		case want != "lane" && l != nil:
			t.Errorf("%s: has a lane, want none (%s)", rt.Match, want)
		case want != "lane" && !strings.Contains(why, want):
			t.Errorf("%s: no lane because %q, want it to say %q", rt.Match, why, want)
		}
	}
	if g.lanes != 15 {
		t.Errorf("%d lanes, want 15", g.lanes)
	}
	// A webhook under the API's base path takes POST requests there: the POST route goes
	// the general way, where the ServeMux tells them apart.
	g, err = New(Options{Config: cfg, Prepare: conns.Prepare, Webhooks: []string{"/inv/hooks/stock"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range g.apis[0].spec.Routes {
		if rt.method == "POST" && g.apis[0].lanes[rt] != nil {
			t.Errorf("%s has a lane while a webhook shares the API's paths", rt.Match)
		}
	}
	if g.lanes != 14 {
		t.Errorf("with a webhook: %d lanes, want 14", g.lanes)
	}
}

// TestPlainPath checks which request paths the fast lane takes as they are.
func TestPlainPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/inv/items/A-1":     true,
		"/inv/items/a.b~c:d": true,
		"/inv/u@h":           true,
		"/inv/items/%41":     false,
		"/inv/items/a b":     false,
		"/inv/items/a+b":     false,
		"/inv/items/a\\b":    false,
		"inv/items":          false,
		"":                   false,
		"/inv/items/é":       false,
	} {
		if got := plainPath([]byte(p)); got != want {
			t.Errorf("plainPath(%q) = %v, want %v", p, got, want)
		}
	}
}

// FuzzLaneSegments checks that wherever the fast lane splits a path itself, the general
// path splits it into the same segments.
func FuzzLaneSegments(f *testing.F) {
	f.Add("/items/A-1")
	f.Fuzz(func(t *testing.T, rest string) {
		var buf [maxLaneSegments][]byte
		segs, ok := laneSegments([]byte(rest), &buf)
		if !ok || !plainPath([]byte(rest)) {
			return
		}
		want, ok := splitPath(rest)
		if !ok {
			t.Fatalf("%q: the lane splits it into %q, the general path refuses it", rest, segs)
		}
		if len(segs) != len(want) {
			t.Fatalf("%q: the lane splits it into %q, the general path into %q", rest, segs, want)
		}
		for i := range segs {
			if string(segs[i]) != want[i] {
				t.Fatalf("%q: the lane splits it into %q, the general path into %q", rest, segs, want)
			}
		}
	})
}

// TestPeerText checks the remembered texts of peer addresses: always the address's own,
// whichever addresses share a slot and in whatever order they come.
func TestPeerText(t *testing.T) {
	var addrs []netip.Addr
	for i := range 300 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	addrs = append(addrs, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"),
		netip.MustParseAddr("fe80::1").WithZone("eth0"), netip.MustParseAddr("fe80::1"))
	for round := range 3 {
		for i, a := range addrs {
			if round == 1 {
				a = addrs[len(addrs)-1-i]
			}
			if got := peerText(a); got != a.String() {
				t.Fatalf("peerText(%v) = %q", a, got)
			}
		}
	}
}

// TestHostText checks the remembered Host: always the request's own.
func TestHostText(t *testing.T) {
	for _, h := range []string{"api.example.com", "api.example.com", "", "other:8080", "api.example.com", ""} {
		b := []byte(h)
		got := hostText(b)
		// The request's buffer is reused after the request: the text must not share it.
		if len(b) > 0 {
			b[0] = '#'
		}
		if got != h {
			t.Fatalf("hostText(%q) = %q", h, got)
		}
	}
}
