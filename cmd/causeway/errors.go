package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newErrorsCmd) }

// errorsFilter is the filter flags of errors list, replay and discard.
type errorsFilter struct {
	origin, flow, source, system, typ, fingerprint, class string
	since                                                 time.Duration
}

func (f *errorsFilter) flags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.flow, "flow", "", "only entries of this flow")
	fs.StringVar(&f.system, "system", "", "only entries whose failing call went to this system")
	fs.StringVar(&f.typ, "type", "", "only entries of messages of this type")
	fs.StringVar(&f.fingerprint, "fingerprint", "", "only entries that failed this way (the fingerprint list shows)")
	fs.StringVar(&f.class, "class", "", "only transient (out of retries) or permanent failures")
	fs.StringVar(&f.origin, "origin", "", "only entries from flows (flow) or from sources (source)")
	fs.StringVar(&f.source, "source", "", "only entries of this source")
	fs.DurationVar(&f.since, "since", 0, "only entries from within this long (e.g. 2h)")
}

func (f *errorsFilter) values() url.Values {
	v := url.Values{}
	for name, val := range map[string]string{"origin": f.origin, "flow": f.flow, "source": f.source, "system": f.system,
		"type": f.typ, "fingerprint": f.fingerprint, "class": f.class} {
		if val != "" {
			v.Set(name, val)
		}
	}
	if f.since > 0 {
		v.Set("from", time.Now().Add(-f.since).UTC().Format(time.RFC3339Nano))
	}
	return v
}

func (f *errorsFilter) body() map[string]string {
	out := map[string]string{}
	for k, vs := range f.values() {
		out[k] = vs[0]
	}
	return out
}

// whoami names the operator for the audit trail.
func whoami() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

func newErrorsCmd() *cobra.Command {
	var server, actorName string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "errors",
		Short: "Work the errors queue: list, show, replay and discard failed deliveries",
		Long: `The errors queue holds the deliveries that failed for good: out of retries, or failed
permanently. List and filter them, show one with its message and attempt history, replay
them to the one flow that failed (optionally patching the data first) or discard them with
a reason. Replay and discard take an entry's number, or a filter for many; --dry-run shows
what would happen. Every action is recorded in the audit trail with your name (--actor).`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&server, "admin", "http://127.0.0.1:8081", "base URL of the node's admin listener (management API)")
	pf.DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the node's answer (bulk actions are throttled)")
	pf.StringVar(&actorName, "actor", whoami(), "who is acting, for the audit trail")

	var lf errorsFilter
	var limit int
	var asJSON bool
	list := &cobra.Command{
		Use:     "list",
		Short:   "List entries, oldest first",
		Example: "  causeway errors list --flow ship-paid-orders --since 24h\n  causeway errors list --system erp --class transient",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := lf.values()
			v.Set("limit", fmt.Sprint(limit))
			body, err := getAdmin(server, "/v1/errors?"+v.Encode(), timeout)
			if err != nil {
				return err
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var answer struct {
				Entries []struct {
					Seq                                                    uint64
					Origin, Flow, Source, System, Step, Class, Fingerprint string
					Reason                                                 string
					RetryCount                                             int `json:"retrycount"`
					Time                                                   time.Time
				} `json:"entries"`
				Next string `json:"next"`
			}
			if err := json.Unmarshal(body, &answer); err != nil {
				return fmt.Errorf("unexpected answer: %w", err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SEQ\tTIME\tWHERE\tSYSTEM\tCLASS\tRETRIES\tFINGERPRINT\tREASON")
			for _, e := range answer.Entries {
				where := "flow " + e.Flow + " step " + e.Step
				if e.Origin == "source" {
					where = "source " + e.Source
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.Seq, e.Time.Local().Format(time.DateTime), where, orDash(e.System),
					e.Class, e.RetryCount, e.Fingerprint, firstLine(e.Reason))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if answer.Next != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more entries: raise --limit (now %d)\n", limit)
			}
			return nil
		},
	}
	lf.flags(list)
	list.Flags().IntVar(&limit, "limit", 100, "at most this many entries (1-1000)")
	list.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a table")

	show := &cobra.Command{
		Use:   "show SEQ",
		Short: "Show an entry: the message, the reason, every attempt and the run's steps",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := getAdmin(server, "/v1/errors/"+url.PathEscape(args[0]), timeout)
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

	act := func(action string) *cobra.Command {
		var f errorsFilter
		var all, dry bool
		var reason, patch string
		var rate float64
		var max int
		use, short := "replay [SEQ]", "Re-deliver entries to the flow that failed, with retrycount reset"
		example := `  causeway errors replay 42
  causeway errors replay 42 --patch '.warehouse = "W-2"'
  causeway errors replay --system erp --since 2h --dry-run`
		if action == "discard" {
			use, short = "discard [SEQ]", "Remove entries from the queue, recording why"
			example = `  causeway errors discard 42 --reason "test order"
  causeway errors discard --fingerprint 3f2a9c1d0b7e6a55 --reason "duplicate of ticket 123"`
		}
		c := &cobra.Command{
			Use: use, Short: short, Example: example, Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				payload := map[string]any{"dryRun": dry}
				if reason != "" {
					payload["reason"] = reason
				}
				if patch != "" {
					payload["patch"] = patch
				}
				method, path := "POST", "/v1/errors/"+action
				switch {
				case len(args) == 1:
					if len(f.body()) > 0 || all {
						return fmt.Errorf("give an entry's number or a filter, not both")
					}
					path = "/v1/errors/" + url.PathEscape(args[0]) + "/replay"
					if action == "discard" {
						method, path = "DELETE", "/v1/errors/"+url.PathEscape(args[0])
					}
				default:
					if len(f.body()) == 0 && !all {
						return fmt.Errorf("give an entry's number, a filter (--flow, --system, --fingerprint …), or --all")
					}
					payload["filter"], payload["all"], payload["rate"], payload["limit"] = f.body(), all, rate, max
				}
				raw, err := sendAdmin(server, method, path, payload, actorName, timeout)
				if err != nil {
					return err
				}
				return printOutcomes(cmd, action, raw)
			},
		}
		f.flags(c)
		fs := c.Flags()
		fs.BoolVar(&all, "all", false, "every entry in the queue (when no filter is given)")
		fs.BoolVar(&dry, "dry-run", false, "show what would be done, and do nothing")
		fs.StringVar(&reason, "reason", "", "why, for the audit trail (required to discard)")
		fs.Float64Var(&rate, "rate", 20, "entries a second, for many")
		fs.IntVar(&max, "max", 0, "at most this many entries (0: all that match)")
		if action == "replay" {
			fs.StringVar(&patch, "patch", "", "a jq program that edits the message's data before the replay (. is the data); the result must match the message type")
		}
		return withEnv(c)
	}
	cmd.AddCommand(withEnv(list), withEnv(show), act("replay"), act("discard"))
	return withEnv(cmd)
}

// printOutcomes prints what a replay or discard did, one line per entry.
func printOutcomes(cmd *cobra.Command, action string, raw []byte) error {
	var answer map[string]json.RawMessage
	if err := json.Unmarshal(raw, &answer); err != nil {
		return fmt.Errorf("unexpected answer: %s", raw)
	}
	type outcome struct {
		Seq                           uint64
		Entry, Flow, MessageID, RunID string
		Error                         string
	}
	key := map[string]string{"replay": "replayed", "discard": "discarded"}[action]
	var outs []outcome
	if err := json.Unmarshal(answer[key], &outs); err != nil {
		var one outcome
		if err := json.Unmarshal(answer[key], &one); err != nil {
			return fmt.Errorf("unexpected answer: %s", raw)
		}
		outs = []outcome{one}
	}
	var dry bool
	_ = json.Unmarshal(answer["dryRun"], &dry)
	verb := map[string]string{"replay": "replayed", "discard": "discarded"}[action]
	if dry {
		verb = "would be " + verb
	}
	out := cmd.OutOrStdout()
	failed := 0
	for _, o := range outs {
		switch {
		case o.Error != "":
			failed++
			fmt.Fprintf(out, "%d: FAILED: %s\n", o.Seq, o.Error)
		case action == "replay":
			fmt.Fprintf(out, "%d: %s to flow %s as message %s (run %s)\n", o.Seq, verb, o.Flow, o.MessageID, o.RunID)
		default:
			fmt.Fprintf(out, "%d: %s\n", o.Seq, verb)
		}
	}
	fmt.Fprintf(out, "%d entries %s", len(outs)-failed, verb)
	if failed > 0 {
		fmt.Fprintf(out, ", %d failed\n", failed)
		return silentExit(1)
	}
	fmt.Fprintln(out)
	if msg, ok := answer["interrupted"]; ok {
		return fmt.Errorf("interrupted: %s", msg)
	}
	return nil
}
