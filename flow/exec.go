package flow

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"

	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/system"
	"github.com/causeway/causeway/tracking"
)

// runtime is what a run needs of the world: where its record is saved, how calls are made,
// where messages and replies go. The engine gives runs the real ones; causeway test gives
// them stubs and recorders, so that a flow runs the same code in both.
type runtime struct {
	save func(ctx context.Context, r *Run) error
	note func(r *Run)
	call func(ctx context.Context, system string, sys *system.Spec, op string, with map[string]any, info callInfo) (any, error)
	// gate, when set, says whether a system may be called now (released: the delivery is
	// a parked one let go, which does not queue behind the others).
	gate    func(system string, released bool, whenOffline string) error
	publish func(ctx context.Context, ev *message.Event) error
	// track adds an event to a message's timeline; nil where there is no timeline.
	track   func(ctx context.Context, messageID, event, detail string) error
	check   func(typ string, data []byte) error
	reply   func(replyTo string, data []byte) error
	systems map[string]*system.Spec
	log     *slog.Logger
	metrics *metrics
	// skipDelays makes delay steps end at once (causeway test).
	skipDelays bool
}

// runtime is the engine's real world.
func (e *Engine) runtime() *runtime {
	return &runtime{
		save: e.journal.save,
		note: e.journal.note,
		call: func(ctx context.Context, name string, sys *system.Spec, opName string, with map[string]any, info callInfo) (any, error) {
			release, err := e.limits.acquire(ctx, name)
			if err != nil {
				return nil, err
			}
			defer release()
			out, err := e.conns.Call(ctx, name, sys, opName, with, connector.CallInfo{IdempotencyKey: info.idempotencyKey, Traceparent: info.traceparent})
			if e.opts.Status != nil && ctx.Err() == nil {
				e.opts.Status.Observe(name, err)
			}
			return out, err
		},
		gate: e.gate,
		publish: func(ctx context.Context, ev *message.Event) error {
			return e.opts.Bus.PublishAll(ctx, []*message.Event{ev}, e.opts.Node)
		},
		track: func(ctx context.Context, id, event, detail string) error {
			return tracking.PublishOnce(ctx, e.opts.Bus.JetStream(), tracking.Event{MessageID: id, Event: event, Time: time.Now().UTC(), Node: e.opts.Node, Detail: detail})
		},
		check: e.opts.Check,
		reply: func(to string, data []byte) error {
			// A caller waiting on an inbox hears the reply or has gone; a reply to a
			// stream subject (the gateway's asynchronous requests) is a result someone
			// polls for later, so it is published with an acknowledgement: a reply the
			// bus did not store fails the step, which is then tried again.
			if strings.HasPrefix(to, nats.InboxPrefix) {
				return e.opts.Bus.Conn().Publish(to, data)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := e.opts.Bus.JetStream().Publish(ctx, to, data)
			return err
		},
		systems: e.systems,
		log:     e.log,
		metrics: e.metrics,
	}
}

// runner carries out one run of one flow: it walks the steps, journals each before the
// next begins, and skips what the journal shows as done.
type runner struct {
	rt   *runtime
	f    *loadedFlow
	ev   *message.Event // the trigger
	run  *Run
	data any // the trigger's data, decoded once
	msg  map[string]any

	mu   sync.Mutex // guards run, outs and vars: parallel branches and foreach iterations share them
	outs map[string]any
	vars map[string]any

	// replyTo is where the caller of an invocation waits for the reply; replied says a
	// reply went out in this delivery.
	replyTo string
	replied bool
	// gatewayRequest describes the gateway request that invoked the run, if one did.
	gatewayRequest string
	// last is the key of the run's last top-level step: its outcome is journaled with the
	// run's end, in one write, since no step follows it.
	last string
}

// stepError is a step that failed: the run fails with it (after onError).
type stepError struct {
	key string
	err error
}

func (e *stepError) Error() string { return fmt.Sprintf("step %s: %v", e.key, e.err) }
func (e *stepError) Unwrap() error { return e.err }

// waitError is a delay that has not ended: the run waits, durably, until the trigger
// message is delivered again at until.
type waitError struct{ until time.Time }

func (e *waitError) Error() string { return "waiting until " + e.until.Format(time.RFC3339) }

// infraError is a failure of the platform itself (the journal, the bus), not of the run: the
// trigger message is delivered again later and the run goes on from its journal.
type infraError struct{ err error }

func (e *infraError) Error() string { return e.err.Error() }
func (e *infraError) Unwrap() error { return e.err }

// input is the expression input of the run at this point, with extra variables (a foreach
// element) on top of the run's.
func (r *runner) input(extra map[string]any) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	steps := make(map[string]any, len(r.outs))
	for id, out := range r.outs {
		steps[id] = map[string]any{"output": out}
	}
	vars := maps.Clone(r.vars)
	if vars == nil {
		vars = map[string]any{}
	}
	maps.Copy(vars, extra)
	return expr.Input{Message: r.msg, Data: r.data, Steps: steps, Vars: vars}.Doc()
}

// noteAfter is how long an attempt runs before the run history shows it as running.
const noteAfter = 250 * time.Millisecond

// save writes the run record; a failure is the platform's, so the run is tried again later.
func (r *runner) save(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.run.Vars = maps.Clone(r.vars)
	if err := r.rt.save(ctx, r.run); err != nil {
		return &infraError{err}
	}
	return nil
}

// steps runs a list of steps in order. prefix is the journal key prefix of an iteration
// ("each[2]."), extra its variables.
func (r *runner) steps(ctx context.Context, list []*Step, prefix string, extra map[string]any) error {
	for _, st := range list {
		if err := r.step(ctx, st, prefix, extra); err != nil {
			return err
		}
	}
	return nil
}

// step runs one step, or restores it from the journal when it is done.
func (r *runner) step(ctx context.Context, st *Step, prefix string, extra map[string]any) error {
	key := prefix + st.ID
	c := st.compiled
	r.mu.Lock()
	rec := r.run.step(key)
	r.mu.Unlock()
	if rec != nil {
		switch rec.Status {
		case StepSucceeded, StepSkipped:
			r.mu.Lock()
			r.outs[st.ID] = rec.Output
			r.mu.Unlock()
			return nil
		}
		// A failed or retrying step runs again: the run is resumed by a retry, or after a
		// crash that came before its failure was settled (retried or final), and trying
		// the step again is what tells which.
		r.mu.Lock()
		rec.Status, rec.Error = StepRunning, ""
		r.mu.Unlock()
	}
	if c.guard != nil && c.action != ActionIf {
		ok, err := c.guard.Bool(ctx, r.input(extra))
		if err != nil {
			return r.finishStep(ctx, st, key, nil, nil, fmt.Errorf("if: %w", err))
		}
		if !ok {
			return r.record(ctx, &StepRecord{Key: key, ID: st.ID, Action: c.action, Status: StepSkipped, Started: time.Now().UTC(), Ended: time.Now().UTC()})
		}
	}
	if rec == nil {
		rec = &StepRecord{Key: key, ID: st.ID, Action: c.action, Status: StepRunning, Started: time.Now().UTC()}
		r.mu.Lock()
		r.run.addStep(rec)
		r.mu.Unlock()
	}
	start := time.Now()
	var out, in any
	var err error
	switch c.action {
	case ActionIf, ActionSwitch, ActionForeach, ActionParallel:
		// A container's children journal themselves.
		err = r.container(ctx, st, key, extra)
	case ActionDelay:
		out, err = r.delay(ctx, st, rec, extra)
	default:
		in, out, err = r.attempts(ctx, st, rec, key, extra)
	}
	var we *waitError
	var ie *infraError
	if errors.As(err, &we) || errors.As(err, &ie) {
		return err
	}
	if isPark(err) {
		// Not called: the step runs when the delivery is released.
		r.mu.Lock()
		if rec.Attempts > 0 && c.action == ActionCall {
			rec.Attempts--
		}
		rec.Status = StepParked
		r.mu.Unlock()
		return err
	}
	r.rt.metrics.stepDuration.WithLabelValues(r.f.name, st.ID).Observe(time.Since(start).Seconds())
	return r.finishStep(ctx, st, key, in, out, err)
}

// finishStep journals a step's end.
func (r *runner) finishStep(ctx context.Context, st *Step, key string, in, out any, err error) error {
	r.mu.Lock()
	rec := r.run.step(key)
	if rec == nil {
		rec = &StepRecord{Key: key, ID: st.ID, Action: st.compiled.action, Started: time.Now().UTC()}
		r.run.addStep(rec)
	}
	rec.Ended = time.Now().UTC()
	rec.DurationMS = rec.Ended.Sub(rec.Started).Milliseconds()
	if in != nil {
		rec.Input = truncate(in)
	}
	if err != nil {
		rec.Status, rec.Error = StepFailed, err.Error()
	} else {
		rec.Status, rec.Output = StepSucceeded, truncate(out)
		r.outs[st.ID] = out
	}
	r.mu.Unlock()
	if key != r.last {
		if serr := r.save(ctx); serr != nil {
			return serr
		}
	}
	if err != nil {
		var se *stepError
		if errors.As(err, &se) {
			return err // a child's failure, already named
		}
		return &stepError{key: key, err: err}
	}
	return nil
}

// record journals a step that ended without running (skipped).
func (r *runner) record(ctx context.Context, rec *StepRecord) error {
	r.mu.Lock()
	if old := r.run.step(rec.Key); old != nil {
		*old = *rec
	} else {
		r.run.addStep(rec)
	}
	r.mu.Unlock()
	return r.save(ctx)
}

// attempts runs a leaf step's action with its in-run retry: each attempt is journaled
// before it starts, so a crash during it is known on the next delivery.
func (r *runner) attempts(ctx context.Context, st *Step, rec *StepRecord, key string, extra map[string]any) (in, out any, err error) {
	max, backoff, maxBackoff := 1, time.Duration(0), time.Duration(0)
	if rt := st.Retry; rt != nil {
		max, backoff, maxBackoff = rt.Attempts, rt.Backoff, rt.MaxBackoff
	}
	// Attempts count over the run's deliveries (the history shows them all); each delivery
	// (a retry message, a resumption) has the step's in-run attempts anew.
	r.mu.Lock()
	base := rec.Attempts
	r.mu.Unlock()
	for {
		r.mu.Lock()
		rec.Attempts++
		attempt := rec.Attempts - base
		r.mu.Unlock()
		// An attempt still going after noteAfter is shown in the run history as running.
		// That is for people, not for resuming: a resumed run repeats an attempt that has
		// no outcome in the journal, with the same idempotency key, whether or not its
		// start was recorded; so a fast attempt costs no write.
		over := false
		slow := time.AfterFunc(noteAfter, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			// Under the lock, and only before the attempt is over: a note can never be
			// written after (and so over) the outcome's save.
			if !over && r.rt.note != nil {
				r.run.Vars = maps.Clone(r.vars)
				r.rt.note(r.run)
			}
		})
		actx, cancel := ctx, context.CancelFunc(func() {})
		if st.Timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, st.Timeout)
		}
		in, out, err = r.do(actx, st, key, extra)
		cancel()
		slow.Stop()
		r.mu.Lock()
		over = true
		r.mu.Unlock()
		if err == nil || attempt >= max || !transient(err) || ctx.Err() != nil {
			return in, out, err
		}
		r.rt.log.Info("step failed, trying again", "flow", r.f.name, "run", r.run.ID, "step", key, "attempt", attempt, "err", err)
		wait := backoff << min(attempt-1, 20)
		if wait > maxBackoff {
			wait = maxBackoff
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return in, out, err
		}
	}
}

// transient reports whether another attempt may succeed.
func transient(err error) bool { return connector.Transient(err) }

// do carries out a leaf action once, and returns its resolved input and its output.
func (r *runner) do(ctx context.Context, st *Step, key string, extra map[string]any) (in, out any, err error) {
	c := st.compiled
	input := r.input(extra)
	switch c.action {
	case ActionCall:
		return r.call(ctx, st, key, input)
	case ActionPublish:
		return r.publish(ctx, st, key, input)
	case ActionSet:
		v, err := c.set.Eval(ctx, input)
		if err != nil {
			return nil, nil, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("set must yield an object of variables, got %s", expr.TypeName(v))
		}
		r.mu.Lock()
		if r.vars == nil {
			r.vars = map[string]any{}
		}
		maps.Copy(r.vars, m)
		r.mu.Unlock()
		return nil, m, nil
	case ActionFail:
		reason, err := c.fail.Eval(ctx, input)
		if err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("failed: %s", expr.ToString(reason))
	case ActionReply:
		return r.reply(ctx, st, input)
	}
	return nil, nil, fmt.Errorf("internal error: step action %q", c.action)
}

// reserved are the keys of a call's with that are not parameters.
var reserved = map[string]bool{"query": true, "headers": true, "body": true}

// call calls a system operation.
func (r *runner) call(ctx context.Context, st *Step, key string, input any) (in, out any, err error) {
	c := st.compiled
	var with map[string]any
	if c.with != nil {
		v, err := c.with.Eval(ctx, input)
		if err != nil {
			return nil, nil, err
		}
		var ok bool
		if with, ok = v.(map[string]any); !ok && v != nil {
			return nil, nil, fmt.Errorf("with must yield an object, got %s", expr.TypeName(v))
		}
	}
	sys, ok := r.rt.systems[c.system]
	if !ok {
		return with, nil, fmt.Errorf("system %q is not defined", c.system)
	}
	if r.rt.gate != nil {
		mode := ""
		if st.Delivery != nil {
			mode = st.Delivery.WhenOffline
		}
		if err := r.rt.gate(c.system, r.ev.Extensions[ExtParkSeq] != "", mode); err != nil {
			if isPark(err) {
				return with, nil, err
			}
			return with, nil, &CallError{Step: key, System: c.system, Operation: c.op, Err: err, Delivery: st.Delivery}
		}
	}
	out, err = r.rt.call(ctx, c.system, sys, c.op, with, callInfo{idempotencyKey: r.run.ID + "/" + key, traceparent: r.ev.TraceParent})
	if err != nil {
		return with, nil, &CallError{Step: key, System: c.system, Operation: c.op, Err: err, Delivery: st.Delivery}
	}
	return with, out, nil
}

// callInfo is what a call carries besides its parameters.
type callInfo struct {
	idempotencyKey, traceparent string
}

// publish publishes a follow-up message. Its id is derived from the run and the step, so a
// step run again after a crash publishes the same id, and the bus keeps one.
func (r *runner) publish(ctx context.Context, st *Step, key string, input any) (in, out any, err error) {
	c := st.compiled
	var data any
	if c.data != nil {
		if data, err = c.data.Eval(ctx, input); err != nil {
			return nil, nil, err
		}
	}
	ev := &message.Event{
		ID:            stepMessageID(r.run, key),
		Source:        "causeway/flow/" + r.f.name,
		Type:          st.Publish.Type,
		Kind:          message.KindOriginal,
		CorrelationID: r.run.CorrelationID,
		CausationID:   r.ev.ID,
		TraceParent:   r.ev.TraceParent,
		TraceState:    r.ev.TraceState,
	}
	if c.subject != nil {
		s, err := c.subject.Eval(ctx, input)
		if err != nil {
			return nil, nil, err
		}
		ev.Subject = expr.ToString(s)
	}
	if data != nil {
		raw, err := expr.MarshalJSON(data)
		if err != nil {
			return nil, nil, err
		}
		ev.Data = raw
		ev.DataContentType = "application/json"
	}
	ev.FillDefaults(time.Now())
	if r.rt.check != nil {
		if err := r.rt.check(ev.Type, ev.Data); err != nil {
			return data, nil, fmt.Errorf("publish %s: %w", ev.Type, err)
		}
	}
	if err := r.rt.publish(ctx, ev); err != nil {
		return data, nil, &infraError{err}
	}
	if r.gatewayRequest != "" && r.rt.track != nil {
		// After the message is stored: the event is about a message that exists. A step
		// run again publishes the same event id, which the bus keeps once.
		if err := r.rt.track(ctx, ev.ID, EventGatewayRequest, r.gatewayRequest+"; run "+r.run.ID); err != nil {
			return data, nil, &infraError{fmt.Errorf("publish %s: tracking event: %w", ev.Type, err)}
		}
	}
	return data, map[string]any{"id": ev.ID, "type": ev.Type}, nil
}

// stepMessageID is a ULID made from the run's start and a hash of the run and step, the
// same every time the step runs.
func stepMessageID(run *Run, key string) string {
	sum := sha256.Sum256([]byte(run.ID + "/" + key))
	var id ulid.ULID
	_ = id.SetTime(ulid.Timestamp(run.Started))
	copy(id[6:], sum[:10])
	return id.String()
}

// delay waits durably: the first time it records when the wait ends and asks for the
// trigger to be delivered again then; when it is, the step is over.
func (r *runner) delay(ctx context.Context, st *Step, rec *StepRecord, extra map[string]any) (any, error) {
	r.mu.Lock()
	var until string
	if m, ok := rec.Output.(map[string]any); ok {
		until, _ = m["until"].(string)
	}
	r.mu.Unlock()
	if until == "" {
		v, err := st.compiled.delay.Eval(ctx, r.input(extra))
		if err != nil {
			return nil, err
		}
		d, err := time.ParseDuration(expr.ToString(v))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("delay %q is not a positive duration", expr.ToString(v))
		}
		t := time.Now().Add(d).UTC()
		until = t.Format(time.RFC3339Nano)
		r.mu.Lock()
		rec.Output = map[string]any{"until": until}
		rec.Attempts = 1
		r.mu.Unlock()
		if err := r.save(ctx); err != nil {
			return nil, err
		}
	}
	t, err := time.Parse(time.RFC3339Nano, until)
	if err != nil {
		return nil, fmt.Errorf("journal: bad delay end %q", until)
	}
	if time.Now().Before(t) && !r.rt.skipDelays {
		return nil, &waitError{until: t}
	}
	return map[string]any{"until": until}, nil
}

// container runs the steps inside an if, switch, foreach or parallel step.
func (r *runner) container(ctx context.Context, st *Step, key string, extra map[string]any) error {
	c := st.compiled
	prefix := key[:len(key)-len(st.ID)] // the iteration prefix the step itself is in
	switch c.action {
	case ActionIf:
		ok, err := c.guard.Bool(ctx, r.input(extra))
		if err != nil {
			return fmt.Errorf("if: %w", err)
		}
		if ok {
			return r.steps(ctx, st.Then, prefix, extra)
		}
		return r.steps(ctx, st.Else, prefix, extra)
	case ActionSwitch:
		for i, cs := range st.Switch {
			if w := c.when[i]; w != nil {
				ok, err := w.Bool(ctx, r.input(extra))
				if err != nil {
					return fmt.Errorf("switch case %d: %w", i, err)
				}
				if !ok {
					continue
				}
			}
			return r.steps(ctx, cs.Steps, prefix, extra)
		}
		return nil
	case ActionForeach:
		v, err := c.foreach.Eval(ctx, r.input(extra))
		if err != nil {
			return err
		}
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("foreach must yield a list, got %s", expr.TypeName(v))
		}
		return r.fanOut(ctx, len(list), st.Concurrency, func(ctx context.Context, i int) error {
			vars := maps.Clone(extra)
			if vars == nil {
				vars = map[string]any{}
			}
			vars[st.As] = list[i]
			return r.steps(ctx, st.Do, key+"["+strconv.Itoa(i)+"].", vars)
		})
	case ActionParallel:
		return r.fanOut(ctx, len(st.Parallel), len(st.Parallel), func(ctx context.Context, i int) error {
			return r.steps(ctx, st.Parallel[i].Steps, prefix, extra)
		})
	}
	return nil
}

// fanOut runs n jobs, at most limit at a time, and returns the first failure (a wait or a
// platform failure before a step failure, since those resume rather than end the run).
func (r *runner) fanOut(ctx context.Context, n, limit int, job func(context.Context, int) error) error {
	sem := make(chan struct{}, max(limit, 1))
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = job(ctx, i)
		}()
	}
	wg.Wait()
	var first error
	for _, err := range errs {
		var we *waitError
		var ie *infraError
		if errors.As(err, &ie) || errors.As(err, &we) {
			return err
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// truncate keeps large values out of the run history: a value whose JSON is over
// maxRecorded bytes is replaced by a marker with its size.
func truncate(v any) any {
	const maxRecorded = 64 << 10
	data, err := expr.MarshalJSON(v)
	if err != nil || len(data) <= maxRecorded {
		return v
	}
	return map[string]any{"truncated": true, "bytes": len(data), "start": string(data[:1024])}
}

// Answer is what a flow answers its invoker: the HTTP status, headers and body, with the
// run's id. The API turns it into the HTTP answer.
type Answer struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
	RunID   string            `json:"runId"`
	// Error is set on the reply the engine sends for a run that failed before replying.
	Error string `json:"error,omitempty"`
}

// reply answers the invocation. The run goes on after it.
func (r *runner) reply(ctx context.Context, st *Step, input any) (in, out any, err error) {
	var body any
	if c := st.compiled.reply; c != nil {
		if body, err = c.Eval(ctx, input); err != nil {
			return nil, nil, err
		}
	}
	rep := Answer{Status: st.Reply.Status, RunID: r.run.ID}
	for name, t := range st.compiled.headers {
		if t == nil {
			continue
		}
		v, err := t.Eval(ctx, input)
		if err != nil {
			return nil, nil, fmt.Errorf("reply header %s: %w", name, err)
		}
		if rep.Headers == nil {
			rep.Headers = map[string]string{}
		}
		rep.Headers[name] = expr.ToString(v)
	}
	if body != nil {
		if rep.Body, err = expr.MarshalJSON(body); err != nil {
			return body, nil, err
		}
	}
	if err := r.send(rep); err != nil {
		return body, nil, &infraError{err}
	}
	return body, map[string]any{"status": rep.Status}, nil
}

// send publishes a reply to the waiting caller. A caller that has given up is not an error:
// nobody listens, and the run goes on.
func (r *runner) send(rep Answer) error {
	if r.replyTo == "" {
		return nil
	}
	data, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.replied = true
	r.mu.Unlock()
	return r.rt.reply(r.replyTo, data)
}

// finalReply answers an invocation whose run ended without a reply step having answered:
// 204 for a run that succeeded, 500 with the error for one that failed.
func (r *runner) finalReply() {
	if r.f.spec.Trigger.Invoke == nil && (r.f.spec.compiled == nil || !r.f.spec.compiled.replies) {
		// A message-triggered flow without a reply step is not the one that answers the
		// gateway request that published the message; others triggered by it may be.
		return
	}
	r.mu.Lock()
	replied := r.replied
	for _, s := range r.run.Steps {
		if s.Action == ActionReply && s.Status == StepSucceeded {
			replied = true
		}
	}
	r.mu.Unlock()
	if replied {
		return
	}
	rep := Answer{Status: http.StatusNoContent, RunID: r.run.ID}
	if r.run.Status == StatusFailed {
		rep = Answer{Status: http.StatusInternalServerError, RunID: r.run.ID, Error: r.run.Error}
	}
	if err := r.send(rep); err != nil {
		r.rt.log.Warn("final reply not sent", "flow", r.f.name, "run", r.run.ID, "err", err)
	}
}
