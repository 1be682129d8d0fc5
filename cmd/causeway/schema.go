package main

import (
	"github.com/spf13/cobra"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/kinds"
)

func init() { commands = append(commands, newSchemaCmd) }

// newSchemaCmd builds "causeway schema", which prints the JSON Schema of definition
// documents, the same bytes as the committed schema/causeway.schema.json.
func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of definition files, for editor completion",
		Long: `Schema prints the JSON Schema (draft 2020-12) of one definition document, generated from
the registered kinds. Point an editor at it for completion and checks while typing, for
example with a first line in each definition file such as

  # yaml-language-server: $schema=../schema/causeway.schema.json`,
		Example: `  causeway schema > causeway.schema.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			schema, err := config.JSONSchema(kinds.Default())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(schema)
			return err
		},
	}
}
