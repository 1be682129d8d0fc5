package flow

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/reliability"
)

// The retry path.
//
// A call step that fails transiently (after its in-run attempts) does not fail the run. The
// delivery becomes a retry message: a copy of the trigger with kind retry, retrycount + 1,
// causationid the failed message, addressed to this flow alone and naming the run, which
// the bus holds as a scheduled message until its backoff has passed (a restart neither
// loses it nor fires it early). The run is recorded as retrying, its failed steps marked to
// run again; the retry message continues it from there, finished steps not repeated. When
// retrycount reaches the system's maxRetries, or a step fails permanently, the run fails
// and the failed delivery goes to the errors queue with the reason, its class, the failing
// step, system and operation, the run's history and a fingerprint of the error. On a server
// without message schedules (before NATS 2.12) the failed delivery itself is redelivered
// after the backoff instead of a retry message.

// CallError is a call step's failure, saying which system and operation failed.
type CallError struct {
	Step, System, Operation string
	Err                     error
	// Delivery is the step's own delivery policy, when it has one.
	Delivery *StepDelivery
}

func (e *CallError) Error() string { return e.Err.Error() }

// Unwrap gives the connector's error, which says whether it is transient.
func (e *CallError) Unwrap() error { return e.Err }

// ExtRunID is the extension attribute of a retry message naming the run it continues.
const ExtRunID = "runid"

// retries reports whether the flow's failures take the retry path and end in the errors
// queue. An invoked flow's caller waits for the outcome and gets the failure instead.
func (f *loadedFlow) retries() bool { return f.spec.Trigger.Invoke == nil }

// retryByMessage reports whether the flow's retries are retry messages: the flow is
// triggered by messages and the server schedules messages. Otherwise the failed delivery
// is redelivered after the backoff.
func (f *loadedFlow) retryByMessage(b *bus.Bus) bool {
	return f.spec.Trigger.Message != nil && b.Schedules()
}

// retryOf returns the run a delivery continues (a retry message, a released parked
// delivery), or "" when ev does not continue one of this flow's runs.
func retryOf(f *loadedFlow, ev *message.Event) string {
	if ev.Target != TargetPrefix+f.name {
		return ""
	}
	id := ev.Extensions[ExtRunID]
	if !validRunID(id) {
		return ""
	}
	return id
}

// validRunID reports whether id has the form RunID gives.
func validRunID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// superseded reports whether the delivery of ev is not the one to carry run on: a retry
// message older than the run's latest, a released delivery of an earlier parking, or (when
// retries are messages) a redelivery of the trigger of a run a retry message continues.
//
// A continuation newer than the record is taken, and the record caught up with it: the
// journal is written without an fsync of its own, so a crash of the node with its embedded
// bus can take the record's last write while the retry message it scheduled survives.
// Dropping that message as stale would leave the run waiting for a retry that never comes.
func (e *Engine) superseded(f *loadedFlow, ev *message.Event, run *Run, isRetry bool) bool {
	if isRetry {
		if k := ev.Extensions[ExtParkSeq]; k != "" {
			n, _ := strconv.Atoi(k)
			if n > run.Parks {
				run.Parks = n
				return false
			}
			// A released delivery ends the parking it names, and only that one.
			return n < run.Parks || run.Status != StatusParked
		}
		if ev.RetryCount > run.Retries {
			run.Retries = ev.RetryCount
			return false
		}
		return ev.RetryCount < run.Retries || run.Status == StatusParked
	}
	return run.Status == StatusParked || run.Status == StatusRetrying && f.retryByMessage(e.opts.Bus)
}

// scheduleRetry turns a transient call failure into a retry of the run, when the system's
// retry policy has retries left. It reports whether it did; the caller then saves the run
// and settles the delivery (acknowledged when a retry message was stored; redelivered
// later, when the flow's retries are redeliveries).
func (e *Engine) scheduleRetry(ctx context.Context, f *loadedFlow, ev *message.Event, run *Run, err error) (bool, error) {
	var ce *CallError
	if !errors.As(err, &ce) || !connector.Transient(err) {
		return false, nil
	}
	policy := e.systems[ce.System].RetryPolicy()
	if ce.Delivery != nil && ce.Delivery.Retry != nil {
		policy = *ce.Delivery.Retry
	}
	n := run.Retries + 1
	if n > policy.MaxRetries {
		return false, nil
	}
	delay := policy.Delay(n)
	if ra := connector.RetryAfter(err); ra > delay {
		// The system said when to come back; within the policy's longest wait.
		delay = min(ra, policy.MaxDelay)
	}
	// The bus schedules to the second; rounding up never fires a retry early.
	at := time.Now().Add(delay).Truncate(time.Second).Add(time.Second)
	if f.retryByMessage(e.opts.Bus) {
		retry := *ev
		retry.ID = "retry-" + run.ID + "-" + strconv.Itoa(n)
		retry.Kind = message.KindRetry
		retry.RetryCount = n
		retry.CausationID = ev.ID
		retry.Time = time.Now().UTC()
		retry.Target = TargetPrefix + f.name
		retry.Extensions = map[string]string{}
		for k, v := range ev.Extensions {
			retry.Extensions[k] = v
		}
		retry.Extensions[ExtRunID] = run.ID
		delete(retry.Extensions, ExtParkSeq)
		// The system ends the subject, so that the retries waiting for it can be counted.
		msg := retry.ToNATS(bus.SubjectSchedules + "retry." + run.ID + "." + strconv.Itoa(n) + "." + ce.System)
		msg.Header.Set(message.HeaderNode, e.opts.Node)
		if _, perr := e.opts.Bus.JetStream().PublishMsg(ctx, msg, jetstream.WithScheduleAt(at),
			jetstream.WithScheduleTarget(bus.Subject(ev.Type)), jetstream.WithMsgID(retry.ID),
			jetstream.WithExpectStream(bus.StreamMessages)); perr != nil {
			return false, &infraError{perr}
		}
	}
	for _, s := range run.Steps {
		if s.Status == StepFailed {
			s.Status = StepRetrying
		}
	}
	e.noteFailure(run, err, at.UTC())
	run.Retries, run.NextRetry = n, at.UTC()
	run.Status = StatusRetrying
	run.Error = err.Error()
	e.metrics.retries.WithLabelValues(f.name, ce.System).Inc()
	e.log.Info("call failed; retry scheduled", "flow", f.name, "run", run.ID, "step", ce.Step, "system", ce.System,
		"retry", n, "of", policy.MaxRetries, "at", at, "err", err)
	return true, nil
}

// Failure is one failed delivery of a run: the attempt history the errors queue keeps.
type Failure = reliability.Failure

// noteFailure appends a failed delivery to the run's history; the oldest are dropped past
// maxFailures, so that a record stays small whatever the policy.
func (e *Engine) noteFailure(run *Run, err error, next time.Time) {
	fl := Failure{RetryCount: run.Retries, Time: time.Now().UTC(), Error: err.Error(), Transient: connector.Transient(err), NextRetry: next}
	var ce *CallError
	if errors.As(err, &ce) {
		fl.Step, fl.System, fl.Operation = ce.Step, ce.System, ce.Operation
	} else if se := (*stepError)(nil); errors.As(err, &se) {
		fl.Step = se.key
	}
	run.Failures = append(run.Failures, fl)
	if n := len(run.Failures); n > maxFailures {
		run.Failures = append(run.Failures[:0:0], run.Failures[n-maxFailures:]...)
	}
}

// maxFailures bounds the failures a run record keeps.
const maxFailures = 50

// deadLetter puts a failed run's delivery into the errors queue, once per run.
func (e *Engine) deadLetter(ctx context.Context, f *loadedFlow, ev *message.Event, run *Run, err error) error {
	entry := reliability.Entry{ID: message.NewID(), Origin: reliability.OriginFlow, Flow: f.name, RunID: run.ID,
		Type: ev.Type, MessageID: ev.ID, Reason: err.Error(), Class: reliability.ClassPermanent, RetryCount: run.Retries,
		Time: time.Now().UTC(), Failures: run.Failures, MessageStream: run.Trigger.Stream, MessageSeq: run.Trigger.Seq}
	if ev.Kind == message.KindRetry {
		// The retry message is not the run's trigger: the entry must carry it whole.
		entry.MessageStream, entry.MessageSeq = "", 0
	}
	var ce *CallError
	if errors.As(err, &ce) {
		entry.Step, entry.System, entry.Operation = ce.Step, ce.System, ce.Operation
		if connector.Transient(err) {
			entry.Class = reliability.ClassTransient
		}
	} else {
		var se *stepError
		if errors.As(err, &se) {
			entry.Step = se.key
		}
	}
	var merr error
	if entry.Message, merr = ev.MarshalJSON(); merr != nil {
		return merr
	}
	if entry.Steps, merr = json.Marshal(run.Steps); merr != nil {
		return merr
	}
	if perr := reliability.Put(ctx, e.opts.Bus, &entry, "flow:"+run.ID); perr != nil {
		return perr
	}
	e.metrics.deadLetters.WithLabelValues(f.name, entry.Class).Inc()
	if e.opts.OnDeadLetter != nil {
		e.opts.OnDeadLetter(&entry)
	}
	e.log.Warn("delivery moved to the errors queue", "flow", f.name, "run", run.ID, "message", ev.ID, "class", entry.Class,
		"retries", run.Retries, "fingerprint", entry.Fingerprint)
	return nil
}
