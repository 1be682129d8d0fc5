package fileconn

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/system"
)

// filesSystem loads a system with a files directory, so that its path is resolved.
func filesSystem(t *testing.T, dir string) *system.Spec {
	t.Helper()
	defs := t.TempDir()
	doc := `apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  files: {dir: "` + dir + `"}
  operations:
    order: {file: {path: "orders/${{ .params.id }}.json"}}
    note: {file: {path: "notes/${{ .params.id }}.txt", format: text}}
`
	if err := os.WriteFile(filepath.Join(defs, "erp.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	r := config.NewRegistry()
	if err := system.Register(r); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(defs, config.Options{Registry: r})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := cfg.Get(system.Kind, "erp")
	return res.Spec.(*system.Spec)
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	sys := filesSystem(t, dir)
	ctx := context.Background()
	res, err := Do(ctx, "erp", sys, "order", map[string]any{"id": "A-1", "body": map[string]any{"qty": 2}})
	if err != nil || res.(map[string]any)["path"] != "orders/A-1.json" {
		t.Fatalf("write: %v %v", res, err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "orders", "A-1.json")); string(data) != `{"qty":2}` {
		t.Errorf("file holds %s", data)
	}
	if _, err := Do(ctx, "erp", sys, "note", map[string]any{"id": "n1", "body": "hello\n"}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "notes", "n1.txt")); string(data) != "hello\n" {
		t.Errorf("text file holds %q", data)
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(filepath.Join(dir, "orders"))
	if len(entries) != 1 {
		t.Errorf("orders/ holds %d entries, want 1", len(entries))
	}
	var fe *Error
	for name, with := range map[string]map[string]any{
		"order": {"id": "../../etc/passwd"},
		"note":  {"id": "n2", "body": map[string]any{"not": "text"}},
	} {
		if _, err := Do(ctx, "erp", sys, name, with); !errors.As(err, &fe) || fe.Transient {
			t.Errorf("%s %v: %v, want a permanent error", name, with, err)
		}
	}
	if detail, err := Check(ctx, "erp", sys); err != nil || !strings.Contains(detail, "can be written") {
		t.Errorf("check: %q %v", detail, err)
	}
	if _, err := Check(ctx, "erp", filesSystem(t, filepath.Join(dir, "missing"))); err == nil {
		t.Error("a missing directory checked fine")
	}
}
