package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newSystemsCmd) }

func newSystemsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "systems", Short: "Work with the systems of a running node"}
	var admin string
	var timeout time.Duration
	check := &cobra.Command{
		Use:   "check NAME",
		Short: "Try a system's connections (HTTP, SQL) from a running node and report what works",
		Long: `Check asks a node (GET /v1/systems/NAME/check) to try every connection the system
declares: an HTTP GET of its base URL with its TLS settings and credentials, a ping and
SELECT 1 on its database. It prints one line per connection and exits 1 when one fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := strings.TrimRight(admin, "/") + "/v1/systems/" + url.PathEscape(args[0]) + "/check"
			resp, err := (&http.Client{Timeout: timeout}).Get(u)
			if err != nil {
				return fmt.Errorf("%s: %w", u, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
				return problemError(resp.StatusCode, body)
			}
			var res struct {
				OK     bool `json:"ok"`
				Checks []struct {
					Connector, Detail, Error string
					OK                       bool
					DurationMS               int64 `json:"durationMs"`
				} `json:"checks"`
			}
			if err := json.Unmarshal(body, &res); err != nil {
				return problemError(resp.StatusCode, body)
			}
			out := cmd.OutOrStdout()
			for _, c := range res.Checks {
				if c.OK {
					fmt.Fprintf(out, "ok    %-5s %s (%d ms)\n", c.Connector, c.Detail, c.DurationMS)
				} else {
					fmt.Fprintf(out, "FAIL  %-5s %s\n", c.Connector, c.Error)
				}
			}
			if !res.OK {
				return silentExit(1)
			}
			return nil
		},
	}
	f := check.Flags()
	f.StringVar(&admin, "admin", "http://127.0.0.1:8081", "base URL of the node's admin listener (management API)")
	f.DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the node's answer")
	cmd.AddCommand(withEnv(check))
	return cmd
}
