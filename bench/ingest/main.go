// Command ingest measures Causeway's message ingestion against raw JetStream publishing in
// the same run on the same machine, and prints a Markdown table of messages per second and
// latency percentiles, each beside its reference as a ratio.
//
//	go run ./bench/ingest -duration 5s
//	go run ./bench/ingest -duration 10s -rounds 3 -only raw-async,raw-nofsync,http-single-always,http-single-interval,http-batch-interval
//
// Scenarios: raw JetStream publish with fsync always, one synchronous publisher and one
// pipelined (asynchronous) publisher; raw asynchronous publish without fsync (the ceiling);
// a no-op HTTP server driven by the same clients (the HTTP reference); and Causeway's POST
// /v1/messages with single messages from 64 concurrent clients and with batches of 100, each
// with --sync always and with --sync interval:1s. Servers run in processes of their own,
// started from this program, and the clients in this one.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/causeway/causeway/bus"
)

func main() {
	var c benchConfig
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "how long each scenario runs")
	flag.IntVar(&c.clients, "clients", 64, "concurrent HTTP clients for single-message ingestion")
	flag.IntVar(&c.batchClients, "batch-clients", 8, "concurrent HTTP clients for batch ingestion")
	flag.IntVar(&c.batchSize, "batch", 100, "messages per batch")
	flag.IntVar(&c.group, "group", 64, "messages per atomic batch of the raw-atomic scenarios")
	flag.IntVar(&c.window, "window", 256, "in-flight publishes of the pipelined raw reference")
	flag.IntVar(&c.rounds, "rounds", 1, "rounds: the scenarios take turns this many times, and each row is the scenario's median round")
	flag.StringVar(&clientKind, "client", "raw", "the load generator's HTTP client: raw (a lean HTTP/1.1 client, like wrk's) or nethttp (Go's net/http)")
	flag.StringVar(&idKind, "ids", "producers", "the events' ids: producers (each client counts on its own: c<client>-<request>-<item>) or uuid (random version 4 UUIDs, as the CloudEvents SDKs make them)")
	flag.StringVar(&c.only, "only", "", "comma-separated scenario names to run (default all)")
	flag.StringVar(&c.dir, "dir", "", "scratch directory (default: a new temporary one)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the load to this file, and of each server process to FILE.<scenario dir>")
	memProfile := flag.String("memprofile", "", "have each server process write a profile of its allocations to FILE.<scenario dir> when it stops")
	role := flag.String("role", "", "internal: run as the node or no-op server process of a scenario")
	syncPolicy := flag.String("sync", "always", "internal: the node process's sync policy")
	flag.Parse()
	nodeProfile, nodeAllocs = *cpuProfile, *memProfile
	if *role != "" {
		if *cpuProfile != "" {
			if f, err := os.Create(*cpuProfile); err == nil && pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
		if *memProfile != "" {
			defer func() {
				if f, err := os.Create(*memProfile); err == nil {
					_ = pprof.Lookup("allocs").WriteTo(f, 0)
					_ = f.Close()
				}
			}()
		}
		if err := serveChild(*role, c.dir, *syncPolicy); err != nil {
			fmt.Fprintln(os.Stderr, "bench "+*role+":", err)
			os.Exit(1)
		}
		return
	}
	if *cpuProfile != "" && *role == "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(c, os.Stdout); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type benchConfig struct {
	duration              time.Duration
	clients, batchClients int
	batchSize, window     int
	group, rounds         int
	only, dir             string
}

// median returns the result of the median rate (the lower middle of an even count).
func median(rs []*result) *result {
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b *result) int { return cmp.Compare(a.rate(), b.rate()) })
	return sorted[(len(sorted)-1)/2]
}

func (c benchConfig) wants(name string) bool {
	if c.only == "" {
		return true
	}
	for _, n := range strings.Split(c.only, ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

// scenario is one measured run.
type scenario struct {
	name, what string
	ref        string // name of the reference scenario, "" for references
	httpRef    string // comma-separated names of the HTTP reference scenarios, if any
	run        func(ctx context.Context, dir string) (*result, error)
}

func run(c benchConfig, out io.Writer) error {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	root := c.dir
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "causeway-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(root)
	}
	always, interval := bus.Sync{Always: true}, bus.Sync{Interval: time.Second}
	ceiling := bus.Sync{Interval: 2 * time.Minute}
	scenarios := []scenario{
		{name: "raw-sync", what: "raw JetStream publish, fsync always, 1 synchronous publisher", run: func(ctx context.Context, dir string) (*result, error) {
			return rawSync(ctx, dir, always, c.duration)
		}},
		{name: "raw-async", what: fmt.Sprintf("raw JetStream publish, fsync always, pipelined (%d in flight)", c.window), run: func(ctx context.Context, dir string) (*result, error) {
			return rawAsync(ctx, dir, always, c.duration, c.window, false)
		}},
		{name: "raw-concurrent", what: fmt.Sprintf("raw JetStream publish, fsync always, %d concurrent synchronous publishers", c.clients), run: func(ctx context.Context, dir string) (*result, error) {
			return rawConcurrent(ctx, dir, always, c.duration, c.clients)
		}},
		{name: "raw-nofsync", what: fmt.Sprintf("raw JetStream publish, no fsync, pipelined (%d in flight): the ceiling", c.window), run: func(ctx context.Context, dir string) (*result, error) {
			return rawAsync(ctx, dir, ceiling, c.duration, c.window, false)
		}},
		{name: "raw-atomic", what: fmt.Sprintf("raw JetStream atomic batches of %d, fsync always, one in flight (what group commit builds on)", c.group), run: func(ctx context.Context, dir string) (*result, error) {
			return rawAtomic(ctx, dir, always, c.duration, c.group, c.group)
		}},
		{name: "raw-nofsync-tcp", what: fmt.Sprintf("raw JetStream publish, no fsync, pipelined (%d in flight), over loopback TCP: for comparison only", c.window), run: func(ctx context.Context, dir string) (*result, error) {
			return rawAsync(ctx, dir, ceiling, c.duration, c.window, true)
		}},
		{name: "http-noop-single", what: fmt.Sprintf("HTTP reference: a handler that only reads the body and answers 202, single messages, %d clients", c.clients), run: func(ctx context.Context, dir string) (*result, error) {
			return httpNoop(ctx, "noop", dir, c.duration, c.clients, 1)
		}},
		{name: "http-noop-lean", what: fmt.Sprintf("HTTP reference on Causeway's HTTP engine: fasthttp set up as the http listener, a handler that only answers 202, single messages, %d clients", c.clients), run: func(ctx context.Context, dir string) (*result, error) {
			return httpNoop(ctx, "noop-lean", dir, c.duration, c.clients, 1)
		}},
		{name: "http-noop-batch", what: fmt.Sprintf("HTTP reference: the same, batches of %d, %d clients", c.batchSize, c.batchClients), run: func(ctx context.Context, dir string) (*result, error) {
			return httpNoop(ctx, "noop", dir, c.duration, c.batchClients, c.batchSize)
		}},
		{name: "http-single-always", httpRef: "http-noop-single,http-noop-lean", ref: "raw-async", what: fmt.Sprintf("Causeway HTTP, single messages, %d clients, --sync always", c.clients), run: func(ctx context.Context, dir string) (*result, error) {
			return httpIngest(ctx, dir, always, c.duration, c.clients, 1)
		}},
		{name: "http-batch-always", httpRef: "http-noop-batch", ref: "raw-async", what: fmt.Sprintf("Causeway HTTP, batches of %d, %d clients, --sync always", c.batchSize, c.batchClients), run: func(ctx context.Context, dir string) (*result, error) {
			return httpIngest(ctx, dir, always, c.duration, c.batchClients, c.batchSize)
		}},
		{name: "http-single-interval", httpRef: "http-noop-single,http-noop-lean", ref: "raw-nofsync", what: fmt.Sprintf("Causeway HTTP, single messages, %d clients, --sync interval:1s", c.clients), run: func(ctx context.Context, dir string) (*result, error) {
			return httpIngest(ctx, dir, interval, c.duration, c.clients, 1)
		}},
		{name: "http-batch-interval", httpRef: "http-noop-batch", ref: "raw-nofsync", what: fmt.Sprintf("Causeway HTTP, batches of %d, %d clients, --sync interval:1s", c.batchSize, c.batchClients), run: func(ctx context.Context, dir string) (*result, error) {
			return httpIngest(ctx, dir, interval, c.duration, c.batchClients, c.batchSize)
		}},
	}
	// The machine's speed moves by ±15% from one minute to the next: with several rounds,
	// every scenario runs once per round, next to its references, and each row is the
	// scenario's median round.
	rounds := map[string][]*result{}
	fmt.Fprintf(out, "Ingestion benchmark, %s, %d CPUs, %s per scenario, %d round(s), event ids: %s, %s\n\n", runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), c.duration, max(c.rounds, 1), idKind, time.Now().UTC().Format(time.RFC3339))
	for round := range max(c.rounds, 1) {
		for i, s := range scenarios {
			if !c.wants(s.name) {
				continue
			}
			dir := fmt.Sprintf("%s/%d-%s", root, i, s.name)
			ctx, cancel := context.WithTimeout(context.Background(), c.duration+2*time.Minute)
			r, err := s.run(ctx, dir)
			cancel()
			if err != nil {
				return fmt.Errorf("%s (round %d): %w", s.name, round+1, err)
			}
			_ = os.RemoveAll(dir)
			rounds[s.name] = append(rounds[s.name], r)
			if c.rounds > 1 {
				fmt.Fprintf(os.Stderr, "round %d: %s %.0f msg/s\n", round+1, s.name, r.rate())
			}
		}
	}
	results := map[string]*result{}
	for name, rs := range rounds {
		results[name] = median(rs)
	}
	fmt.Fprintln(out, "| scenario | msg/s | p50 | p99 | server CPU µs/message (user + system) | load generator CPU µs/message | vs bus reference | vs HTTP reference | index caught up |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---|---|---:|")
	for _, s := range scenarios {
		r := results[s.name]
		if r == nil {
			continue
		}
		vs := "reference"
		if s.ref != "" {
			if ref := results[s.ref]; ref != nil && ref.rate() > 0 {
				vs = fmt.Sprintf("%.0f%% of %s", 100*r.rate()/ref.rate(), s.ref)
			} else {
				vs = "(reference " + s.ref + " not run)"
			}
		}
		var vsHTTP []string
		for _, name := range strings.Split(s.httpRef, ",") {
			if ref := results[name]; ref != nil && ref.rate() > 0 {
				vsHTTP = append(vsHTTP, fmt.Sprintf("%.0f%% of %s", 100*r.rate()/ref.rate(), name))
			}
		}
		caughtUp := ""
		if strings.HasPrefix(s.name, "http-") && !strings.HasPrefix(s.name, "http-noop") {
			caughtUp = fmtDur(r.indexCatchUp) + " after"
		}
		cpu, clientCPU := "", ""
		if r.cpuOK {
			cpu, clientCPU = r.cpu.String(), r.clientCPU.String()
		}
		fmt.Fprintf(out, "| %s: %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", s.name, s.what, r.rate(), fmtDur(r.percentile(50)), fmtDur(r.percentile(99)), cpu, clientCPU, vs, strings.Join(vsHTTP, ", "), caughtUp)
	}
	if c.rounds > 1 {
		fmt.Fprint(out, "\nmsg/s of each round:")
		sep := " "
		for _, s := range scenarios {
			if rs := rounds[s.name]; rs != nil {
				fmt.Fprintf(out, "%s%s", sep, s.name)
				for _, r := range rs {
					fmt.Fprintf(out, " %.0f", r.rate())
				}
				sep = "; "
			}
		}
		fmt.Fprintln(out)
	}
	return nil
}
