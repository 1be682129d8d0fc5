// Package deftest runs the table tests of definition files: testdata/*.good.yaml must load,
// testdata/*.bad.yaml must report exactly the problems their "# want:" lines list.
package deftest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/config"
)

// Load loads testdata/common.yaml (the resources every test file refers to) with
// one test file, in a directory of their own, through the registry reg, and returns the
// problems with that directory taken off the paths.
func Load(t *testing.T, reg *config.Registry, file string) (*config.Config, []string) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"common.yaml", file} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(dir, config.Options{Registry: reg, LookupEnv: func(string) (string, bool) { return "", false }})
	if err == nil {
		return cfg, nil
	}
	var got []string
	for _, line := range strings.Split(err.Error(), "\n") {
		got = append(got, strings.TrimPrefix(line, dir+string(filepath.Separator)))
	}
	return nil, got
}

// Run loads every testdata/*.good.yaml, which must load without problems (and pass
// good, when given), and every testdata/*.bad.yaml, which must report exactly the problems
// its "# want:" lines list, as path:line:col: message. With update, it rewrites the want
// lines from what it got instead.
func Run(t *testing.T, reg *config.Registry, update bool, good func(t *testing.T, cfg *config.Config)) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "*.*.yaml"))
	if len(files) == 0 {
		t.Fatal("no test files")
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			cfg, got := Load(t, reg, name)
			if strings.HasSuffix(name, ".good.yaml") {
				if got != nil {
					t.Fatalf("unexpected problems:\n%s", strings.Join(got, "\n"))
				}
				if good != nil {
					good(t, cfg)
				}
				return
			}
			data, _ := os.ReadFile(path)
			var want []string
			lines := strings.Split(string(data), "\n")
			for _, line := range lines {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			if update {
				for len(lines) > 0 && strings.HasPrefix(lines[0], "# want: ") {
					lines = lines[1:]
				}
				var head []string
				for _, g := range got {
					head = append(head, "# want: "+g)
				}
				if err := os.WriteFile(path, []byte(strings.Join(append(head, lines...), "\n")), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if len(want) == 0 {
				t.Fatal("a bad file must declare its problems in # want: lines (go test -update writes them; review the diff)")
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("problems differ\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
