package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"
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

	var admin, reason, actorName string
	var timeout time.Duration
	revocation := func(method, consumer, keyName string) ([]byte, error) {
		return sendAdmin(admin, method, "/v1/consumers/"+url.PathEscape(consumer)+"/keys/"+url.PathEscape(keyName)+"/revocation",
			map[string]string{"reason": reason}, actorName, timeout)
	}
	revoke := &cobra.Command{
		Use:   "revoke CONSUMER KEY",
		Short: "Refuse a Consumer's API key on every node at once (a leaked key), without a deployment",
		Long: `Revoke refuses the key named KEY in Consumer CONSUMER's definition on every node that shares
the bus, within moments and until it is reinstated: requests with it get 401. The revocation
is kept on the bus, so nodes started later refuse the key too, and the audit trail records
it with your name (--actor) and --reason. Mark the key revoked: true (or remove it) in the
definition at the next deployment; the run-time revocation can then be lifted.`,
		Example: `  causeway consumers revoke webshop 2026-05 --reason "key posted in a public repository"`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := revocation(http.MethodPut, args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s of %s is revoked on every node\n", args[1], args[0])
			return nil
		},
	}
	reinstate := &cobra.Command{
		Use:   "reinstate CONSUMER KEY",
		Short: "Lift a run-time revocation of a Consumer's API key",
		Long:  `Reinstate lifts what revoke did. A key its definition marks revoked: true stays refused.`,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := revocation(http.MethodDelete, args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s of %s is no longer revoked at run time\n", args[1], args[0])
			return nil
		},
	}
	revocations := &cobra.Command{
		Use:   "revocations",
		Short: "List the API keys revoked at run time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := getAdmin(admin, "/v1/revocations", timeout)
			if err != nil {
				return err
			}
			var answer struct {
				Revocations []gateway.Revocation `json:"revocations"`
			}
			if err := json.Unmarshal(body, &answer); err != nil {
				return fmt.Errorf("unexpected answer: %w", err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CONSUMER\tKEY\tSINCE\tBY\tREASON")
			for _, r := range answer.Revocations {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Consumer, r.Key, r.At.Local().Format(time.DateTime), r.Actor, firstLine(r.Reason))
			}
			return w.Flush()
		},
	}
	for _, c := range []*cobra.Command{revoke, reinstate, revocations} {
		f := c.Flags()
		f.StringVar(&admin, "admin", "http://127.0.0.1:8081", "base URL of the node's admin listener (management API)")
		f.DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the node's answer")
		if c != revocations {
			f.StringVar(&actorName, "actor", whoami(), "who is acting, for the audit trail")
			f.StringVar(&reason, "reason", "", "why (required to revoke)")
		}
		cmd.AddCommand(withEnv(c))
	}
	return cmd
}
