package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/kinds"
)

func init() { commands = append(commands, newValidateCmd) }

// validateFlags are the options of causeway validate.
type validateFlags struct {
	env         string
	secretsDir  string
	skipSecrets bool
}

// newValidateCmd builds "causeway validate DIR". Its flags can also be set with the
// CAUSEWAY_ENV, CAUSEWAY_SECRETS_DIR and CAUSEWAY_SKIP_SECRETS variables, so a pipeline can
// set them once for every step.
func newValidateCmd() *cobra.Command {
	var f validateFlags
	cmd := &cobra.Command{
		Use:   "validate DIR",
		Short: "Check integration definitions without running them",
		Long: `Validate loads every definition under DIR as the platform would: YAML syntax, unknown
fields, types, required fields, references between resources, duplicate names, ${...}
substitution and each kind's own checks, such as compiling JSON Schemas. It prints every
problem as file:line:col: message, one per line, and exits 1 when there is any; otherwise
it prints a one-line summary and exits 0.`,
		Example: `  causeway validate examples/quickstart
  causeway validate defs --env staging --secrets-dir /run/secrets
  causeway validate defs --env production --skip-secrets    # in CI, without the secrets`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runValidate(cmd.OutOrStdout(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.env, "env", "", "environment whose values file, environments/NAME.yaml under DIR, supplies ${NAME} values")
	fl.StringVar(&f.secretsDir, "secrets-dir", "", "directory holding one file per secret, for ${secret:NAME}")
	fl.BoolVar(&f.skipSecrets, "skip-secrets", false, "check ${secret:NAME} references for syntax only, for runs without the secrets")
	return withEnv(cmd)
}

// runValidate loads dir and reports the outcome on out.
func runValidate(out io.Writer, dir string, f validateFlags) error {
	cfg, err := config.Load(dir, config.Options{
		Registry:    kinds.Default(),
		Env:         f.env,
		SecretsDir:  f.secretsDir,
		SkipSecrets: f.skipSecrets,
	})
	if err != nil {
		var list config.ErrorList
		if !errors.As(err, &list) {
			return err
		}
		if _, werr := fmt.Fprintln(out, list.Error()); werr != nil {
			return werr
		}
		return silentExit(1)
	}
	cleanupErr := cfg.Cleanup()
	_, err = fmt.Fprintln(out, validSummary(cfg, filepath.Clean(dir)))
	return errors.Join(err, cleanupErr)
}

// validSummary describes a valid configuration in one line:
// "valid: 4 resources (3 MessageType, 1 System) in examples/quickstart".
func validSummary(cfg *config.Config, dir string) string {
	counts := map[string]int{}
	for _, r := range cfg.All() {
		counts[r.Kind]++
	}
	total := len(cfg.All())
	noun := "resources"
	if total == 1 {
		noun = "resource"
	}
	if total == 0 {
		return fmt.Sprintf("valid: 0 resources in %s", dir)
	}
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%d %s", counts[k], k)
	}
	return fmt.Sprintf("valid: %d %s (%s) in %s", total, noun, strings.Join(parts, ", "), dir)
}
