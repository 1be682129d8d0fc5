package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/causeway/causeway/demo"
	"github.com/causeway/causeway/telemetry"
)

func init() { commands = append(commands, newDemoCmd) }

func newDemoCmd() *cobra.Command {
	var (
		o                   demo.Options
		logFormat, logLevel string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a self-contained demo: the platform with a CRM and an ERP it starts itself",
		Long: `Run a node with the definitions of examples/demo and two small systems it starts
itself: a CRM with an HTTP API that calls a signed webhook when a customer changes, and an
ERP that is only a SQLite database. New ERP orders become messages (a sqlPoll source) and
notes in the CRM (a flow calling its API); CRM changes become messages (a webhook source)
and rows in the ERP's database (a flow running SQL). The demo prints what has moved, and
the management API shows every message and run.`,
		Example: `  causeway demo
  causeway demo --for 30s --every 500ms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := telemetry.NewLogger(os.Stderr, logFormat, logLevel)
			if err != nil {
				return err
			}
			o.Logger, o.Out = log, cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return demo.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.HTTPAddr, "http-addr", "127.0.0.1:8080", "public listener: ingestion and webhooks")
	f.StringVar(&o.AdminAddr, "admin-addr", "127.0.0.1:8081", "admin listener: management API, /metrics")
	f.StringVar(&o.DataDir, "data", "", "keep the demo's data here (default: a temporary directory, removed at the end)")
	f.DurationVar(&o.Every, "every", 2*time.Second, "the pace: a new ERP order at each tick, a CRM change at every other")
	f.DurationVar(&o.For, "for", 0, "end the demo after this long (default: run until Ctrl-C)")
	f.StringVar(&logFormat, "log-format", "auto", "log format: auto, json or text")
	f.StringVar(&logLevel, "log-level", "warn", "log level of the node: debug, info, warn or error")
	return withEnv(cmd)
}
