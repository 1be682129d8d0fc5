package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/kinds"
	"github.com/causeway/causeway/platform"
)

func TestSystemsCheck(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404) }))
	defer api.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"systems.yaml": `apiVersion: causeway/v1
kind: System
metadata: {name: crm}
spec: {http: {baseURL: "` + api.URL + `"}}
---
apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec: {sql: {driver: sqlite, dsn: "` + filepath.Join(t.TempDir(), "erp.db") + `"}}
---
apiVersion: causeway/v1
kind: System
metadata: {name: down}
spec: {http: {baseURL: "http://` + closed + `"}}
`})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := platform.New(ctx, platform.Options{ConfigDir: dir, DataDir: t.TempDir(), Registry: kinds.Default(),
		HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Sync: bus.Sync{Interval: time.Second},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	defer p.Shutdown()
	admin := "http://" + p.AdminAddr()
	out, err := runForTest(t, newSystemsCmd(), "check", "crm", "--admin", admin)
	if err != nil || !strings.Contains(out, "ok    http  GET "+api.URL+" answered HTTP 404") {
		t.Errorf("crm: %v\n%s", err, out)
	}
	out, err = runForTest(t, newSystemsCmd(), "check", "erp", "--admin", admin)
	if err != nil || !strings.Contains(out, "ok    sql   sqlite database answered SELECT 1") {
		t.Errorf("erp: %v\n%s", err, out)
	}
	out, err = runForTest(t, newSystemsCmd(), "check", "down", "--admin", admin)
	if exitCodeOf(err) != 1 || !strings.Contains(out, "FAIL  http") || !strings.Contains(out, "connection refused") {
		t.Errorf("down: %v\n%s", err, out)
	}
	if _, err := runForTest(t, newSystemsCmd(), "check", "nope", "--admin", admin); err == nil || !strings.Contains(err.Error(), `404 Not Found: no System "nope" is defined`) {
		t.Errorf("unknown: %v", err)
	}
}

// TestSystemsListAndSetStatus switches a system into maintenance with `systems
// set-status`, sees it in `systems list`, and gives it back to auto.
func TestSystemsListAndSetStatus(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"systems.yaml": `apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec: {http: {baseURL: "http://127.0.0.1:1"}}
`})
	p := runNodeOn(t, dir)
	admin := "--admin=http://" + p.AdminAddr()
	out, err := runForTest(t, newSystemsCmd(), "list", admin)
	if err != nil || !strings.Contains(out, "SYSTEM") || !strings.Contains(out, "erp     online") {
		t.Errorf("list: %v\n%s", err, out)
	}
	out, err = runForTest(t, newSystemsCmd(), "set-status", "erp", "maintenance", "--until", "2h", "--reason", "ERP upgrade", "--actor", "ops-dora", admin)
	if err != nil || !strings.HasPrefix(out, "erp is maintenance (manual) until ") {
		t.Fatalf("set-status: %v\n%s", err, out)
	}
	out, err = runForTest(t, newSystemsCmd(), "list", admin)
	if err != nil || !strings.Contains(out, "maintenance") || !strings.Contains(out, "ERP upgrade (ops-dora (") {
		t.Errorf("list after the switch: %v\n%s", err, out)
	}
	if _, err := runForTest(t, newSystemsCmd(), "set-status", "erp", "offline", admin); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Errorf("no reason: %v", err)
	}
	if _, err := runForTest(t, newSystemsCmd(), "set-status", "erp", "sleeping", "--reason", "x", admin); err == nil || !strings.Contains(err.Error(), "expected online, degraded, offline, maintenance") {
		t.Errorf("bad status: %v", err)
	}
	out, err = runForTest(t, newSystemsCmd(), "set-status", "erp", "auto", admin)
	if err != nil || !strings.HasPrefix(out, "erp is online") {
		t.Errorf("auto: %v\n%s", err, out)
	}
}
