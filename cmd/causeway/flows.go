package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newFlowsCmd) }

func newFlowsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "flows",
		Short: "Work with the flows of a running node",
	}
	var admin, data string
	var timeout time.Duration
	var verbose bool
	invoke := &cobra.Command{
		Use:   "invoke NAME [--data JSON|@file|@-]",
		Short: "Start a run of a flow with an invoke trigger and print its reply",
		Long: `Invoke a flow by name through a node's management API (POST /v1/flows/NAME/invoke): the
data becomes the run's trigger data, and the command prints the body of the flow's reply
once it answers. A run that fails, or does not answer within the flow's invoke timeout, is
an error that names the run, which goes on and can be looked at with causeway runs show.`,
		Example: `  causeway flows invoke lookup-order --data '{"id":"A-1001"}'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := []byte("null")
			if data != "" {
				raw, err := readData(data, cmd.InOrStdin())
				if err != nil {
					return err
				}
				body = raw
			}
			u := strings.TrimRight(admin, "/") + "/v1/flows/" + url.PathEscape(args[0]) + "/invoke"
			resp, err := (&http.Client{Timeout: timeout}).Post(u, "application/json", bytes.NewReader(body))
			if err != nil {
				return fmt.Errorf("%s: %w", u, err)
			}
			defer resp.Body.Close()
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			if verbose {
				fmt.Fprintf(cmd.ErrOrStderr(), "HTTP %d, run %s\n", resp.StatusCode, resp.Header.Get("Causeway-Run-Id"))
			}
			if resp.StatusCode/100 != 2 {
				return problemError(resp.StatusCode, answer)
			}
			if len(answer) > 0 {
				out := cmd.OutOrStdout()
				if _, err := out.Write(answer); err != nil {
					return err
				}
				if answer[len(answer)-1] != '\n' {
					fmt.Fprintln(out)
				}
			}
			return nil
		},
	}
	f := invoke.Flags()
	f.StringVar(&admin, "admin", "http://127.0.0.1:8081", "base URL of the node's admin listener (management API)")
	f.StringVar(&data, "data", "", "input as JSON, @file or @- for standard input (default null)")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the node's answer (the flow's own invoke timeout applies first)")
	f.BoolVar(&verbose, "verbose", false, "print the HTTP status and the run id on standard error")
	cmd.AddCommand(withEnv(invoke))
	return cmd
}
