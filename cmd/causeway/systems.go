package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
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
	pf := cmd.PersistentFlags()
	pf.StringVar(&admin, "admin", "http://127.0.0.1:8081", "base URL of the node's admin listener (management API)")
	pf.DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the node's answer")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "Show every system's status, since when and why, and the deliveries waiting for it",
		Long: `List prints each system's status (online, degraded, offline, maintenance), since when,
what set it (probe, breaker, window, manual) and why, and how many deliveries are parked for
it, waiting for a retry, and in the errors queue.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := getAdmin(admin, "/v1/systems", timeout)
			if err != nil {
				return err
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var answer struct {
				Systems []struct {
					Name, Status, Cause, Reason, Actor string
					Since, Until                       time.Time
					Parked, Retrying, Errored          int
				} `json:"systems"`
			}
			if err := json.Unmarshal(body, &answer); err != nil {
				return fmt.Errorf("unexpected answer: %w", err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SYSTEM\tSTATUS\tSINCE\tUNTIL\tCAUSE\tPARKED\tRETRYING\tERRORS\tREASON")
			for _, s := range answer.Systems {
				until := "-"
				if !s.Until.IsZero() {
					until = s.Until.Local().Format(time.DateTime)
				}
				reason := s.Reason
				if s.Actor != "" {
					reason += " (" + s.Actor + ")"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, s.Status, s.Since.Local().Format(time.DateTime), until,
					s.Cause, s.Parked, s.Retrying, s.Errored, orDash(firstLine(reason)))
			}
			return w.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a table")

	var until, reason, actorName string
	set := &cobra.Command{
		Use:   "set-status NAME online|degraded|offline|maintenance|auto",
		Short: "Switch a system's status by hand (auto gives it back to probes, breaker and windows)",
		Long: `set-status switches a system's status on every node at once, until --until (a duration
from now, or an RFC 3339 time) or until it is set to auto. Deliveries to a system that is
offline or in maintenance are parked, retried or failed as its delivery.whenOffline says.
The switch and the change are recorded with your name (--actor) and --reason.`,
		Example: `  causeway systems set-status erp maintenance --until 2h --reason "ERP upgrade"
  causeway systems set-status erp auto`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := sendAdmin(admin, http.MethodPut, "/v1/systems/"+url.PathEscape(args[0])+"/status",
				map[string]string{"status": args[1], "until": until, "reason": reason}, actorName, timeout)
			if err != nil {
				return err
			}
			var s struct {
				Name, Status, Cause, Reason string
				Until                       time.Time
				Parked                      int
			}
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("unexpected answer: %s", raw)
			}
			line := fmt.Sprintf("%s is %s (%s)", s.Name, s.Status, s.Cause)
			if !s.Until.IsZero() {
				line += " until " + s.Until.Local().Format(time.DateTime)
			}
			if s.Parked > 0 {
				line += fmt.Sprintf("; %d deliveries parked", s.Parked)
			}
			fmt.Fprintln(cmd.OutOrStdout(), line)
			return nil
		},
	}
	sf := set.Flags()
	sf.StringVar(&until, "until", "", "when the switch ends: a duration from now (2h) or an RFC 3339 time; empty holds it until set to auto")
	sf.StringVar(&reason, "reason", "", "why (required, except for auto)")
	sf.StringVar(&actorName, "actor", whoami(), "who is switching, for the audit trail")
	cmd.AddCommand(withEnv(check), withEnv(list), withEnv(set))
	return cmd
}
