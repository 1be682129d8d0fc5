package main

import (
	"bytes"
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

func init() { commands = append(commands, newRunsCmd) }

func newRunsCmd() *cobra.Command {
	var server string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "Find flow runs and show their step history",
		Long: `List the flow runs a node has made, newest first, filtered by flow, status, ordering
key, correlation id, trigger message or start time; show one run with its steps. Both read
the node's management API (--admin, the admin listener).`,
	}
	f := cmd.PersistentFlags()
	f.StringVar(&server, "admin", "http://127.0.0.1:8081", "base URL of the node's admin listener (management API)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the node's answer")

	var q struct {
		flow, status, key, correlation, message string
		since                                   time.Duration
		limit                                   int
		json                                    bool
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List runs, newest first",
		Example: `  causeway runs list --flow ship-paid-orders --status failed
  causeway runs list --key cust-42 --since 24h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := url.Values{}
			for name, val := range map[string]string{"flow": q.flow, "status": q.status, "key": q.key, "correlationId": q.correlation, "message": q.message} {
				if val != "" {
					v.Set(name, val)
				}
			}
			if q.since > 0 {
				v.Set("from", time.Now().Add(-q.since).UTC().Format(time.RFC3339Nano))
			}
			v.Set("limit", fmt.Sprint(q.limit))
			body, err := getAdmin(server, "/v1/runs?"+v.Encode(), timeout)
			if err != nil {
				return err
			}
			if q.json {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var answer struct {
				Runs []struct {
					ID, Flow, Status, Key, Error string
					Started, Ended               time.Time
					TriggerMessageID             string `json:"triggerMessageId"`
				} `json:"runs"`
			}
			if err := json.Unmarshal(body, &answer); err != nil {
				return fmt.Errorf("unexpected answer: %w", err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "RUN\tFLOW\tSTATUS\tSTARTED\tDURATION\tKEY\tMESSAGE\tERROR")
			for _, r := range answer.Runs {
				dur := "-"
				if !r.Ended.IsZero() {
					dur = r.Ended.Sub(r.Started).Round(time.Millisecond).String()
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Flow, r.Status, r.Started.Local().Format(time.DateTime),
					dur, orDash(r.Key), orDash(r.TriggerMessageID), firstLine(r.Error))
			}
			return w.Flush()
		},
	}
	lf := list.Flags()
	lf.StringVar(&q.flow, "flow", "", "only runs of this flow")
	lf.StringVar(&q.status, "status", "", "only runs with this status: running, succeeded, failed or waiting")
	lf.StringVar(&q.key, "key", "", "only runs for this ordering key (the flow's key expression's value)")
	lf.StringVar(&q.correlation, "correlation-id", "", "only runs in this business transaction")
	lf.StringVar(&q.message, "message", "", "only runs triggered by this message id")
	lf.DurationVar(&q.since, "since", 0, "only runs started within this long (e.g. 24h)")
	lf.IntVar(&q.limit, "limit", 50, "at most this many runs (1-1000)")
	lf.BoolVar(&q.json, "json", false, "print the API's JSON instead of a table")

	show := &cobra.Command{
		Use:   "show RUN-ID",
		Short: "Show one run with every step: input, output, attempts, duration and error",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := getAdmin(server, "/v1/runs/"+url.PathEscape(args[0]), timeout)
			if err != nil {
				return err
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				return fmt.Errorf("unexpected answer: %w", err)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		},
	}
	resubmit := &cobra.Command{
		Use:   "resubmit RUN-ID",
		Short: "Start a new run from the same trigger as a run, linked to it; print the new run's id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := strings.TrimRight(server, "/") + "/v1/runs/" + url.PathEscape(args[0]) + "/resubmit"
			resp, err := (&http.Client{Timeout: timeout}).Post(u, "application/json", nil)
			if err != nil {
				return fmt.Errorf("%s: %w", u, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if resp.StatusCode != http.StatusAccepted {
				return problemError(resp.StatusCode, body)
			}
			var answer struct {
				RunID string `json:"runId"`
			}
			if err := json.Unmarshal(body, &answer); err != nil || answer.RunID == "" {
				return fmt.Errorf("unexpected answer: %s", body)
			}
			fmt.Fprintln(cmd.OutOrStdout(), answer.RunID)
			return nil
		},
	}
	cmd.AddCommand(list, show, resubmit)
	withEnv(list)
	withEnv(show)
	withEnv(resubmit)
	return withEnv(cmd)
}

// getAdmin reads a path of the management API and returns the body of a 200 answer.
func getAdmin(server, path string, timeout time.Duration) ([]byte, error) {
	u := strings.TrimRight(server, "/") + path
	resp, err := (&http.Client{Timeout: timeout}).Get(u)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, problemError(resp.StatusCode, body)
	}
	return body, nil
}

// sendAdmin sends payload as JSON to a path of the management API with the actor header
// (for the audit trail) and returns the body of a 2xx answer; any other answer is an error
// with the problem's words.
func sendAdmin(server, method, path string, payload any, actor string, timeout time.Duration) ([]byte, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(method, strings.TrimRight(server, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Causeway-Actor", actor)
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode/100 != 2 {
		return nil, problemError(resp.StatusCode, raw)
	}
	return raw, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}
