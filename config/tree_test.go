package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/testutil"
)

func target(name string) string {
	return "apiVersion: causeway/v1\nkind: Target\nmetadata: {name: " + name + "}\n"
}

func TestLoadDirectoryTree(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"b.yaml":                   target("b"),
		"a.yml":                    target("a1") + "---\n" + target("a2"),
		"sub/deeper/c.yaml":        target("c"),
		"sub/d.YAML":               target("d"),
		"sub/notes.txt":            "not a definition",
		"sub/schema.json":          `{"type": "object"}`,
		"sub/order.schema.yaml":    "type: object\n",
		".hidden.yaml":             "not: [valid",
		".git/config.yaml":         "not: [valid",
		"environments/prod.yaml":   "X: 1\n",
		"sub/environments/e.yaml":  target("e"),
		"sub/.cache/ignored.yaml":  "not: [valid",
		"widgets/w.yaml":           "apiVersion: causeway/v1\nkind: Widget\nmetadata: {name: w}\nspec: {req: x, target: a1}\n",
		"widgets/empty.yaml":       "# nothing here yet\n",
		"widgets/only-header.yaml": "---\n",
	})
	cfg, err := Load(dir, Options{Registry: testRegistry(t), LookupEnv: lookupTestEnv})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range cfg.All() {
		rel, _ := filepath.Rel(dir, r.File)
		got = append(got, filepath.ToSlash(rel)+":"+r.Metadata.Name)
	}
	want := "a.yml:a1 a.yml:a2 b.yaml:b sub/d.YAML:d sub/deeper/c.yaml:c sub/environments/e.yaml:e widgets/w.yaml:w"
	if strings.Join(got, " ") != want {
		t.Errorf("loaded %s\nwant   %s", strings.Join(got, " "), want)
	}
	if cfg.Dir() != dir {
		t.Errorf("Dir() = %q", cfg.Dir())
	}
}

// TestLoadPathsInMessages checks that positions name files as filepath.Join(dir, relative
// path), so that a relative directory argument gives relative paths in messages.
func TestLoadPathsInMessages(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"defs/sub/bad.yaml": "apiVersion: v2\nkind: Target\nmetadata: {name: x}\n"})
	t.Chdir(dir)
	_, err := Load("defs/", Options{Registry: testRegistry(t)})
	want := `defs/sub/bad.yaml:1:13: apiVersion: expected "causeway/v1", got "v2"`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestLoadDirectoryProblems(t *testing.T) {
	reg := testRegistry(t)
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing"), Options{Registry: reg}); err == nil || !strings.Contains(err.Error(), "missing: cannot read definitions: no such file or directory") {
		t.Errorf("missing directory: %v", err)
	}
	testutil.WriteFiles(t, dir, map[string]string{"file.yaml": target("a")})
	if _, err := Load(filepath.Join(dir, "file.yaml"), Options{Registry: reg}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file instead of directory: %v", err)
	}
	if _, err := Load(dir, Options{}); err == nil || !strings.Contains(err.Error(), "Registry is nil") {
		t.Errorf("no registry: %v", err)
	}
	// Every problem in every file is reported, sorted by file and position.
	testutil.WriteFiles(t, dir, map[string]string{
		"z.yaml": "apiVersion: causeway/v1\nkind: Sytem\nmetadata: {name: z}\n",
		"b.yaml": "kind: Target\nmetadata: {name: b}\n---\nkind: Target\nmetadata: {name: Bad}\n",
	})
	_, err := Load(dir, Options{Registry: reg})
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want an ErrorList, got %v", err)
	}
	got := strings.ReplaceAll(list.Error(), dir+string(filepath.Separator), "")
	want := strings.Join([]string{
		"b.yaml:1:1: apiVersion: required field missing",
		"b.yaml:4:1: apiVersion: required field missing",
		`b.yaml:5:18: metadata.name: invalid name "Bad": use lowercase letters, digits, '.' and '-', starting and ending with a letter or digit, at most 253 characters`,
		`z.yaml:2:7: unknown kind "Sytem" (known kinds: Target, Widget)`,
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestLoadEnvironmentFile(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"w.yaml":                    "apiVersion: causeway/v1\nkind: Widget\nmetadata: {name: w}\nspec: {req: '${REGION}', count: '${COUNT}'}\n",
		"environments/staging.yaml": "REGION: eu\nCOUNT: 0x20\n",
		"environments/bad.yaml":     "REGION: [eu]\n1X: a\n",
		"environments/list.yml":     "- a\n",
		"environments/two.yaml":     "A: 1\n---\nB: 2\n",
	})
	reg := testRegistry(t)
	none := func(string) (string, bool) { return "", false }
	cfg, err := Load(dir, Options{Registry: reg, Env: "staging", LookupEnv: none})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := cfg.Get("Widget", "w")
	if w := r.Spec.(*widgetSpec); w.Req != "eu" || w.Count != 32 {
		t.Errorf("req=%q count=%d", w.Req, w.Count)
	}
	for env, want := range map[string][]string{
		"":        {"w.yaml:4:13: unresolved ${REGION}: not set in the environment", "w.yaml:4:33: unresolved ${COUNT}: not set in the environment"},
		"missing": {`environments: environment "missing" not found: there is no environments/missing.yaml`},
		"../x":    {`environments: invalid environment name "../x"`},
		"bad": {
			"environments/bad.yaml:1:9: environment value REGION must be a single value, got a list",
			`environments/bad.yaml:2:1: invalid variable name "1X"`,
		},
		"list": {"environments/list.yml:1:1: an environment file holds a mapping of variable names to values, got a list"},
		"two":  {"environments/two.yaml:3:1: an environment file holds a single mapping, found a second document"},
	} {
		_, err := Load(dir, Options{Registry: reg, Env: env, LookupEnv: none})
		if err == nil {
			t.Errorf("env %q: no error", env)
			continue
		}
		got := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("env %q: got\n%s\nwant it to contain\n%s", env, got, w)
			}
		}
	}
}

func TestLifecycleCleanup(t *testing.T) {
	reg := testRegistry(t)
	src := func(fails ...string) []source {
		var b strings.Builder
		for i, f := range fails {
			b.WriteString("---\n" + target(string(rune('a'+i))) + "spec: {fail: " + f + "}\n")
		}
		return []source{{"t.yaml", []byte(b.String())}}
	}

	// On success nothing is cleaned up until Config.Cleanup, which runs once.
	cleanups.Store(0)
	cfg, err := loadSources(".", src("cleanup", "null"), Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if cleanups.Load() != 0 {
		t.Fatal("cleaned up before Config.Cleanup")
	}
	err = cfg.Cleanup()
	if cleanups.Load() != 2 || err == nil || !strings.Contains(err.Error(), `cleaning up Target "a": cleanup failed as asked`) {
		t.Errorf("after Cleanup: %d cleanups, err %v", cleanups.Load(), err)
	}
	if again := cfg.Cleanup(); cleanups.Load() != 2 || again == nil {
		t.Errorf("second Cleanup ran again: %d cleanups, err %v", cleanups.Load(), again)
	}

	// On failure, everything whose Provision ran is cleaned up, the failing ones included;
	// a resource that failed to decode is neither provisioned nor cleaned up.
	cleanups.Store(0)
	sources := src("validate", "provision", "panic", "error")
	sources[0].data = append(sources[0].data, []byte("---\n"+target("z")+"spec: {fail: unknown}\n")...)
	if _, err := loadSources(".", sources, Options{Registry: reg}); err == nil {
		t.Fatal("no error")
	}
	if cleanups.Load() != 4 {
		t.Errorf("%d cleanups after a failed load, want 4", cleanups.Load())
	}
}
