package platform

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/bus"
)

const hookSecret = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy0xMjM0NTY3ODk="

const hookDefs = `apiVersion: causeway/v1
kind: Source
metadata: {name: shop-orders}
spec:
  system: webshop
  webhook:
    path: /hooks/shop/orders
    maxBodyBytes: 2048
    signature: {scheme: standard, secret: "${secret:SHOP_HOOK}"}
  emit:
    type: order.created
    subject: order/${{ .body.order.id }}
    data:
      orderId: ${{ .body.order.id }}
      items: ${{ [.body.order.lines[] | {sku, qty}] }}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: gh}
spec:
  system: webshop
  webhook:
    path: /hooks/github
    signature: {scheme: github, secret: "${secret:GH_HOOK}"}
  emit:
    type: order.created
    data: {orderId: "${{ .body.ref }}", items: [{sku: gh, qty: 1}]}
`

// standardSign signs a body the Standard Webhooks way.
func standardSign(id string, ts time.Time, body string) string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(hookSecret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestWebhooks(t *testing.T) {
	t.Setenv("CAUSEWAY_SECRET_SHOP_HOOK", hookSecret)
	t.Setenv("CAUSEWAY_SECRET_GH_HOOK", "gh-secret")
	p := runPlatform(t, func(o *Options) {
		if err := os.WriteFile(filepath.Join(o.ConfigDir, "sources.yaml"), []byte(hookDefs), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	url := "http://" + p.HTTPAddr() + "/hooks/shop/orders"
	good := `{"order":{"id":"W-1","lines":[{"sku":"S","qty":2,"price":3}]}}`
	post := func(body, id string, ts time.Time, sig string) answer {
		if sig == "" {
			sig = standardSign(id, ts, body)
		}
		return do(t, "POST", url, "application/json", body,
			"webhook-id", id, "webhook-timestamp", strconv.FormatInt(ts.Unix(), 10), "webhook-signature", "v1,bm90LWl0 "+sig)
	}
	before := streamMessages(t, p)

	// Refusals publish nothing.
	for name, a := range map[string]answer{
		"wrong signature": post(good, "msg_1", time.Now(), "v1,"+base64.StdEncoding.EncodeToString([]byte("forged-signature-forged-signature!!"))),
		"stale":           post(good, "msg_1", time.Now().Add(-10*time.Minute), ""),
		"not signed":      do(t, "POST", url, "application/json", good),
		"oversized":       post(`{"pad":"`+strings.Repeat("x", 3000)+`"}`, "msg_2", time.Now(), ""),
		"malformed":       post(`{"order":`, "msg_3", time.Now(), ""),
	} {
		want := map[string]int{"wrong signature": 401, "stale": 401, "not signed": 401, "oversized": 413, "malformed": 400}[name]
		if a.status != want || a.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d", name, a.status, a.raw, want)
		}
	}
	if n := streamMessages(t, p); n != before {
		t.Errorf("refused calls stored %d messages", n-before)
	}

	// A good call is stored with the delivery id as message id; sent again, stored once.
	for range 2 {
		a := post(good, "msg_ok", time.Now(), "")
		if a.status != 202 || a.body["id"] != "msg_ok" {
			t.Fatalf("good call: %d %s", a.status, a.raw)
		}
	}
	if n := streamMessages(t, p); n != before+1 {
		t.Errorf("stream holds %d new messages, want 1", n-before)
	}
	msg := waitMessage(t, p, "msg_ok")
	m := msg["message"].(map[string]any)
	if m["subject"] != "order/W-1" || m["source"] != "webshop" {
		t.Errorf("stored message %v", m)
	}
	if items := m["data"].(map[string]any)["items"].([]any); len(items) != 1 || items[0].(map[string]any)["price"] != nil {
		t.Errorf("mapped data %v", m["data"])
	}

	// An event the mapping cannot turn into a valid message goes to the ERRORS stream.
	bad := `{"order":{"id":"W-2","lines":[]}}` // the schema needs at least one item
	a := post(bad, "msg_bad", time.Now(), "")
	if a.status != 202 || a.body["error"] == nil || !strings.Contains(a.raw, "does not match order.created") {
		t.Fatalf("unmappable: %d %s", a.status, a.raw)
	}
	s, err := p.Bus().Stream(context.Background(), bus.StreamErrors)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(context.Background(), bus.SubjectErrors+"source.shop-orders")
	if err != nil || !strings.Contains(string(raw.Data), `"body":"{\"order\":{\"id\":\"W-2\"`) || strings.Contains(string(raw.Data), "v1,") {
		t.Errorf("errors entry: %v %s", err, raw.Data)
	}

	// GitHub's scheme.
	ghBody := `{"ref":"refs/heads/main"}`
	mac := hmac.New(sha256.New, []byte("gh-secret"))
	mac.Write([]byte(ghBody))
	gh := do(t, "POST", "http://"+p.HTTPAddr()+"/hooks/github", "application/json", ghBody,
		"X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)), "X-GitHub-Delivery", "gh-1")
	if gh.status != 202 || gh.body["id"] != "gh-1" {
		t.Errorf("github: %d %s", gh.status, gh.raw)
	}
	if a := do(t, "POST", "http://"+p.HTTPAddr()+"/hooks/github", "application/json", ghBody, "X-Hub-Signature-256", "sha256=00"); a.status != http.StatusUnauthorized {
		t.Errorf("github, wrong signature: %d", a.status)
	}
}
