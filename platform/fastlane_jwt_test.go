package platform

import (
	"crypto/ecdsa"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/testissuer"
	jwtlib "github.com/golang-jwt/jwt/v5"
)

// laneIssuer is the issuer of TestFastLaneTokens.
type laneIssuer struct{ *testissuer.Issuer }

// sign makes a token for sub with the given claims added to valid ones (a nil value
// removes a claim); key signs it, the issuer's own when nil.
func (is laneIssuer) sign(t *testing.T, key *ecdsa.PrivateKey, sub string, kv ...any) string {
	c := jwtlib.MapClaims{"iss": "https://login.test/", "aud": "inv", "sub": sub, "tenant": "acme",
		"scope": "inv:read", "exp": time.Now().Add(time.Hour).Unix()}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	if key == nil {
		key = is.Key
	}
	return testissuer.Sign(t, key, c)
}

// TestFastLaneTokens is TestFastLaneMatchesGeneral for routes with JWT authentication: the
// fast lane serves a token only once the general path has verified it, and only while it
// holds; every refusal is the general path's.
func TestFastLaneTokens(t *testing.T) {
	is := laneIssuer{testissuer.Start(t)}
	defs := func(backend string) string {
		return `apiVersion: causeway/v1
kind: System
metadata: {name: inv}
spec:
  http: {baseURL: "` + backend + `/inv/", timeout: 5s}
  operations:
    item: {http: {method: GET, path: "/items/{sku}"}}
    put: {http: {method: PUT, path: "/items/{sku}"}}
---
apiVersion: causeway/v1
kind: Consumer
metadata: {name: partner}
spec:
  subjects: [partner-app]
  scopes: ["inv:write"]
---
apiVersion: causeway/v1
kind: Consumer
metadata: {name: elsewhere}
spec:
  subjects: [other-app]
  apis: [uncached]
---
apiVersion: causeway/v1
kind: API
metadata: {name: tokens}
spec:
  basePath: /tok
  policies:
    auth: {jwt: {issuer: "https://login.test/", audiences: [inv], jwksURL: "` + is.URL + `", claims: {tenant: acme}}}
    rateLimit: {requests: 100, per: 1m}
  routes:
    - match: GET /items/{sku}
      proxy: {call: inv.item}
    - match: GET /read/{sku}
      policies: {scopes: ["inv:read"]}
      proxy: {call: inv.item, response: {body: '{id: .body.sku}'}}
    - match: GET /write/{sku}
      policies: {scopes: ["inv:write"]}
      proxy: {call: inv.item}
    - match: PUT /items/{sku}
      proxy: {call: inv.put}
---
apiVersion: causeway/v1
kind: API
metadata: {name: uncached}
spec:
  basePath: /unc
  policies:
    auth: {jwt: {issuer: "https://login.test/", audiences: [inv], jwksURL: "` + is.URL + `", cacheSize: 0}}
  routes:
    - match: GET /items/{sku}
      proxy: {call: inv.item}
`
	}
	fast, general := laneNodes(t, defs)
	forger := testissuer.NewKey(t)
	auth := func(token string) []string { return []string{"Authorization", "Bearer " + token} }
	user := is.sign(t, nil, "user-1")
	partner := is.sign(t, nil, "partner-app")
	other := is.sign(t, nil, "other-app")
	globex := is.sign(t, nil, "user-2", "tenant", "globex")
	anonymous := is.sign(t, nil, "", "sub", nil)
	const L, G = true, false
	compareLane(t, fast, general, []laneRequest{
		{G, "GET", "/tok/items/A-1", nil},
		{G, "GET", "/tok/items/A-1", auth("not.a.token")},
		{G, "GET", "/tok/items/A-1", auth(is.sign(t, forger, "user-1"))},
		{G, "GET", "/tok/items/A-1", auth(is.sign(t, nil, "user-1", "exp", time.Now().Add(-time.Hour).Unix()))},
		{G, "GET", "/tok/items/A-1", auth(is.sign(t, nil, "user-1", "aud", "billing"))},
		// A good token: verified on the general path the first time, then on the lane, with
		// the same answers, rate limit headers and backend requests.
		{G, "GET", "/tok/items/A-1", auth(user)},
		{L, "GET", "/tok/items/A-2", auth(user)},
		{L, "GET", "/tok/items/gone", auth(user)},
		{L, "GET", "/tok/items/A-3", []string{"Authorization", "bearer  " + user + " "}},
		{G, "GET", "/tok/items/A-3", []string{"Authorization", "Basic " + user}},
		{L, "GET", "/tok/read/R-1", auth(user)},
		// A body the general path refuses: the token is counted once, there.
		{G, "PUT", "/tok/items/P-1", append([]string{"body", `{"half":`}, auth(user)...)},
		{L, "PUT", "/tok/items/P-2", append([]string{"body", `{"qty": 1}`}, auth(user)...)},
		// Scopes: user has inv:read only; partner is a Consumer that adds inv:write.
		{G, "GET", "/tok/write/W-1", auth(user)},
		{G, "GET", "/tok/write/W-1", auth(user)},
		{G, "GET", "/tok/write/W-2", auth(partner)},
		{L, "GET", "/tok/write/W-3", auth(partner)},
		{L, "GET", "/tok/read/R-2", auth(partner)},
		// Valid tokens the route refuses: another tenant, a Consumer not allowed this API,
		// no caller named. Verified and kept, they are refused each time, by the general path.
		{G, "GET", "/tok/items/B-1", auth(globex)},
		{G, "GET", "/tok/items/B-1", auth(globex)},
		{G, "GET", "/tok/items/B-2", auth(other)},
		{G, "GET", "/tok/items/B-2", auth(other)},
		{G, "GET", "/tok/items/B-3", auth(anonymous)},
		{G, "GET", "/tok/items/B-3", auth(anonymous)},
		// Without the token cache the lane has nothing to go by.
		{G, "GET", "/unc/items/C-1", auth(user)},
		{G, "GET", "/unc/items/C-1", auth(user)},
	})
	fm, gm := laneMetrics(t, fast.admin), laneMetrics(t, general.admin)
	if strings.Join(fm, "\n") != strings.Join(gm, "\n") {
		t.Errorf("metrics with the fast lane:\n%s\nwith the general path:\n%s", strings.Join(fm, "\n"), strings.Join(gm, "\n"))
	}
	// Both nodes checked each token's signature once: the lane counts its hits as the
	// general path does.
	for _, n := range []laneNode{fast, general} {
		m := do(t, "GET", n.admin+"/metrics", "", "").raw
		if !strings.Contains(m, `causeway_gateway_jwt_cache_hits_total{issuer="https://login.test/"} 13`) {
			t.Errorf("%s: cache hits are not 13:\n%s", n.admin, grepLines(m, "causeway_gateway_jwt_"))
		}
	}
}

// grepLines are the lines of text that start with prefix.
func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
