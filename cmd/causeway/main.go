// Command causeway is the Causeway integration platform: one binary that loads integration
// definitions, runs the bus, ingests messages and serves the console and management API.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// commands is filled by each command file's init function, so that main.go stays thin and
// every command group lives in a file of its own.
var commands []func() *cobra.Command

func main() {
	root := &cobra.Command{
		Use:           "causeway",
		Short:         "Causeway: an enterprise integration platform in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range commands {
		root.AddCommand(c())
	}
	if err := root.Execute(); err != nil {
		var ec exitCoder
		code := 1
		if asExitCoder(err, &ec) {
			code = ec.ExitCode()
		}
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "causeway:", msg)
		}
		os.Exit(code)
	}
}
