// Package sftpconn writes a file operation's file on a system's SFTP server, atomically: a
// hidden temporary file in the target directory, written, synced where the server can,
// then renamed over the target (POSIX rename where the server offers it), so the system
// never reads half a file. The server must prove it holds the host key the definition
// gives. No connection, a dropped one or a timeout is a transient failure; a refused login,
// an unknown host key, a path outside the directory or a permission problem a permanent one.
package sftpconn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	fileconn "github.com/causeway/causeway/connector/file"
	"github.com/causeway/causeway/system"
)

// Error is a failed write.
type Error struct {
	System, Operation string
	Transient         bool
	Err               error
}

// Error says which operation failed, how, and whether it is worth retrying.
func (e *Error) Error() string {
	kind := "permanent"
	if e.Transient {
		kind = "transient"
	}
	return fmt.Sprintf("call %s.%s: %v (%s)", e.System, e.Operation, e.Err, kind)
}

// Unwrap gives the cause.
func (e *Error) Unwrap() error { return e.Err }

// Client keeps one SSH connection per system.
type Client struct {
	mu    sync.Mutex
	conns map[string]*conn
}

type conn struct {
	ssh  *ssh.Client
	sftp *sftp.Client
}

// New returns a client.
func New() *Client { return &Client{conns: map[string]*conn{}} }

// Close closes every connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, k := range c.conns {
		_ = k.sftp.Close()
		_ = k.ssh.Close()
		delete(c.conns, name)
	}
}

// loginError is a refusal by the server or of the server: trying again does not help.
type loginError struct{ err error }

func (e *loginError) Error() string { return e.err.Error() }
func (e *loginError) Unwrap() error { return e.err }

// open returns the system's connection, connecting (again) when there is none.
func (c *Client) open(ctx context.Context, name string, cfg *system.SFTP) (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.conns[name]; ok {
		if _, err := k.sftp.Getwd(); err == nil {
			return k, nil
		}
		_ = k.sftp.Close()
		_ = k.ssh.Close()
		delete(c.conns, name)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cfg.HostKey))
	if err != nil {
		return nil, &loginError{errors.New("the system's hostKey does not parse")}
	}
	var auth []ssh.AuthMethod
	if !cfg.PrivateKey.IsZero() {
		signer, err := ssh.ParsePrivateKey([]byte(cfg.PrivateKey.Reveal()))
		if err != nil {
			return nil, &loginError{errors.New("the system's privateKey does not parse")}
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if !cfg.Password.IsZero() {
		auth = append(auth, ssh.Password(cfg.Password.Reveal()))
	}
	d := net.Dialer{Timeout: cfg.Timeout}
	nc, err := d.DialContext(ctx, "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Address, err)
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, cfg.Address, &ssh.ClientConfig{
		User: cfg.Username, Auth: auth, HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: cfg.Timeout,
	})
	if err != nil {
		_ = nc.Close()
		if strings.Contains(err.Error(), "unable to authenticate") || strings.Contains(err.Error(), "host key mismatch") {
			return nil, &loginError{fmt.Errorf("ssh handshake with %s: %v", cfg.Address, err)}
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", cfg.Address, err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	fc, err := sftp.NewClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("starting sftp on %s: %w", cfg.Address, err)
	}
	k := &conn{ssh: client, sftp: fc}
	c.conns[name] = k
	return k, nil
}

// Do writes the call's body (with.body, or all of with) to the operation's path on the
// system's server.
func (c *Client) Do(ctx context.Context, sysName string, sys *system.Spec, opName string, with map[string]any) (any, error) {
	fail := func(transient bool, err error) *Error {
		return &Error{System: sysName, Operation: opName, Transient: transient, Err: err}
	}
	op, ok := sys.Operation(opName)
	if !ok || op.File == nil || sys.SFTP == nil {
		return nil, fail(false, errors.New("no such SFTP file operation"))
	}
	rel, data, err := fileconn.Prepare(ctx, op.File, with)
	if err != nil {
		return nil, fail(false, err)
	}
	cctx, cancel := context.WithTimeout(ctx, sys.SFTP.Timeout)
	defer cancel()
	k, err := c.open(cctx, sysName, sys.SFTP)
	if err != nil {
		var le *loginError
		return nil, fail(!errors.As(err, &le), err)
	}
	target := path.Join(sys.SFTP.Dir, rel)
	done := make(chan error, 1)
	go func() { done <- writeAtomic(k.sftp, target, data) }()
	select {
	case err = <-done:
	case <-cctx.Done():
		// A write that hangs takes the connection with it: the next call connects again.
		c.drop(sysName, k)
		return nil, fail(true, fmt.Errorf("writing %s: %w", target, cctx.Err()))
	}
	if err != nil {
		transient := !errors.Is(err, os.ErrPermission) && !errors.Is(err, os.ErrNotExist)
		var se *sftp.StatusError
		if errors.As(err, &se) {
			transient = se.FxCode() == sftp.ErrSSHFxFailure || se.FxCode() == sftp.ErrSSHFxConnectionLost || se.FxCode() == sftp.ErrSSHFxNoConnection
		}
		if transient {
			c.drop(sysName, k)
		}
		return nil, fail(transient, fmt.Errorf("writing %s: %w", target, err))
	}
	return map[string]any{"path": rel, "bytes": len(data)}, nil
}

// drop forgets a connection that failed.
func (c *Client) drop(name string, k *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns[name] == k {
		_ = k.sftp.Close()
		_ = k.ssh.Close()
		delete(c.conns, name)
	}
}

// writeAtomic writes data to target through a hidden temporary file beside it.
func writeAtomic(fc *sftp.Client, target string, data []byte) error {
	dir := path.Dir(target)
	if err := fc.MkdirAll(dir); err != nil {
		return err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(dir, ".causeway-"+hex.EncodeToString(rnd[:])+".tmp")
	f, err := fc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return err
	}
	defer fc.Remove(tmp) //nolint:errcheck // gone after the rename
	if _, err := io.Copy(f, strings.NewReader(string(data))); err != nil {
		f.Close()
		return err
	}
	// fsync@openssh.com where the server offers it; a server that does not leaves the
	// durability of the file to itself.
	if err := f.Sync(); err != nil && !isUnsupported(err) {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if _, ok := fc.HasExtension("posix-rename@openssh.com"); ok {
		return fc.PosixRename(tmp, target)
	}
	// Plain SFTP rename does not replace: remove the old file first (a reader may then
	// briefly find none, never half of one).
	if err := fc.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return fc.Rename(tmp, target)
}

func isUnsupported(err error) bool {
	var se *sftp.StatusError
	return errors.Is(err, sftp.ErrSSHFxOpUnsupported) || (errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported)
}

// Check logs in and tells whether the directory can be written.
func (c *Client) Check(ctx context.Context, name string, sys *system.Spec) (string, error) {
	if sys.SFTP == nil {
		return "", errors.New("the system has no sftp settings")
	}
	cctx, cancel := context.WithTimeout(ctx, sys.SFTP.Timeout)
	defer cancel()
	k, err := c.open(cctx, name, sys.SFTP)
	if err != nil {
		return "", err
	}
	probe := path.Join(sys.SFTP.Dir, ".causeway-check")
	if err := writeAtomic(k.sftp, probe, []byte("ok")); err != nil {
		return "", fmt.Errorf("the directory %s cannot be written: %w", sys.SFTP.Dir, err)
	}
	_ = k.sftp.Remove(probe)
	return fmt.Sprintf("logged in to %s as %s; the directory %s can be written", sys.SFTP.Address, sys.SFTP.Username, sys.SFTP.Dir), nil
}
