package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envName is the variable that sets a flag: --http-addr is CAUSEWAY_HTTP_ADDR.
func envName(flag string) string {
	return "CAUSEWAY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnv gives every flag not set on the command line its value from the environment, so
// that a container or a service unit can configure Causeway with variables alone.
func bindEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, serr)
			}
		}
	})
	return err
}

// withEnv makes cmd read its flags from CAUSEWAY_* variables, and documents that.
func withEnv(cmd *cobra.Command) *cobra.Command {
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if err := bindEnv(c); err != nil {
			return err
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
	cmd.Long = strings.TrimSpace(cmd.Long + "\n\nEvery flag can also be set with a CAUSEWAY_* variable: --http-addr is CAUSEWAY_HTTP_ADDR.")
	return cmd
}
