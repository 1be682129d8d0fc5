package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDemo runs causeway demo for a few seconds: orders entered in the ERP's database end
// up as notes in the CRM, and customer changes in the CRM as rows in the ERP's database.
func TestDemo(t *testing.T) {
	out, err := runForTest(t, newDemoCmd(), "--for", "5s", "--every", "200ms", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data", t.TempDir())
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`ERP orders (\d+) → CRM notes (\d+)   ·   CRM changes (\d+) → ERP customers in step (\d+)/5\n`).FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("no report in:\n%s", out)
	}
	last := m[len(m)-1]
	n := func(i int) int { v, _ := strconv.Atoi(last[i]); return v }
	if n(1) < 10 || n(2) < n(1)/2 || n(3) < 5 {
		t.Errorf("too little moved: %s", last[0])
	}
	if !strings.Contains(out, "last CRM note: Order ") {
		t.Errorf("no note shown:\n%s", out)
	}
}

// TestValidateDemo checks the demo's definitions, as CI would, without their secret.
func TestValidateDemo(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "demo")
	out, err := runForTest(t, newValidateCmd(), "--skip-secrets", dir)
	if err != nil || !strings.HasPrefix(out, "valid: 8 resources (2 Flow, 2 MessageType, 2 Source, 2 System)") {
		t.Errorf("validate: %v\n%s", err, out)
	}
}
