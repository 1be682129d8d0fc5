package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/causeway/causeway/catalog"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/kinds"
)

func init() { commands = append(commands, newTestCmd) }

// newTestCmd builds "causeway test DIR".
func newTestCmd() *cobra.Command {
	var env, run string
	cmd := &cobra.Command{
		Use:   "test DIR",
		Short: "Run the flow test cases (FlowTest definitions) under DIR",
		Long: `Test loads the definitions under DIR as validate does, then runs every FlowTest: the flow
under test runs in this process, its calls answered by the test's stubs, and the calls it
made, the messages it published, its reply, status and variables are compared with the
test's expectations. No live system, bus or data directory is needed, so it fits any CI.
It prints one line per test, and for a failing test every expectation that did not hold;
it exits 1 when a test fails or the definitions have problems.`,
		Example: `  causeway test examples/quickstart
  causeway test defs --run 'large-order'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var keep func(string) bool
			if run != "" {
				re, err := regexp.Compile(run)
				if err != nil {
					return fmt.Errorf("--run: %w", err)
				}
				keep = re.MatchString
			}
			return runTests(cmd.Context(), cmd.OutOrStdout(), args[0], env, keep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&env, "env", "", "environment whose values file, environments/NAME.yaml under DIR, supplies ${NAME} values")
	f.StringVar(&run, "run", "", "run only the tests whose name matches this regular expression")
	return withEnv(cmd)
}

func runTests(ctx context.Context, out io.Writer, dir, env string, keep func(string) bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// Tests need no secrets: every call is answered by a stub.
	cfg, err := config.Load(dir, config.Options{Registry: kinds.Default(), Env: env, SkipSecrets: true})
	if err != nil {
		var list config.ErrorList
		if !errors.As(err, &list) {
			return err
		}
		fmt.Fprintln(out, list.Error())
		return silentExit(1)
	}
	defer cfg.Cleanup()
	cat := catalog.New(cfg)
	check := func(typ string, data []byte) error {
		t, ok := cat.Lookup(typ)
		if !ok {
			return fmt.Errorf("no MessageType %q is defined", typ)
		}
		return t.Validate(data)
	}
	results := flow.RunTests(ctx, cfg, check, keep)
	failed := 0
	for _, r := range results {
		where := relPos(dir, r.Pos)
		if r.Passed() {
			fmt.Fprintf(out, "ok    %s (flow %s) %s\n", r.Name, r.Flow, r.Duration.Round(100_000))
			continue
		}
		failed++
		fmt.Fprintf(out, "FAIL  %s (flow %s) %s\n", r.Name, r.Flow, where)
		for _, line := range r.Failures {
			fmt.Fprintf(out, "      %s\n", line)
		}
	}
	switch {
	case len(results) == 0:
		fmt.Fprintf(out, "no FlowTest definitions in %s\n", filepath.Clean(dir))
	case failed > 0:
		fmt.Fprintf(out, "FAIL: %d of %d tests failed\n", failed, len(results))
		return silentExit(1)
	default:
		fmt.Fprintf(out, "PASS: %d tests\n", len(results))
	}
	return nil
}

// relPos shows a definition's position relative to the directory tested.
func relPos(dir string, p config.Position) string {
	s := p.String()
	if rel, err := filepath.Rel(dir, p.File); err == nil && !strings.HasPrefix(rel, "..") {
		s = strings.Replace(s, p.File, rel, 1)
	}
	return s
}
