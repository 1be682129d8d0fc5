// Command gateway measures Causeway's API gateway against a backend reached directly and
// against other reverse proxies in front of the same backend, in one run on one machine,
// and prints a Markdown table of requests per second and latency percentiles, each beside
// the reference figures as ratios, followed by the performance goals and whether they hold.
//
//	go run ./bench/gateway -duration 10s
//
// The backend is a Go net/http server answering GET /items/{id} with a small JSON object.
// Scenarios, in order: direct (the backend itself, the reference); nethttp-proxy
// (net/http/httputil.ReverseProxy); fasthttp-proxy (fasthttp's server and client passing
// requests through and doing nothing else: the floor of a Go proxy here); fasthttp-guarded
// (the same with the per-request timeouts and forwarded headers every gateway request needs:
// the floor of a gateway here); nginx (reverse proxy with keep-alive upstream
// connections); caddy (reverse_proxy); causeway-plain (an API route proxying to a System
// operation, without policies); causeway-policies (the same with API key authentication, a
// rate limit and a response mapping); and causeway-jwt (the same with a JWT bearer token,
// checked against a key set the benchmark serves, and a scope). The load generator is wrk, with
// -threads threads and -connections connections, after a warm-up of its own for each
// scenario; a scenario whose answers are not 2xx fails loudly, and each one's answer is
// checked before the load.
//
// wrk and nginx come from Debian packages: when one is missing the command says how to
// install it, and installs it with apt-get itself when run as root (unless -install=false).
// Caddy is installed with go install into the user's cache directory the first time, not
// as a dependency of this module. Causeway is built from the module the command is run in.
// Every server runs in a process of its own, stopped at the end, on error and on Ctrl-C.
//
// Builds of Causeway that do not know API policies or the Consumer kind yet (as
// causeway validate tells) run causeway-plain without the policies block and skip
// causeway-policies, saying why.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/causeway/causeway/bench/internal/proccpu"
)

func main() {
	var c benchConfig
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long wrk measures each scenario (whole seconds)")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "how long wrk warms each scenario up before measuring it; 0 for none")
	flag.IntVar(&c.threads, "threads", 2, "wrk threads")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds of every scenario; each row shows the round with the median throughput")
	flag.IntVar(&c.connections, "connections", 64, "wrk connections")
	flag.StringVar(&c.only, "only", "", "comma-separated scenario names to run (default all): "+strings.Join(scenarioNames, ", "))
	flag.StringVar(&c.dir, "dir", "", "scratch directory, kept afterwards (default: a new temporary one, removed)")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "have each Causeway server (if its serve command has --cpuprofile) and each Go proxy write a CPU profile to FILE.<scenario>")
	flag.BoolVar(&c.install, "install", true, "install wrk and nginx with apt-get when they are missing and this runs as root")
	flag.StringVar(&c.caddyVersion, "caddy-version", "v2.11.9", "the Caddy version to go install")
	flag.StringVar(&c.causeway, "causeway", "", "a causeway binary to measure instead of one built from this module")
	role := flag.String("role", "", "internal: run as the backend or proxy process of a scenario")
	target := flag.String("target", "", "internal: the URL the proxy process forwards to")
	roleProfile := flag.String("role-cpuprofile", "", "internal: the file the proxy process writes its CPU profile to")
	flag.Parse()
	if *role != "" {
		if err := serveRole(*role, *target, *roleProfile); err != nil {
			fmt.Fprintln(os.Stderr, "bench "+*role+":", err)
			os.Exit(1)
		}
		return
	}
	if c.rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: -rounds must be at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first Ctrl-C, which stops the run in order, a second one ends it at once.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, c, os.Stdout); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench: interrupted; every server it started is stopped")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// benchConfig holds the command's flags.
type benchConfig struct {
	duration, warmup     time.Duration
	threads, connections int
	only, dir            string
	cpuProfile           string
	rounds               int
	install              bool
	caddyVersion         string
	causeway             string
}

// wants reports whether the scenario called name is to run.
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

// scenarioNames are the scenarios in the order they run.
var scenarioNames = []string{"direct", "nethttp-proxy", "fasthttp-proxy", "fasthttp-guarded", "nginx", "caddy", "causeway-plain", "causeway-policies", "causeway-jwt"}

// scenario is one measured configuration.
type scenario struct {
	name, what string
	// skip, when set, says why the scenario cannot run.
	skip string
	// start runs whatever the scenario puts in front of the backend, in dir.
	start func(ctx context.Context, dir string) (*target, error)
}

// target is what the load is sent to, and what it should answer.
type target struct {
	url     string
	headers map[string]string
	want    map[string]any
	// rejectWithout says that a request without the headers must be refused.
	rejectWithout bool
	stop          func()
	// proc is the server whose process group's CPU time is measured: the proxy, or the
	// backend for the direct row.
	proc *child
}

// outcome is the result of one scenario: its load figures, or why there are none.
type outcome struct {
	load    *load
	skipped string
	failed  string
	// rounds are the throughputs of every round, when there were several.
	rounds []float64
	// cpu is the CPU time per request of the scenario's server, when cpuOK.
	cpu   proccpu.Times
	cpuOK bool
}

// median is the outcome of the round with the median throughput, carrying every round's
// throughput; a failed round makes the scenario failed.
func median(runs []*outcome) *outcome {
	var rps []float64
	for _, o := range runs {
		if !o.ok() {
			return o
		}
		rps = append(rps, o.load.rps)
	}
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b *outcome) int { return cmp.Compare(a.load.rps, b.load.rps) })
	m := *sorted[len(sorted)/2]
	if len(runs) > 1 {
		m.rounds = rps
	}
	return &m
}

// ok reports whether the scenario ran and its figures count.
func (o *outcome) ok() bool { return o != nil && o.load != nil && o.failed == "" }

// run prepares the tools and the backend, measures the scenarios that are wanted one after
// the other, and prints the report on out. It fails when a scenario failed, after the report.
func run(ctx context.Context, c benchConfig, out io.Writer) error {
	var unknown []string
	for _, n := range strings.Split(c.only, ",") {
		if n = strings.TrimSpace(n); n != "" && !contains(scenarioNames, n) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("-only: unknown scenario %s (known: %s)", strings.Join(unknown, ", "), strings.Join(scenarioNames, ", "))
	}
	root := c.dir
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "causeway-bench-gateway-"); err != nil {
			return err
		}
		defer os.RemoveAll(root)
	} else if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	} else if root, err = filepath.Abs(root); err != nil {
		return err
	}
	cs := &children{}
	defer cs.stopAll()

	// Everything that takes a while or may fail comes first, so that the measurements
	// follow one another without builds in between.
	t := &tools{}
	if err := ensurePackages(ctx, t, c.install); err != nil {
		return err
	}
	wrkVersion, _, _ := strings.Cut(toolVersion(ctx, t.wrk, "-v"), " Copyright")
	t.versions = append(t.versions, wrkVersion)
	skips := map[string]string{}
	if t.nginx == "" {
		skips["nginx"] = "nginx is not installed; install it with: " + aptInstall
	} else {
		t.versions = append(t.versions, toolVersion(ctx, t.nginx, "-v"))
	}
	if c.wants("caddy") {
		bin, err := ensureCaddy(ctx, c.caddyVersion)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			skips["caddy"] = "Caddy could not be installed: " + err.Error()
		} else {
			t.caddy = bin
			t.versions = append(t.versions, "caddy "+c.caddyVersion)
		}
	}
	wantCauseway := c.wants("causeway-plain") || c.wants("causeway-policies") || c.wants("causeway-jwt")
	switch {
	case wantCauseway && c.causeway != "":
		bin, err := filepath.Abs(c.causeway)
		if err != nil {
			return err
		}
		t.causeway = bin
		t.versions = append(t.versions, "causeway "+bin)
	case wantCauseway:
		bin, err := buildCauseway(ctx, root)
		if err != nil {
			return err
		}
		t.causeway = bin
		t.versions = append(t.versions, "causeway built from this tree")
	}

	backend, backendAddr, err := cs.startRole(ctx, "backend")
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	defer cs.stop(backend)
	var notes []string
	var cw *causewaySetup
	var iss *issuer
	if wantCauseway {
		if iss, err = startIssuer(); err != nil {
			return fmt.Errorf("token issuer: %w", err)
		}
		defer iss.close()
		if cw, err = prepareCauseway(ctx, t.causeway, filepath.Join(root, "causeway"), backendAddr, iss.jwksURL); err != nil {
			return err
		}
		if !cw.policies {
			for _, name := range []string{"causeway-policies", "causeway-jwt"} {
				skips[name] = cw.skipped
				if c.wants(name) {
					logf("%s will be skipped: %s", name, cw.skipped)
				}
			}
		}
		if c.cpuProfile != "" && !cw.profile {
			notes = append(notes, "-cpuprofile: causeway serve of this build has no --cpuprofile flag, so no profile was written.")
		}
	}

	plain := func(path string, want map[string]any) *target {
		return &target{url: path, want: want, stop: func() {}}
	}
	itemPath := "/items/" + itemID
	scenarios := []scenario{
		{name: "direct", what: "the backend itself, no proxy (reference)", start: func(context.Context, string) (*target, error) {
			tg := plain("http://"+backendAddr+itemPath, wantItem)
			tg.proc = backend
			return tg, nil
		}},
		{name: "nethttp-proxy", what: "net/http/httputil.ReverseProxy", start: func(ctx context.Context, _ string) (*target, error) {
			p, addr, err := cs.startRole(ctx, "proxy", "-target", "http://"+backendAddr, "-role-cpuprofile", profileFile(c.cpuProfile, "nethttp-proxy"))
			if err != nil {
				return nil, err
			}
			tg := plain("http://"+addr+itemPath, wantItem)
			tg.stop, tg.proc = func() { cs.stop(p) }, p
			return tg, nil
		}},
		{name: "fasthttp-proxy", what: "bare fasthttp server and client passing requests through", start: func(ctx context.Context, _ string) (*target, error) {
			p, addr, err := cs.startRole(ctx, "fastproxy", "-target", "http://"+backendAddr, "-role-cpuprofile", profileFile(c.cpuProfile, "fasthttp-proxy"))
			if err != nil {
				return nil, err
			}
			tg := plain("http://"+addr+itemPath, wantItem)
			tg.stop, tg.proc = func() { cs.stop(p) }, p
			return tg, nil
		}},
		{name: "fasthttp-guarded", what: "the same with per-request timeouts and the X-Forwarded-* and traceparent headers", start: func(ctx context.Context, _ string) (*target, error) {
			p, addr, err := cs.startRole(ctx, "fastproxy-guarded", "-target", "http://"+backendAddr, "-role-cpuprofile", profileFile(c.cpuProfile, "fasthttp-guarded"))
			if err != nil {
				return nil, err
			}
			tg := plain("http://"+addr+itemPath, wantItem)
			tg.stop, tg.proc = func() { cs.stop(p) }, p
			return tg, nil
		}},
		{name: "nginx", what: "nginx reverse proxy, keep-alive upstream", start: func(ctx context.Context, dir string) (*target, error) {
			p, base, err := startNginx(ctx, cs, t.nginx, dir, backendAddr)
			if err != nil {
				return nil, err
			}
			tg := plain(base+itemPath, wantItem)
			tg.stop, tg.proc = func() { cs.stop(p) }, p
			return tg, nil
		}},
		{name: "caddy", what: "Caddy reverse_proxy", start: func(ctx context.Context, dir string) (*target, error) {
			p, base, err := startCaddy(ctx, cs, t.caddy, dir, backendAddr)
			if err != nil {
				return nil, err
			}
			tg := plain(base+itemPath, wantItem)
			tg.stop, tg.proc = func() { cs.stop(p) }, p
			return tg, nil
		}},
		{name: "causeway-plain", what: "Causeway API proxying to a System operation, no policies", start: func(ctx context.Context, dir string) (*target, error) {
			p, base, err := startCauseway(ctx, cs, cw, dir, profileFile(c.cpuProfile, "causeway-plain"))
			if err != nil {
				return nil, err
			}
			tg := plain(base+"/plain"+itemPath, wantItem)
			tg.stop, tg.proc = func() { cs.stop(p) }, p
			return tg, nil
		}},
		{name: "causeway-policies", what: "Causeway API with API key, rate limit and response mapping", start: func(ctx context.Context, dir string) (*target, error) {
			p, base, err := startCauseway(ctx, cs, cw, dir, profileFile(c.cpuProfile, "causeway-policies"))
			if err != nil {
				return nil, err
			}
			return &target{url: base + "/guarded" + itemPath, headers: map[string]string{"X-Api-Key": apiKey},
				want: wantMapped, rejectWithout: true, stop: func() { cs.stop(p) }, proc: p}, nil
		}},
		{name: "causeway-jwt", what: "Causeway API with a JWT bearer token (ES256) and a scope, rate limit and response mapping", start: func(ctx context.Context, dir string) (*target, error) {
			p, base, err := startCauseway(ctx, cs, cw, dir, profileFile(c.cpuProfile, "causeway-jwt"))
			if err != nil {
				return nil, err
			}
			return &target{url: base + "/tokens" + itemPath, headers: map[string]string{"Authorization": "Bearer " + iss.token},
				want: wantMapped, rejectWithout: true, stop: func() { cs.stop(p) }, proc: p}, nil
		}},
	}

	results := map[string]*outcome{}
	var order []scenario
	for _, s := range scenarios {
		if !c.wants(s.name) {
			continue
		}
		order = append(order, s)
		if s.skip = skips[s.name]; s.skip != "" {
			results[s.name] = &outcome{skipped: s.skip}
		}
	}
	// The scenarios take turns, round after round, so that a slow spell of the machine
	// touches them all alike; each row is the round with the median throughput.
	all := map[string][]*outcome{}
	for round := 1; round <= c.rounds; round++ {
		for i, s := range order {
			if results[s.name] != nil && results[s.name].skipped != "" {
				continue
			}
			logf("%s: %s (round %d of %d)", s.name, s.what, round, c.rounds)
			o, err := measure(ctx, c, t.wrk, s, filepath.Join(root, fmt.Sprintf("%d-%d-%s", round, i, s.name)))
			if err != nil {
				return err
			}
			if o.failed != "" {
				logf("%s FAILED: %s", s.name, o.failed)
			}
			all[s.name] = append(all[s.name], o)
		}
	}
	for name, runs := range all {
		results[name] = median(runs)
	}
	report(out, c, t, order, results, notes)
	var failed []string
	for _, s := range order {
		if results[s.name].failed != "" {
			failed = append(failed, s.name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// measure runs one scenario: starts it, checks its answer, warms it up and measures it with
// the given wrk binary. It returns an error only when the run as a whole is to stop (on
// Ctrl-C); a scenario that does not work is an outcome with failed set.
func measure(ctx context.Context, c benchConfig, wrk string, s scenario, dir string) (*outcome, error) {
	fail := func(err error) (*outcome, error) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return &outcome{failed: err.Error()}, nil
	}
	tg, err := s.start(ctx, dir)
	if err != nil {
		return fail(err)
	}
	defer tg.stop()
	if err := checkAnswer(ctx, tg.url, tg.headers, tg.want, tg.rejectWithout); err != nil {
		return fail(err)
	}
	if c.warmup > 0 {
		if _, err := runWrk(ctx, wrk, c.threads, c.connections, c.warmup, tg.url, tg.headers); err != nil {
			return fail(fmt.Errorf("warm-up: %w", err))
		}
	}
	// Every server leads a process group of its own (children.start): nginx's workers
	// are counted with their master.
	var before proccpu.Times
	cpuOK := tg.proc != nil
	if cpuOK {
		before, cpuOK = proccpu.Group(tg.proc.cmd.Process.Pid)
	}
	l, err := runWrk(ctx, wrk, c.threads, c.connections, c.duration, tg.url, tg.headers)
	if err != nil {
		return fail(err)
	}
	o := &outcome{load: l}
	if cpuOK {
		if after, ok := proccpu.Group(tg.proc.cmd.Process.Pid); ok {
			o.cpu = after.Sub(before).Per(l.requests)
			o.cpuOK = true
		}
	}
	if l.non2xx > 0 {
		o.failed = fmt.Sprintf("%d of %d responses under load were not 2xx or 3xx", l.non2xx, l.requests)
	}
	return o, nil
}

// profileFile is the CPU profile file of a scenario, "" without -cpuprofile.
func profileFile(base, scenario string) string {
	if base == "" {
		return ""
	}
	return base + "." + scenario
}

// contains reports whether list holds s.
func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
