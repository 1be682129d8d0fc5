package gateway_test

import (
	"flag"
	"testing"

	"github.com/causeway/causeway/internal/testutil/deftest"
	"github.com/causeway/causeway/kinds"
)

var update = flag.Bool("update", false, "rewrite the # want: lines of testdata/*.bad.yaml")

// TestTestdata loads every testdata/*.good.yaml, which must load without problems, and every
// testdata/*.bad.yaml, which must report exactly the problems its "# want:" lines list.
func TestTestdata(t *testing.T) {
	deftest.Run(t, kinds.Default(), *update, nil)
}
