package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// goals are the performance goals of the gateway, as ratios of requests per second between
// two scenarios of the same run.
var goals = []struct {
	what     string
	scenario string
	ref      string
	want     float64
}{
	{"with policies ≥ 2× Caddy", "causeway-policies", "caddy", 2},
	{"with policies ≥ 0.6× nginx", "causeway-policies", "nginx", 0.6},
	{"without policies ≥ 0.8× nginx", "causeway-plain", "nginx", 0.8},
}

// report prints the results as Markdown: a heading line, the table of scenarios, notes on
// the scenarios that were skipped, failed or saw socket errors, and the goals.
func report(out io.Writer, c benchConfig, t *tools, order []scenario, results map[string]*outcome, notes []string) {
	warmup := "without warm-up"
	if c.warmup > 0 {
		warmup = "after a " + wrkDuration(c.warmup) + " warm-up"
	}
	fmt.Fprintf(out, "Gateway benchmark, %s/%s, %d CPUs, GET /items/%s (%d-byte JSON answer), wrk -t%d -c%d -d%s --latency %s, %s\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), itemID, len(itemBody), c.threads, c.connections,
		wrkDuration(c.duration), warmup, time.Now().UTC().Format(time.RFC3339))
	if c.rounds > 1 {
		fmt.Fprintf(out, "Each scenario measured in %d rounds, taking turns; each row is its median round.\n", c.rounds)
	}
	var versions []string
	for _, v := range t.versions {
		if v != "" {
			versions = append(versions, v)
		}
	}
	fmt.Fprintf(out, "Tools: %s\n\n", strings.Join(versions, "; "))
	var rounds []string
	fmt.Fprintln(out, "| scenario | req/s | p50 | p99 | CPU µs/request (user + system) | vs direct | vs nginx | vs caddy |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range order {
		o := results[s.name]
		name := s.name + ": " + s.what
		switch {
		case o.skipped != "":
			fmt.Fprintf(out, "| %s | skipped | | | | | | |\n", name)
			notes = append(notes, fmt.Sprintf("%s skipped: %s", s.name, o.skipped))
			continue
		case o.load == nil:
			fmt.Fprintf(out, "| %s **FAILED** | — | — | — | — | — | — | — |\n", name)
			notes = append(notes, fmt.Sprintf("%s FAILED: %s", s.name, o.failed))
			continue
		case o.failed != "":
			name += " **FAILED**"
			notes = append(notes, fmt.Sprintf("%s FAILED: %s; its figures do not count.", s.name, o.failed))
		}
		if o.load.socketErrors != "" {
			notes = append(notes, fmt.Sprintf("%s: wrk reported socket errors: %s.", s.name, o.load.socketErrors))
		}
		cpu := "—"
		if o.cpuOK {
			cpu = o.cpu.String()
		}
		fmt.Fprintf(out, "| %s | %.0f | %s | %s | %s | %s | %s | %s |\n", name, o.load.rps, fmtDur(o.load.p50), fmtDur(o.load.p99), cpu,
			vs(s.name, "direct", results), vs(s.name, "nginx", results), vs(s.name, "caddy", results))
		if len(o.rounds) > 1 {
			var rs []string
			for _, r := range o.rounds {
				rs = append(rs, fmt.Sprintf("%.0f", r))
			}
			rounds = append(rounds, fmt.Sprintf("%s %s", s.name, strings.Join(rs, ", ")))
		}
	}
	if len(rounds) > 0 {
		notes = append([]string{"req/s of each round (the row is the median round): " + strings.Join(rounds, "; ") + "."}, notes...)
	}
	if len(notes) > 0 {
		fmt.Fprintln(out)
		for _, n := range notes {
			fmt.Fprintln(out, "- "+n)
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| goal | measured | met |")
	fmt.Fprintln(out, "|---|---:|---|")
	for _, g := range goals {
		o, ref := results[g.scenario], results[g.ref]
		switch {
		case !o.ok():
			fmt.Fprintf(out, "| %s | — | not measured: %s %s |\n", g.what, g.scenario, notRun(o))
		case !ref.ok():
			fmt.Fprintf(out, "| %s | — | not measured: %s %s |\n", g.what, g.ref, notRun(ref))
		default:
			r := o.load.rps / ref.load.rps
			met := "no"
			if r >= g.want {
				met = "yes"
			}
			fmt.Fprintf(out, "| %s | %.2f× | %s |\n", g.what, r, met)
		}
	}
}

// vs is the ratio of a scenario's requests per second to the reference's, "reference" for
// the reference itself and "—" when the reference has no figures that count.
func vs(name, ref string, results map[string]*outcome) string {
	if name == ref {
		return "reference"
	}
	o, r := results[name], results[ref]
	if !r.ok() || r.load.rps == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", o.load.rps/r.load.rps)
}

// notRun says why a scenario has no figures that count.
func notRun(o *outcome) string {
	switch {
	case o == nil:
		return "not run (-only)"
	case o.skipped != "":
		return "skipped"
	default:
		return "failed"
	}
}

// fmtDur writes a latency with a unit that suits it.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}
