package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSendAgainstANode runs `causeway send` in-process against a real node started on the
// quickstart example, from inline data, a file and standard input, and checks a refusal.
func TestSendAgainstANode(t *testing.T) {
	p := runQuickstart(t)
	server := "http://" + p.HTTPAddr()
	order := `{"orderId":"A-1001","customer":{"email":"jane@example.com"},"items":[{"sku":"SKU-1","qty":2}],"total":39.8}`

	out, err := runForTest(t, newSendCmd(), "--type", "order.created", "--source", "webshop", "--data", order, "--server", server)
	if err != nil || len(strings.TrimSpace(out)) != 26 {
		t.Fatalf("inline data: %q %v", out, err)
	}

	file := filepath.Join(t.TempDir(), "order.json")
	os.WriteFile(file, []byte(order), 0o644)
	out, err = runForTest(t, newSendCmd(), "--type", "order.created", "--source", "webshop", "--data", "@"+file, "--id", "fixed-1", "--server", server)
	if err != nil || strings.TrimSpace(out) != "fixed-1" {
		t.Fatalf("data from a file: %q %v", out, err)
	}

	cmd := newSendCmd()
	cmd.SetIn(strings.NewReader(order))
	out, err = runForTest(t, cmd, "--type", "order.created", "--source", "webshop", "--data", "@-", "--server", server)
	if err != nil || len(strings.TrimSpace(out)) != 26 {
		t.Fatalf("data from stdin: %q %v", out, err)
	}

	_, err = runForTest(t, newSendCmd(), "--type", "order.created", "--source", "webshop", "--data", `{"orderId":"A-2","items":[{"sku":"S","qty":0}]}`, "--server", server)
	if err == nil || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "/data/items/0/qty") {
		t.Fatalf("a schema violation must fail with the node's reason, got %v", err)
	}
	_, err = runForTest(t, newSendCmd(), "--type", "order.created", "--source", "webshop", "--data", `{not json`, "--server", server)
	if err == nil || !strings.Contains(err.Error(), "--data") {
		t.Fatalf("bad --data: %v", err)
	}
	_, err = runForTest(t, newSendCmd(), "--source", "webshop", "--server", server)
	if err == nil || !strings.Contains(err.Error(), "type") {
		t.Fatalf("missing --type: %v", err)
	}
}

// TestFlagsFromEnvironment checks that every flag can come from a CAUSEWAY_* variable and
// that the command line wins.
func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("CAUSEWAY_SERVER", "http://127.0.0.1:1")
	t.Setenv("CAUSEWAY_TIMEOUT", "2s")
	_, err := runForTest(t, newSendCmd(), "--type", "t", "--source", "s")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("CAUSEWAY_SERVER not used: %v", err)
	}
	t.Setenv("CAUSEWAY_TIMEOUT", "soon")
	_, err = runForTest(t, newSendCmd(), "--type", "t", "--source", "s")
	if err == nil || !strings.Contains(err.Error(), "CAUSEWAY_TIMEOUT") {
		t.Fatalf("a bad variable must be reported by name: %v", err)
	}
	if envName("max-message-bytes") != "CAUSEWAY_MAX_MESSAGE_BYTES" {
		t.Fatal(envName("max-message-bytes"))
	}
}
