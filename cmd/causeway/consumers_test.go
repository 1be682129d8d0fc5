package main

import (
	"regexp"
	"testing"

	"github.com/causeway/causeway/gateway"
)

func TestConsumersKey(t *testing.T) {
	out, err := runForTest(t, newConsumersCmd(), "key", "--name", "k1")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\n  (cw_\S+)\n.*\{name: k1, sha256: ([0-9a-f]{64})\}`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output:\n%s", out)
	}
	if gateway.HashKey(m[1]) != m[2] {
		t.Errorf("the printed hash is not the key's")
	}
	again, _ := runForTest(t, newConsumersCmd(), "key")
	if regexp.MustCompile(`cw_\S+`).FindString(again) == m[1] {
		t.Errorf("two keys were the same")
	}
}
