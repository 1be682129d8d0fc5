package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFiles creates files under dir from a map of slash-separated relative paths to
// contents, creating directories as needed, and fails the test on any error.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
