package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/causeway/causeway/gateway"
)

func init() { commands = append(commands, newConsumersCmd) }

func newConsumersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "consumers", Short: "Work with the consumers of the gateway's APIs"}
	var name string
	key := &cobra.Command{
		Use:   "key",
		Short: "Make a new API key and print it with the hash a Consumer definition holds",
		Long: `Key makes a random API key (256 bits) and prints it once, with the entry to add to the
keys of a Consumer definition. Only the hash goes into the definition: hand the key to the
consumer and keep no other copy. To rotate a key, add the new one, let the consumer switch,
then mark the old one revoked: true.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, hash, err := gateway.NewKey()
			if err != nil {
				return err
			}
			if name == "" {
				name = time.Now().UTC().Format("2006-01-02")
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "key (give it to the consumer; it is not shown again):\n  %s\n\n", k)
			fmt.Fprintf(out, "add to the Consumer's spec.keys:\n  - {name: %s, sha256: %s}\n", name, hash)
			return nil
		},
	}
	key.Flags().StringVar(&name, "name", "", "the key's name in the definition (default: today's date)")
	cmd.AddCommand(key)
	return cmd
}
