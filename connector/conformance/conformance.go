// Package conformance is the contract every connector keeps, as a test suite: a call of an
// operation succeeds and has its effect; a call that cannot succeed fails as permanent; a
// system that cannot be reached fails as transient; check reports both truthfully; no
// error shows a secret; and closing releases the connections without breaking the next
// use. Each connector's case runs it through connector.Set, the dispatcher flows and
// sources use, against a real server.
package conformance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/system"
)

// Call is an operation with its parameters.
type Call struct {
	Op   string
	With map[string]any
}

// Case is one connector's run of the suite.
type Case struct {
	// System is reachable and has the operations named below.
	System *system.Spec
	// Succeed is a call that succeeds; Verify, when set, checks its effect in the system
	// with the call's result.
	Succeed Call
	Verify  func(t *testing.T, result any)
	// Permanent is a call that can never succeed as written.
	Permanent Call
	// Unreachable is System pointed where nothing answers.
	Unreachable *system.Spec
	// Secrets are values that must not appear in any error or check report.
	Secrets []string
	// Timeout bounds each call (default 10s).
	Timeout time.Duration
}

// Run runs the suite for one connector.
func Run(t *testing.T, c Case) {
	t.Helper()
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	call := func(set *connector.Set, sys *system.Spec, cl Call) (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		defer cancel()
		return set.Call(ctx, "sys", sys, cl.Op, cl.With, connector.CallInfo{IdempotencyKey: "conformance/" + cl.Op})
	}
	noSecret := func(what, text string) {
		t.Helper()
		for _, s := range c.Secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("%s shows a secret: %s", what, text)
			}
		}
	}
	check := func(set *connector.Set, sys *system.Spec) *connector.SystemCheck {
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		defer cancel()
		return set.Check(ctx, "sys", sys)
	}

	reg := prometheus.NewRegistry()
	set := connector.New(connector.Options{Node: "conformance", Registerer: reg})
	t.Run("operation succeeds", func(t *testing.T) {
		for i := range 2 { // the second time on the connection the first made
			res, err := call(set, c.System, c.Succeed)
			if err != nil {
				t.Fatalf("call %d of %s: %v", i+1, c.Succeed.Op, err)
			}
			if c.Verify != nil && i == 0 {
				c.Verify(t, res)
			}
		}
	})
	t.Run("failure is permanent", func(t *testing.T) {
		_, err := call(set, c.System, c.Permanent)
		if err == nil {
			t.Fatalf("call of %s succeeded", c.Permanent.Op)
		}
		if connector.Transient(err) {
			t.Errorf("call of %s: %v, want a permanent failure", c.Permanent.Op, err)
		}
		if !strings.Contains(err.Error(), "sys."+c.Permanent.Op) {
			t.Errorf("the error does not name the call: %v", err)
		}
		noSecret("the error", err.Error())
	})
	t.Run("calls are counted", func(t *testing.T) {
		if n := countCalls(t, reg, c.Succeed.Op, "ok"); n != 2 {
			t.Errorf("causeway_connector_calls_total{operation=%q,outcome=ok} = %v, want 2", c.Succeed.Op, n)
		}
		if n := countCalls(t, reg, c.Permanent.Op, "permanent"); n != 1 {
			t.Errorf("causeway_connector_calls_total{operation=%q,outcome=permanent} = %v, want 1", c.Permanent.Op, n)
		}
	})
	t.Run("check reports a working system", func(t *testing.T) {
		res := check(set, c.System)
		if !res.OK {
			t.Errorf("check: %+v", res.Checks)
		}
		for _, ch := range res.Checks {
			noSecret("the check", ch.Detail+ch.Error)
		}
	})
	t.Run("unreachable is transient", func(t *testing.T) {
		if c.Unreachable == nil {
			t.Skip("the connector reaches nothing over the network")
		}
		other := connector.New(connector.Options{Node: "conformance"})
		defer other.Close()
		_, err := call(other, c.Unreachable, c.Succeed)
		if err == nil || !connector.Transient(err) {
			t.Errorf("call of an unreachable system: %v, want a transient failure", err)
		}
		if err != nil {
			noSecret("the error", err.Error())
		}
		res := check(other, c.Unreachable)
		if res.OK {
			t.Errorf("check of an unreachable system passed: %+v", res.Checks)
		}
		for _, ch := range res.Checks {
			noSecret("the check", ch.Detail+ch.Error)
		}
	})
	t.Run("close releases and the next use works", func(t *testing.T) {
		set.Close()
		set.Close() // twice is harmless
		again := connector.New(connector.Options{Node: "conformance"})
		defer again.Close()
		if _, err := call(again, c.System, c.Succeed); err != nil {
			t.Errorf("a call after closing: %v", err)
		}
	})
}

// countCalls sums causeway_connector_calls_total of system sys, operation op and outcome.
func countCalls(t *testing.T, reg *prometheus.Registry, op, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "causeway_connector_calls_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["system"] == "sys" && labels["operation"] == op && labels["outcome"] == outcome {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
