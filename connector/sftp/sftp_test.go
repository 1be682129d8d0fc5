package sftpconn

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/system"
)

// server is an SSH server on a loopback port that serves SFTP over a temporary directory to
// user causeway with password s3cret.
type server struct {
	addr    string
	dir     string
	hostKey string // authorized_keys form
}

func startServer(t *testing.T) *server {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PasswordCallback: func(c ssh.ConnMetadata, pass []byte) (*ssh.Permissions, error) {
		if c.User() == "causeway" && string(pass) == "s3cret" {
			return nil, nil
		}
		return nil, errors.New("no")
	}}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: ln.Addr().String(), dir: t.TempDir(), hostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(nc, cfg)
		}
	}()
	return s
}

func (s *server) serve(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, requests, err := nch.Accept()
		if err != nil {
			return
		}
		go func() {
			for req := range requests {
				ok := req.Type == "subsystem" && string(req.Payload[4:]) == "sftp"
				_ = req.Reply(ok, nil)
				if ok {
					srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(s.dir))
					if err == nil {
						_ = srv.Serve()
					}
					ch.Close()
				}
			}
		}()
	}
}

func sftpSystem(s *server, password string) *system.Spec {
	return &system.Spec{
		SFTP: &system.SFTP{Address: s.addr, Username: "causeway", Password: config.NewSecret(password), HostKey: s.hostKey, Dir: "upload", Timeout: 5 * time.Second},
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
	s := startServer(t)
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
	got, err := os.ReadFile(filepath.Join(s.dir, "upload", "orders", "A-1.json"))
	if err != nil || string(got) != `{"total":20}` {
		t.Errorf("file: %q %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.dir, "upload", "orders"))
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
	other := startServer(t)
	spoof := sftpSystem(s, "s3cret")
	spoof.SFTP.HostKey = other.hostKey
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
	s := &server{addr: ln.Addr().String(), hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAKFYABX7iVfN5nuqduYLC6HQMV3z8SD8cATOIlUm5fv"}
	ln.Close()
	var ce *Error
	if _, err := New().Do(context.Background(), "gone", sftpSystem(s, "x"), "put", map[string]any{"id": "A", "body": 1}); !errors.As(err, &ce) || !ce.Transient {
		t.Errorf("unreachable: %v, want a transient error", err)
	}
}
