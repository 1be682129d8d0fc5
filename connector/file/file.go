// Package fileconn is the files connector: it writes a call's body as a file in a system's
// directory, atomically (a temporary file in the same directory, fsynced, then renamed), so
// that the system never sees half a file. A path that would leave the directory, a body of
// the wrong kind or a permission problem is a permanent failure; a full disk or an
// unavailable mount a transient one.
package fileconn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/causeway/causeway/expr"
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

// Prepare renders a file operation's path (a slash-separated path under the system's
// directory, checked not to leave it) and its contents. The local and the SFTP connector
// share it.
func Prepare(ctx context.Context, op *system.FileOperation, with map[string]any) (string, []byte, error) {
	t, err := expr.ParseTemplate(op.Path)
	if err != nil {
		return "", nil, err
	}
	pv, err := t.Eval(ctx, map[string]any{"params": with})
	if err != nil {
		return "", nil, fmt.Errorf("path: %w", err)
	}
	raw := expr.ToString(pv)
	rel := path.Clean("/" + strings.ReplaceAll(raw, "\\", "/"))[1:]
	if rel == "" || rel != strings.TrimPrefix(path.Clean(raw), "./") || strings.HasPrefix(raw, "/") {
		return "", nil, fmt.Errorf("the path %q leaves the system's directory", raw)
	}
	body := any(with)
	if b, ok := with["body"]; ok {
		body = b
	}
	if op.Format == "text" {
		s, ok := body.(string)
		if !ok {
			return "", nil, fmt.Errorf("a text file's body must be a string, got %s", expr.TypeName(body))
		}
		return rel, []byte(s), nil
	}
	data, err := expr.MarshalJSON(body)
	return rel, data, err
}

// Do writes the call's body (with.body, or all of with) to the operation's path.
func Do(ctx context.Context, sysName string, sys *system.Spec, opName string, with map[string]any) (any, error) {
	fail := func(transient bool, err error) *Error {
		return &Error{System: sysName, Operation: opName, Transient: transient, Err: err}
	}
	op, ok := sys.Operation(opName)
	if !ok || op.File == nil || sys.Files == nil {
		return nil, fail(false, errors.New("no such file operation"))
	}
	rel, data, err := Prepare(ctx, op.File, with)
	if err != nil {
		return nil, fail(false, err)
	}
	target := filepath.Join(filepath.Clean(sys.Files.Root()), filepath.FromSlash(rel))
	if err := writeAtomic(target, data); err != nil {
		return nil, fail(transientIO(err), err)
	}
	return map[string]any{"path": rel, "bytes": len(data)}, nil
}

// writeAtomic writes data to path through a temporary file in the same directory: written,
// fsynced, renamed over path, and the directory fsynced, so the file appears whole or not.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".causeway-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// transientIO reports the failures that may go away: a full disk or quota, a mount that is
// gone for the moment, an I/O error.
func transientIO(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EIO) ||
		errors.Is(err, syscall.ESTALE) || errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EAGAIN)
}

// Check tells whether the directory exists and can be written.
func Check(_ context.Context, _ string, sys *system.Spec) (string, error) {
	if sys.Files == nil {
		return "", errors.New("the system has no files settings")
	}
	root := sys.Files.Root()
	probe, err := os.CreateTemp(root, ".causeway-check-*")
	if err != nil {
		return "", fmt.Errorf("the directory %s cannot be written: %w", root, errors.Unwrap(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	return "the directory " + root + " can be written", nil
}
