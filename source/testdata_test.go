package source_test

import (
	"flag"
	"testing"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/internal/testutil/deftest"
	"github.com/causeway/causeway/kinds"
	"github.com/causeway/causeway/source"
)

var update = flag.Bool("update", false, "rewrite the # want: lines of testdata/*.bad.yaml")

// TestTestdata loads testdata/*.good.yaml, which must load, and testdata/*.bad.yaml, which
// must report exactly the problems, with file:line:col, that their # want: lines list.
func TestTestdata(t *testing.T) {
	deftest.Run(t, kinds.Default(), *update, func(t *testing.T, cfg *config.Config) {
		if len(cfg.ByKind(source.Kind)) == 0 {
			t.Fatal("no source loaded")
		}
	})
}
