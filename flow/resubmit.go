package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/message"
)

// Resubmission.
//
// Resubmitting a run starts a new run of the same flow from the same trigger, linked to the
// old one. The trigger is published again, through the bus like any trigger so that the new
// run is as durable as the first: a copy with a new id, the same correlation id, caused by
// the original, addressed to the one flow (the target attribute "flow:<name>", which every
// other flow passes over) and naming the run it resubmits.

// TargetPrefix starts the target attribute of a message addressed to one flow.
const TargetPrefix = "flow:"

// ExtResubmitOf is the extension attribute naming the run a trigger resubmits.
const ExtResubmitOf = "resubmitof"

// ErrNoRun is a resubmission of a run that does not exist, or whose trigger is gone.
var ErrNoRun = errors.New("no such run")

// Resubmit starts a new run from the trigger of run id and returns the new run's id.
func (e *Engine) Resubmit(ctx context.Context, id string) (string, error) {
	old, err := e.journal.load(ctx, id)
	if err != nil {
		return "", err
	}
	if old == nil {
		return "", fmt.Errorf("%w: %q", ErrNoRun, id)
	}
	var f *loadedFlow
	for _, lf := range e.flows {
		if lf.name == old.Flow {
			f = lf
		}
	}
	if f == nil {
		return "", fmt.Errorf("%w: flow %q of run %s is not defined any more", ErrNoRun, old.Flow, id)
	}
	if old.Trigger.Stream == "" || old.Trigger.Seq == 0 {
		return "", fmt.Errorf("%w: run %s does not say where its trigger is", ErrNoRun, id)
	}
	stream, err := e.opts.Bus.JetStream().Stream(ctx, old.Trigger.Stream)
	if err != nil {
		return "", err
	}
	raw, err := stream.GetMsg(ctx, old.Trigger.Seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", fmt.Errorf("%w: the trigger of run %s is no longer on the bus (past its retention)", ErrNoRun, id)
	}
	if err != nil {
		return "", err
	}
	orig, err := message.FromNATS(raw.Header, raw.Data)
	if err != nil {
		return "", fmt.Errorf("the trigger of run %s: %w", id, err)
	}
	ev := *orig
	ev.ID = message.NewID()
	ev.Time = time.Now().UTC()
	ev.CausationID = orig.ID
	ev.Target = TargetPrefix + f.name
	ev.Extensions = map[string]string{}
	for k, v := range orig.Extensions {
		ev.Extensions[k] = v
	}
	ev.Extensions[ExtResubmitOf] = id
	if f.spec.Trigger.Message != nil {
		if err := e.opts.Bus.PublishAll(ctx, []*message.Event{&ev}, e.opts.Node); err != nil {
			return "", err
		}
	} else {
		m := ev.ToNATS(bus.SubjectInvoke + f.name)
		if _, err := e.opts.Bus.JetStream().PublishMsg(ctx, m, jetstream.WithExpectStream(bus.StreamInvocations)); err != nil {
			return "", err
		}
	}
	return RunID(f.name, ev.ID), nil
}

// TriggerOf says how a flow is triggered ("message", "schedule" or "invoke"), and whether
// the flow is defined.
func (e *Engine) TriggerOf(name string) (string, bool) {
	for _, f := range e.flows {
		if f.name == name {
			return f.triggerKind(), true
		}
	}
	return "", false
}
