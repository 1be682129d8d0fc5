package e2e

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/gateway"
)

// TestKeyRevokedAtOnceOnEveryNode revokes a key through the CLI against one node of two
// sharing a bus: both refuse it at once (the other within a moment), a node started later
// refuses it too, the consumer's other key keeps working, the audit trail has it, and
// reinstating it lets it in again.
func TestKeyRevokedAtOnceOnEveryNode(t *testing.T) {
	be := startBackend(t)
	leaked, leakedHash, _ := gateway.NewKey()
	spare, spareHash, _ := gateway.NewKey()
	cfg := writeConfig(t, map[string]string{"defs.yaml": `apiVersion: causeway/v1
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
  keys:
    - {name: 2026-05, sha256: ` + leakedHash + `}
    - {name: 2026-11, sha256: ` + spareHash + `}
---
apiVersion: causeway/v1
kind: API
metadata: {name: shop}
spec:
  basePath: /api/shop
  policies: {auth: {apiKey: {}}}
  routes:
    - match: GET /items/{id}
      proxy: {call: store.getItem, with: {id: "${{ .path.id }}"}}
`})
	a := startNode(t, cfg, t.TempDir())
	b := startNode(t, cfg, t.TempDir(), "--nats", "nats://"+a.nats, "--node", "e2e-b")
	get := func(n *node, key string) (int, string) {
		resp, body := call(t, "GET", "http://"+n.http+"/api/shop/items/1", map[string]string{"X-Api-Key": key}, "")
		return resp.StatusCode, body
	}
	for _, n := range []*node{a, b} {
		if s, body := get(n, leaked); s != http.StatusOK {
			t.Fatalf("before the revocation: %d %s", s, body)
		}
	}
	cli := func(args ...string) (string, error) {
		out, err := exec.Command(binary, append(args, "--admin", "http://"+a.admin)...).CombinedOutput()
		return string(out), err
	}

	// Refused without a reason, or for a key the definitions do not have.
	if out, err := cli("consumers", "revoke", "app", "2026-05"); err == nil || !strings.Contains(out, "reason") {
		t.Fatalf("revoke without a reason: %v %s", err, out)
	}
	if out, err := cli("consumers", "revoke", "app", "nope", "--reason", "x"); err == nil || !strings.Contains(out, `no key "nope"`) {
		t.Fatalf("revoke of an unknown key: %v %s", err, out)
	}
	// A body the API does not know is refused, and revokes nothing.
	for _, body := range []string{`{"why":"leak"}`, `{"reason":`} {
		resp, answer := call(t, "PUT", "http://"+a.admin+"/v1/consumers/app/keys/2026-05/revocation", map[string]string{"Content-Type": "application/json"}, body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(answer, "bad-body") || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("revocation with body %s: %d %s", body, resp.StatusCode, answer)
		}
	}
	if s, _ := get(a, leaked); s != http.StatusOK {
		t.Fatalf("a refused revocation revoked the key: %d", s)
	}
	revoked := time.Now()
	if out, err := cli("consumers", "revoke", "app", "2026-05", "--reason", "posted in a public repository", "--actor", "alice"); err != nil {
		t.Fatalf("revoke: %v %s", err, out)
	}
	// The node that took it refuses the key at once; the other as soon as it has heard.
	if s, body := get(a, leaked); s != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
		t.Fatalf("node a right after the revocation: %d %s", s, body)
	}
	waitFor(t, 5*time.Second, func() bool { s, _ := get(b, leaked); return s == http.StatusUnauthorized }, "node b to refuse the revoked key")
	t.Logf("node b refused the key %v after the revoke command returned", time.Since(revoked).Round(time.Millisecond))
	if s, _ := get(b, spare); s != http.StatusOK {
		t.Fatalf("the consumer's other key: %d", s)
	}
	if resp, _ := call(t, "GET", "http://"+b.http+"/v1/usage", map[string]string{"X-Api-Key": leaked}, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/v1/usage with the revoked key: %d", resp.StatusCode)
	}

	// A node started later refuses it too.
	b.kill()
	c := startNode(t, cfg, t.TempDir(), "--nats", "nats://"+a.nats, "--node", "e2e-c")
	if s, _ := get(c, leaked); s != http.StatusUnauthorized {
		t.Fatalf("a node started after the revocation: %d", s)
	}
	out, err := cli("consumers", "revocations")
	if err != nil || !strings.Contains(out, "app") || !strings.Contains(out, "2026-05") || !strings.Contains(out, "alice") || !strings.Contains(out, "posted in a public repository") {
		t.Fatalf("revocations: %v\n%s", err, out)
	}
	_, audit, _ := getJSON("http://" + a.admin + "/v1/audit")
	raw, _ := json.Marshal(audit)
	if !strings.Contains(string(raw), `"action":"consumer.key.revoke"`) || !strings.Contains(string(raw), "consumers/app/keys/2026-05") {
		t.Fatalf("audit trail: %s", raw)
	}
	if s, _ := get(c, leaked); s != http.StatusUnauthorized {
		t.Fatal("still refused")
	}

	// Reinstated, the key works again everywhere.
	if out, err := cli("consumers", "reinstate", "app", "2026-05", "--reason", "false alarm"); err != nil {
		t.Fatalf("reinstate: %v %s", err, out)
	}
	waitFor(t, 5*time.Second, func() bool { s, _ := get(c, leaked); return s == http.StatusOK }, "node c to take the reinstated key")
	if s, _ := get(a, leaked); s != http.StatusOK {
		t.Fatalf("node a after reinstating: %d", s)
	}
	if out, err := cli("consumers", "reinstate", "app", "2026-05"); err == nil || !strings.Contains(out, "not revoked") {
		t.Fatalf("reinstating a key that is not revoked: %v %s", err, out)
	}
}
