package kinds_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/kinds"
)

var update = flag.Bool("update", false, "rewrite the generated reference and JSON Schema")

// TestGeneratedFilesUpToDate regenerates the files derived from the kinds' spec structs and
// fails when the committed ones differ, so that the reference and the editor schema always
// describe what the loader accepts. Run "go test ./kinds -update" after changing a kind.
func TestGeneratedFilesUpToDate(t *testing.T) {
	reg := kinds.Default()
	schema, err := config.JSONSchema(reg)
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string][]byte{
		"docs/reference/resources.md": config.Reference(reg),
		"schema/causeway.schema.json": schema,
	} {
		path := filepath.Join("..", filepath.FromSlash(rel))
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v; generate it with: go test ./kinds -update", rel, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date with the registered kinds; regenerate it with: go test ./kinds -update", rel)
		}
	}
}

// TestKindExamples loads the example of every kind, all together, so that the examples in
// the reference are valid and consistent with each other.
func TestKindExamples(t *testing.T) {
	dir := t.TempDir()
	for _, k := range kinds.Default().Kinds() {
		if strings.TrimSpace(k.Example) == "" {
			t.Errorf("kind %s has no example", k.Name)
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, k.Name+".yaml"), []byte(k.Example), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Secrets are checked for syntax only, as validate --skip-secrets does in CI.
	cfg, err := config.Load(dir, config.Options{Registry: kinds.Default(), LookupEnv: noEnv, SkipSecrets: true})
	if err != nil {
		t.Fatalf("kind examples do not load:\n%v", err)
	}
	_ = cfg.Cleanup()
}

func noEnv(string) (string, bool) { return "", false }

// TestExamplesValidate loads every directory under examples/, once per environment file it
// has (or once without one), without secrets, as CI does with validate --skip-secrets.
func TestExamplesValidate(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "examples", "*"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, dir := range dirs {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			continue
		}
		found = true
		envs := []string{""}
		files, _ := filepath.Glob(filepath.Join(dir, "environments", "*.y*ml"))
		if len(files) > 0 {
			envs = envs[:0]
			for _, f := range files {
				envs = append(envs, strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)))
			}
		}
		for _, env := range envs {
			name := filepath.Base(dir)
			if env != "" {
				name += "/" + env
			}
			t.Run(name, func(t *testing.T) {
				cfg, err := config.Load(dir, config.Options{Registry: kinds.Default(), Env: env, SkipSecrets: true, LookupEnv: noEnv})
				if err != nil {
					t.Fatalf("%s does not validate:\n%v", dir, err)
				}
				if len(cfg.All()) == 0 {
					t.Errorf("%s has no definitions", dir)
				}
				_ = cfg.Cleanup()
			})
		}
	}
	if !found {
		t.Fatal("no examples found under examples/")
	}
}
