package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the # want: lines of testdata/*.bad.yaml with the problems found")

// testOptions are the options the table tests load with: the test kinds, a fixed process
// environment, the "test" environment file and the secrets under testdata/secrets.
func testOptions(t testing.TB) Options {
	return Options{
		Registry:   testRegistry(t),
		Env:        "test",
		SecretsDir: filepath.Join("testdata", "secrets"),
		LookupEnv:  lookupTestEnv,
	}
}

func loadTestFile(t testing.TB, path string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return loadSources("testdata", []source{{path: path, data: data}}, testOptions(t))
}

// wantLines returns the problems a bad file declares in its "# want: " comments.
func wantLines(data []byte) []string {
	var want []string
	for _, line := range strings.Split(string(data), "\n") {
		if w, ok := strings.CutPrefix(line, "# want: "); ok {
			want = append(want, w)
		}
	}
	return want
}

// TestTestdata loads every testdata/*.good.yaml, which must load without problems, and every
// testdata/*.bad.yaml, which must report exactly the problems its "# want:" lines list.
func TestTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			cfg, err := loadTestFile(t, path)
			switch {
			case strings.HasSuffix(name, ".good.yaml"):
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				if len(cfg.All()) == 0 {
					t.Fatal("no resources loaded")
				}
				if err := cfg.Cleanup(); err != nil {
					t.Fatal(err)
				}
			case strings.HasSuffix(name, ".bad.yaml"):
				data, _ := os.ReadFile(path)
				want := wantLines(data)
				if len(want) == 0 {
					t.Fatal("a bad file must declare its problems in # want: lines")
				}
				if err == nil {
					t.Fatal("loaded without problems")
				}
				var list ErrorList
				if !errors.As(err, &list) {
					t.Fatalf("error is %T, not an ErrorList: %v", err, err)
				}
				got := strings.Split(list.Error(), "\n")
				if *update {
					rewriteWant(t, path, data, got)
					return
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("problems differ\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			default:
				t.Fatal("test files must end in .good.yaml or .bad.yaml")
			}
		})
	}
}

// rewriteWant replaces the "# want:" lines at the top of a bad file with got. Review the
// diff before committing: it blesses whatever the loader reports now.
func rewriteWant(t *testing.T, path string, data []byte, got []string) {
	lines := strings.Split(string(data), "\n")
	for len(lines) > 0 && strings.HasPrefix(lines[0], "# want: ") {
		lines = lines[1:]
	}
	var out []string
	for _, g := range got {
		out = append(out, "# want: "+g)
	}
	if err := os.WriteFile(path, []byte(strings.Join(append(out, lines...), "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}
