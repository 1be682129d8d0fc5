package flow_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/kinds"
)

var update = flag.Bool("update", false, "rewrite the # want: lines of testdata/*.bad.yaml")

// load loads testdata/common.yaml (message types and systems) with one test file, in a
// directory of their own, and returns the problems with that directory taken off the paths.
func load(t *testing.T, file string) (*config.Config, []string) {
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
	cfg, err := config.Load(dir, config.Options{Registry: kinds.Default(), LookupEnv: func(string) (string, bool) { return "", false }})
	if err == nil {
		return cfg, nil
	}
	var got []string
	for _, line := range strings.Split(err.Error(), "\n") {
		got = append(got, strings.TrimPrefix(line, dir+string(filepath.Separator)))
	}
	return nil, got
}

// TestTestdata loads every testdata/*.good.yaml, which must load without problems, and every
// testdata/*.bad.yaml, which must report exactly the problems its "# want:" lines list.
func TestTestdata(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.*.yaml"))
	if len(files) == 0 {
		t.Fatal("no test files")
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			cfg, got := load(t, name)
			if strings.HasSuffix(name, ".good.yaml") {
				if got != nil {
					t.Fatalf("unexpected problems:\n%s", strings.Join(got, "\n"))
				}
				if len(cfg.ByKind(flow.Kind)) == 0 {
					t.Fatal("no flow loaded")
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
			if *update {
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
				t.Fatal("a bad file must declare its problems in # want: lines (go test ./flow -update writes them; review the diff)")
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("problems differ\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestEveryActionCompiles checks that the flow using every action kind comes out of loading
// with each step's action worked out.
func TestEveryActionCompiles(t *testing.T) {
	cfg, problems := load(t, "every-step.good.yaml")
	if problems != nil {
		t.Fatal(problems)
	}
	res, _ := cfg.Get(flow.Kind, "ship-paid-orders")
	actions := map[string]string{}
	res.Spec.(*flow.Spec).Walk(func(field string, st *flow.Step) { actions[st.ID] = st.Action() })
	want := map[string]string{
		"order": "call", "remember": "set", "big": "if", "customer": "call", "small": "set",
		"route": "switch", "web": "set", "other": "set", "each": "foreach", "check-line": "fail",
		"both": "parallel", "ship": "call", "wait": "delay", "announce": "publish", "later": "delay",
		"undo": "publish",
	}
	for id, a := range want {
		if actions[id] != a {
			t.Errorf("step %s: action %q, want %q", id, actions[id], a)
		}
	}
	if len(actions) != len(want) {
		t.Errorf("walked %d steps, want %d: %v", len(actions), len(want), actions)
	}
}
