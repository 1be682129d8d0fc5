package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/problem"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newSendCmd) }

func newSendCmd() *cobra.Command {
	var (
		ev      message.Event
		data    string
		server  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "send --type T --source S [--data JSON|@file]",
		Short: "Publish one message through a running node's ingestion endpoint",
		Long: `Send one CloudEvent to POST /v1/messages of a running node and print its id once the
node has stored it. --data takes JSON inline, @path to read a file, or @- for standard input.`,
		Example: `  causeway send --type order.created --source webshop --data '{"orderId":"A-1001"}'
  causeway send --type order.created --source webshop --data @order.json --server http://causeway:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data != "" {
				raw, err := readData(data, cmd.InOrStdin())
				if err != nil {
					return err
				}
				ev.Data = raw
			}
			id, err := send(server, &ev, timeout)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ev.Type, "type", "", "message type (a MessageType name) (required)")
	f.StringVar(&ev.Source, "source", "", "source of the message, e.g. the producing system (required)")
	f.StringVar(&ev.Subject, "subject", "", "subject of the message, e.g. a business key")
	f.StringVar(&ev.ID, "id", "", "message id (default: a new ULID); resending the same id is stored once")
	f.StringVar(&ev.CorrelationID, "correlation-id", "", "correlation id of the business transaction")
	f.StringVar(&data, "data", "", "data as JSON, @file or @- for standard input")
	f.StringVar(&server, "server", "http://127.0.0.1:8080", "base URL of the node's http listener")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the node's answer")
	_ = cmd.MarkFlagRequired("type")
	_ = cmd.MarkFlagRequired("source")
	return withEnv(cmd)
}

func readData(arg string, stdin io.Reader) (json.RawMessage, error) {
	var raw []byte
	var err error
	switch {
	case arg == "@-":
		raw, err = io.ReadAll(stdin)
	case strings.HasPrefix(arg, "@"):
		raw, err = os.ReadFile(arg[1:])
	default:
		raw = []byte(arg)
	}
	if err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("--data: not valid JSON")
	}
	return json.RawMessage(raw), nil
}

// send posts the event in the structured mode and returns the id the node assigned.
func send(server string, ev *message.Event, timeout time.Duration) (string, error) {
	body, err := ev.MarshalJSON()
	if err != nil {
		return "", err
	}
	url := strings.TrimRight(server, "/") + "/v1/messages"
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("--server %q: %w", server, err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return "", fmt.Errorf("send to %s: %w", url, err)
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusAccepted {
		return "", problemError(resp.StatusCode, respBody)
	}
	var ok struct {
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal(respBody, &ok); err != nil || len(ok.IDs) != 1 {
		return "", fmt.Errorf("unexpected answer from %s: %s", url, respBody)
	}
	return ok.IDs[0], nil
}

// problemError turns a problem details answer into an error that lists every problem.
func problemError(status int, body []byte) error {
	var p problem.Details
	if err := json.Unmarshal(body, &p); err != nil || p.Status == 0 {
		return fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(string(body)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: %s", p.Status, p.Title, p.Detail)
	if p.RunID != "" {
		fmt.Fprintf(&b, " (run %s)", p.RunID)
	}
	if len(p.Errors) > 3 {
		for _, e := range p.Errors {
			fmt.Fprintf(&b, "\n  %s: %s", e.Pointer, e.Detail)
		}
	}
	return errors.New(b.String())
}
