package sftpconn

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/internal/testutil/sshtest"
	"github.com/causeway/causeway/system"
)

func sftpSystem(s *sshtest.Server, password string) *system.Spec {
	return &system.Spec{
		SFTP: &system.SFTP{Address: s.Addr, Username: "causeway", Password: config.NewSecret(password), HostKey: s.HostKey, Dir: "upload", Timeout: 5 * time.Second},
		Operations: map[string]*system.Operation{
			"put":  {File: &system.FileOperation{Path: "orders/${{ .params.id }}.json", Format: "json"}},
			"away": {File: &system.FileOperation{Path: "../${{ .params.id }}.json", Format: "json"}},
		},
	}
}

// TestWriteOverSFTP writes files through a real SSH server: the file appears whole under
// the directory, a second write replaces it, no temporary file is left; a path that leaves
// the directory, a wrong password and a wrong host key are permanent; check works.
func TestWriteOverSFTP(t *testing.T) {
	s := sshtest.Start(t)
	c := New()
	defer c.Close()
	ctx := context.Background()
	sys := sftpSystem(s, "s3cret")
	for _, total := range []int{10, 20} {
		res, err := c.Do(ctx, "partner", sys, "put", map[string]any{"id": "A-1", "body": map[string]any{"total": total}})
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		if r := res.(map[string]any); r["path"] != "orders/A-1.json" {
			t.Errorf("result %v", r)
		}
	}
	got, err := os.ReadFile(filepath.Join(s.Dir, "upload", "orders", "A-1.json"))
	if err != nil || string(got) != `{"total":20}` {
		t.Errorf("file: %q %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Dir, "upload", "orders"))
	if len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want the file alone", len(entries))
	}
	var ce *Error
	if _, err := c.Do(ctx, "partner", sys, "away", map[string]any{"id": "x", "body": 1}); !errors.As(err, &ce) || ce.Transient {
		t.Errorf("a path leaving the directory: %v", err)
	}
	if detail, err := c.Check(ctx, "partner", sys); err != nil || !strings.Contains(detail, "can be written") {
		t.Errorf("check: %q %v", detail, err)
	}

	bad := sftpSystem(s, "wrong")
	if _, err := New().Do(ctx, "bad", bad, "put", map[string]any{"id": "B", "body": 1}); !errors.As(err, &ce) || ce.Transient || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong password: %v, want a permanent error without it", err)
	}
	other := sshtest.Start(t)
	spoof := sftpSystem(s, "s3cret")
	spoof.SFTP.HostKey = other.HostKey
	if _, err := New().Do(ctx, "spoof", spoof, "put", map[string]any{"id": "C", "body": 1}); !errors.As(err, &ce) || ce.Transient {
		t.Errorf("wrong host key: %v, want a permanent error", err)
	}
}

// TestUnreachableServerIsTransient points at a port where nothing listens.
func TestUnreachableServerIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sshtest.Server{Addr: ln.Addr().String(), HostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAKFYABX7iVfN5nuqduYLC6HQMV3z8SD8cATOIlUm5fv"}
	ln.Close()
	var ce *Error
	if _, err := New().Do(context.Background(), "gone", sftpSystem(s, "x"), "put", map[string]any{"id": "A", "body": 1}); !errors.As(err, &ce) || !ce.Transient {
		t.Errorf("unreachable: %v, want a transient error", err)
	}
}
