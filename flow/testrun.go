package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/causeway/causeway/config"
	httpconn "github.com/causeway/causeway/connector/http"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/system"
)

// TestResult is the outcome of one FlowTest.
type TestResult struct {
	// Name is the test's name; Flow the flow it tests; Pos where the test is defined.
	Name, Flow string
	Pos        config.Position
	// Failures are the expectations that did not hold, one readable line each.
	Failures []string
	// Run is the run's record, nil when the flow's filter turned the message away.
	Run *Run
	// Duration is how long the test took.
	Duration time.Duration
}

// Passed reports whether every expectation held.
func (r *TestResult) Passed() bool { return len(r.Failures) == 0 }

// RunTests runs every FlowTest of cfg whose name passes keep (all, when keep is nil), in
// name order. check validates the data of trigger and published messages against their
// MessageTypes.
func RunTests(ctx context.Context, cfg *config.Config, check func(typ string, data []byte) error, keep func(name string) bool) []*TestResult {
	tests := cfg.ByKind(TestKind)
	sort.Slice(tests, func(i, j int) bool { return tests[i].Metadata.Name < tests[j].Metadata.Name })
	var out []*TestResult
	for _, res := range tests {
		if keep != nil && !keep(res.Metadata.Name) {
			continue
		}
		out = append(out, runTest(ctx, cfg, res, check))
	}
	return out
}

// call is a call a test run made.
type testCall struct {
	Call string         `json:"call"`
	With map[string]any `json:"with"`
}

// runTest runs one test case: the flow's steps, in this process, against stubs.
func runTest(ctx context.Context, cfg *config.Config, res *config.Resource, check func(string, []byte) error) *TestResult {
	start := time.Now()
	tc := res.Spec.(*TestSpec)
	out := &TestResult{Name: res.Metadata.Name, Flow: tc.Flow, Pos: res.Pos}
	defer func() { out.Duration = time.Since(start) }()
	fail := func(format string, args ...any) { out.Failures = append(out.Failures, fmt.Sprintf(format, args...)) }
	fres, _ := cfg.Get(Kind, tc.Flow)
	fs := fres.Spec.(*Spec)
	f := &loadedFlow{name: tc.Flow, spec: fs, conc: fs.Concurrency}

	ev, err := testTrigger(tc, fs)
	if err != nil {
		fail("%v", err)
		return out
	}
	if check != nil && fs.Trigger.Message != nil {
		if err := check(ev.Type, ev.Data); err != nil {
			fail("the trigger message does not match its type: %v", err)
			return out
		}
	}
	data, err := decodeData(ev)
	if err != nil {
		fail("the trigger's data is not JSON: %v", err)
		return out
	}
	envelope := envelopeOf(ev)
	if flt := fs.compiled.filter; flt != nil {
		ok, err := flt.Bool(ctx, expr.Input{Message: envelope, Data: data}.Doc())
		if err != nil || !ok {
			if tc.Expect.Status != "" || len(tc.Expect.Calls) > 0 || len(tc.Expect.Published) > 0 {
				fail("the flow's filter turned the trigger message away (%v), so no run started", errOr(err, "it yielded false"))
			}
			return out
		}
	}

	var calls []testCall
	var published []*message.Event
	var answer *Answer
	counts := make([]int, len(tc.Stubs))
	rt := &runtime{
		save: func(context.Context, *Run) error { return nil },
		call: func(ctx context.Context, name string, sys *system.Spec, op string, with map[string]any, _ callInfo) (any, error) {
			full := name + "." + op
			calls = append(calls, testCall{Call: full, With: with})
			res, err := stubAnswer(tc.Stubs, counts, name, op, with)
			if err != nil {
				return nil, err
			}
			return res.Body, nil
		},
		publish: func(_ context.Context, ev *message.Event) error {
			published = append(published, ev)
			return nil
		},
		check: check,
		reply: func(_ string, data []byte) error {
			if answer == nil {
				answer = &Answer{}
				return json.Unmarshal(data, answer)
			}
			return nil
		},
		systems:    map[string]*system.Spec{},
		log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		metrics:    newMetrics(nil),
		skipDelays: true,
	}
	for _, r := range cfg.ByKind(system.Kind) {
		rt.systems[r.Metadata.Name] = r.Spec.(*system.Spec)
	}
	run := &Run{ID: RunID(tc.Flow, ev.ID), Flow: tc.Flow, Status: StatusRunning, Started: time.Now().UTC(),
		Trigger: RunTrigger{Kind: f.triggerKind(), MessageID: ev.ID, Type: ev.Type, Source: ev.Source}, CorrelationID: ev.CorrelationID, Attempt: 1}
	run.index()
	out.Run = run
	r := &runner{rt: rt, f: f, ev: ev, run: run, data: data, msg: envelope, outs: map[string]any{}, replyTo: "test"}
	err = r.steps(ctx, fs.Steps, "", nil)
	if err != nil {
		run.Error = err.Error()
		if len(fs.OnError) > 0 {
			r.vars = withError(r.vars, err)
			if oerr := r.steps(ctx, fs.OnError, "", nil); oerr != nil {
				run.Error += "; onError: " + oerr.Error()
			}
		}
		run.Status = StatusFailed
	} else {
		run.Status = StatusSucceeded
	}
	run.Ended = time.Now().UTC()
	run.Vars = r.vars
	if fs.Trigger.Invoke != nil {
		r.finalReply()
	}

	e := tc.Expect
	if e.Status != "" && run.Status != e.Status {
		fail("expect.status: want %s, got %s%s", e.Status, run.Status, errSuffix(run.Error))
	}
	if e.Error != "" && !strings.Contains(run.Error, e.Error) {
		fail("expect.error: want an error containing %q, got %q", e.Error, run.Error)
	}
	if e.Calls != nil {
		if len(e.Calls) != len(calls) {
			fail("expect.calls: want %d calls, got %d: %s", len(e.Calls), len(calls), callNames(calls))
		}
		for i := range min(len(e.Calls), len(calls)) {
			p := fmt.Sprintf("expect.calls[%d]", i)
			if e.Calls[i].Call != calls[i].Call {
				fail("%s.call: want %s, got %s", p, e.Calls[i].Call, calls[i].Call)
				continue
			}
			compareJSON(p+".with", e.Calls[i].With, calls[i].With, &out.Failures)
		}
	}
	if e.Published != nil {
		if len(e.Published) != len(published) {
			var types []string
			for _, m := range published {
				types = append(types, m.Type)
			}
			fail("expect.published: want %d messages, got %d: [%s]", len(e.Published), len(published), strings.Join(types, ", "))
		}
		for i := range min(len(e.Published), len(published)) {
			p := fmt.Sprintf("expect.published[%d]", i)
			want, got := e.Published[i], published[i]
			if want.Type != got.Type {
				fail("%s.type: want %s, got %s", p, want.Type, got.Type)
			}
			if want.Subject != "" && want.Subject != got.Subject {
				fail("%s.subject: want %q, got %q", p, want.Subject, got.Subject)
			}
			var gotData any
			if len(got.Data) > 0 {
				gotData, _ = expr.DecodeJSON(got.Data)
			}
			compareJSON(p+".data", want.Data, gotData, &out.Failures)
		}
	}
	if !e.Reply.IsZero() {
		if answer == nil {
			fail("expect.reply: the run did not reply")
		} else {
			got := map[string]any{"status": json.Number(strconv.Itoa(answer.Status))}
			if answer.Headers != nil {
				h := map[string]any{}
				for k, v := range answer.Headers {
					h[k] = v
				}
				got["headers"] = h
			}
			if len(answer.Body) > 0 {
				got["body"], _ = expr.DecodeJSON(answer.Body)
			}
			compareJSON("expect.reply", e.Reply, got, &out.Failures)
		}
	}
	compareJSON("expect.vars", e.Vars, mapOrNil(run.Vars), &out.Failures)
	return out
}

// testTrigger builds the trigger a test describes.
func testTrigger(tc *TestSpec, fs *Spec) (*message.Event, error) {
	ev := &message.Event{}
	switch {
	case tc.Message != nil:
		m := tc.Message
		ev = &message.Event{ID: m.ID, Source: m.Source, Type: m.Type, Subject: m.Subject, Data: json.RawMessage(m.Data.Raw)}
	case fs.Trigger.Invoke != nil:
		ev = &message.Event{ID: "test-invocation", Source: "causeway/invoke", Type: "causeway.flow.invoke", Data: json.RawMessage(tc.Input.Raw)}
	case fs.Trigger.Schedule != nil:
		ev = &message.Event{ID: "test-tick", Source: "causeway/schedule", Type: "causeway.flow.tick",
			Data: json.RawMessage(`{"scheduledTime":"` + time.Now().UTC().Format(time.RFC3339) + `"}`)}
	default:
		return nil, errors.New("the test gives no trigger for the flow")
	}
	if len(ev.Data) > 0 {
		ev.DataContentType = "application/json"
	} else {
		ev.Data = nil
	}
	ev.FillDefaults(time.Now())
	return ev, nil
}

// stubAnswer answers a call from the first stub of its operation whose match holds.
func stubAnswer(stubs []*Stub, counts []int, sys, op string, with map[string]any) (*httpconn.Result, error) {
	full := sys + "." + op
	for i, s := range stubs {
		if s.Call != full {
			continue
		}
		if !s.Match.IsZero() {
			var diffs []string
			compareJSON("", s.Match, mapOrNil(with), &diffs)
			if len(diffs) > 0 {
				continue
			}
		}
		a := s.Respond
		if len(s.Responses) > 0 {
			a = s.Responses[min(counts[i], len(s.Responses)-1)]
		}
		counts[i]++
		var body any
		if !a.Body.IsZero() {
			body, _ = expr.DecodeJSON(a.Body.Raw)
		}
		if a.Status < 200 || a.Status > 299 {
			code := a.Status
			transient := code == 408 || code == 425 || code == 429 || code >= 500
			return nil, &httpconn.Error{System: sys, Operation: op, Status: code, Transient: transient,
				Err: fmt.Errorf("HTTP %d %s (stub)", code, http.StatusText(code)), Body: string(a.Body.Raw)}
		}
		return &httpconn.Result{Status: a.Status, Body: body}, nil
	}
	withJSON, _ := expr.MarshalJSON(with)
	return nil, &httpconn.Error{System: sys, Operation: op, Err: fmt.Errorf("no stub answers this call (with %s)", withJSON)}
}

// compareJSON reports, as readable lines, where got does not hold the expected value: an
// expected object's keys must be in got with matching values, lists must have the same
// length, numbers are compared by value.
func compareJSON(path string, want config.JSON, got any, diffs *[]string) {
	if want.IsZero() {
		return
	}
	w, err := expr.DecodeJSON(want.Raw)
	if err != nil {
		*diffs = append(*diffs, fmt.Sprintf("%s: the expectation is not JSON: %v", path, err))
		return
	}
	subset(path, w, got, diffs)
}

func subset(path string, want, got any, diffs *[]string) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s: want an object, got %s", path, show(got)))
			return
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				*diffs = append(*diffs, fmt.Sprintf("%s.%s: want %s, got nothing", path, k, show(w[k])))
				continue
			}
			subset(path+"."+k, w[k], gv, diffs)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s: want a list, got %s", path, show(got)))
			return
		}
		if len(w) != len(g) {
			*diffs = append(*diffs, fmt.Sprintf("%s: want %d elements, got %d: %s", path, len(w), len(g), show(got)))
			return
		}
		for i := range w {
			subset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i], diffs)
		}
	default:
		if !scalarEqual(w, got) {
			*diffs = append(*diffs, fmt.Sprintf("%s: want %s, got %s", path, show(want), show(got)))
		}
	}
}

// scalarEqual compares JSON scalars, numbers by value whatever their Go type.
func scalarEqual(a, b any) bool {
	ra, aNum := number(a)
	rb, bNum := number(b)
	if aNum || bNum {
		return aNum && bNum && ra.Cmp(rb) == 0
	}
	return a == b
}

func number(v any) (*big.Rat, bool) {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = string(n)
	case int:
		s = strconv.Itoa(n)
	case float64:
		s = strconv.FormatFloat(n, 'g', -1, 64)
	case *big.Int:
		s = n.String()
	default:
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

func show(v any) string {
	if v == nil {
		return "null"
	}
	data, err := expr.MarshalJSON(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(data) > 200 {
		return string(data[:200]) + "…"
	}
	return string(data)
}

func callNames(calls []testCall) string {
	names := make([]string, len(calls))
	for i, c := range calls {
		names[i] = c.Call
	}
	return "[" + strings.Join(names, ", ") + "]"
}

func mapOrNil(m map[string]any) any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func errOr(err error, text string) string {
	if err != nil {
		return err.Error()
	}
	return text
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
