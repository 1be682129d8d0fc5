package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/kinds"
	"github.com/causeway/causeway/platform"
	"github.com/causeway/causeway/telemetry"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newServeCmd) }

func newServeCmd() *cobra.Command {
	var (
		o                   platform.Options
		sync, groupCommit   string
		logFormat, logLevel string
		cpuProfile          string
		memProfile          string
		gcPercent           int
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the platform: embedded bus, ingestion and management API",
		Long: `Run a Causeway node. It loads the definitions in --config, starts the embedded
NATS JetStream bus with its storage under --data (or connects to --nats), and serves
ingestion on --http-addr and the management API and metrics on --admin-addr.

A message is acknowledged (202) only once the bus has stored it; with the default
--sync always that means fsynced to disk. --sync interval:1s trades that for speed: a
power loss (not a crash of the process) may then lose up to the last second of
acknowledged messages. With --sync always, messages that arrive together are stored
in atomic batches with one fsync per batch (--group-commit), which is how fsync before
acknowledgement keeps up with load.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.ConfigDir == "" {
				// No default: serving whatever YAML happens to lie in the working directory
				// would be a surprise, and a wrong directory should be an error, not a guess.
				return errors.New("--config DIR (or CAUSEWAY_CONFIG) is required: the directory of definition files")
			}
			log, err := telemetry.NewLogger(os.Stderr, logFormat, logLevel)
			if err != nil {
				return err
			}
			if o.Sync, err = bus.ParseSync(sync); err != nil {
				return err
			}
			if o.GroupCommit, err = bus.ParseGroupCommit(groupCommit); err != nil {
				return err
			}
			o.Logger = log
			o.Registry = kinds.Default()
			if os.Getenv("GOGC") == "" && gcPercent > 0 {
				// The default of 100 collects every time the small live heap doubles: under
				// load that is many collections a second, each also shrinking the stacks
				// the next requests grow again (docs/performance.md).
				debug.SetGCPercent(gcPercent)
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer func() {
					pprof.StopCPUProfile()
					_ = f.Close()
				}()
			}
			if memProfile != "" {
				// Written when the node stops: every allocation since the start, sampled.
				defer writeAllocs(memProfile, log)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return platform.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ConfigDir, "config", "", "directory of definition files (required)")
	f.StringVar(&o.DataDir, "data", "./data", "data directory: bus storage and tracking index")
	f.StringVar(&o.Env, "env", "", "environment name: loads environments/NAME.yaml from the config directory")
	f.StringVar(&o.SecretsDir, "secrets-dir", "", "directory of secret files for ${secret:NAME}")
	f.StringVar(&o.HTTPAddr, "http-addr", ":8080", "public listener: ingestion, APIs, webhooks")
	f.StringVar(&o.AdminAddr, "admin-addr", "127.0.0.1:8081", "admin listener: management API, /metrics")
	f.StringVar(&o.NATSURL, "nats", "", "URL of an external NATS server or cluster instead of the embedded bus")
	f.StringVar(&o.NATSListen, "nats-listen", "", "give the embedded bus a client listener on this address (none by default)")
	f.StringVar(&sync, "sync", "always", `fsync policy of the embedded bus: "always" or "interval:DURATION"`)
	f.StringVar(&groupCommit, "group-commit", "auto", `publish concurrent messages in atomic batches, one fsync each: "auto" (with the embedded bus and --sync always), "on" (needs NATS 2.12+) or "off"`)
	f.IntVar(&o.Replicas, "replicas", 1, "stream replicas on an external cluster")
	f.DurationVar(&o.DedupWindow, "dedup-window", 2*time.Minute, "how long a message id is remembered to drop re-sent duplicates")
	f.DurationVar(&o.Retention, "retention", 7*24*time.Hour, "how long accepted messages are kept on the bus")
	f.Int64Var(&o.MaxMessageBytes, "max-message-bytes", 1<<20, "largest single message body (and data of a batch item)")
	f.Int64Var(&o.MaxBatchBytes, "max-batch-bytes", 10<<20, "largest batch body")
	f.IntVar(&o.MaxBatchItems, "max-batch-items", 1000, "most messages in one batch")
	f.StringVar(&o.Node, "node", "", "name of this node (default: the host name)")
	f.DurationVar(&o.FlowAckWait, "flow-ack-wait", 30*time.Second, "how long a flow's trigger delivery may go without a sign of life before it is delivered again (runs renew it while they work)")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on SIGTERM")
	f.StringVar(&logFormat, "log-format", "auto", "log format: auto, json or text")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&o.HTTPServer, "http-server", platform.EngineLean, "engine of the http listener: lean (fasthttp's connection handling, the default) or standard (net/http)")
	f.BoolVar(&o.NoFastLane, "no-fast-lane", false, "serve every gateway and ingestion request on the general path, also on the lean engine (for comparing; ADR 0013, ADR 0016)")
	f.IntVar(&gcPercent, "gc-percent", platform.DefaultGCPercent, "garbage collection target percentage (as GOGC, which wins when set); higher trades memory for throughput")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the node to this file until it stops (for performance work)")
	f.StringVar(&memProfile, "memprofile", "", "write a profile of the node's allocations to this file when it stops (for performance work)")
	return withEnv(cmd)
}

// writeAllocs writes the allocation profile of the node to path; a failure is logged, as
// the node has stopped already.
func writeAllocs(path string, log *slog.Logger) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		log.Error("writing the allocation profile failed", "path", path, "err", err)
	}
}
