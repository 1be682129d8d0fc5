package flow_test

import (
	"flag"
	"testing"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/internal/testutil/deftest"
	"github.com/causeway/causeway/kinds"
)

var update = flag.Bool("update", false, "rewrite the # want: lines of testdata/*.bad.yaml")

// load loads testdata/common.yaml (message types and systems) with one test file.
func load(t *testing.T, file string) (*config.Config, []string) {
	t.Helper()
	return deftest.Load(t, kinds.Default(), file)
}

// TestTestdata loads every testdata/*.good.yaml, which must load without problems, and every
// testdata/*.bad.yaml, which must report exactly the problems its "# want:" lines list.
func TestTestdata(t *testing.T) {
	deftest.Run(t, kinds.Default(), *update, func(t *testing.T, cfg *config.Config) {
		if len(cfg.ByKind(flow.Kind)) == 0 {
			t.Fatal("no flow loaded")
		}
	})
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
		"undo": "publish", "order-eu": "call",
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
