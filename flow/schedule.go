package flow

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/internal/cronspec"
	"github.com/causeway/causeway/message"
)

// Schedules.
//
// A scheduled flow's ticks go through the bus like invocations: at each tick the node
// publishes a tick message for the flow, whose id is made of the flow and the tick's time,
// so that nodes ticking together store it once; the flow's consumer runs it like any trigger.
// The time of the last tick is kept in the CW_SCHEDULES bucket. On start, a node that finds
// ticks missed while the platform was down fires one tick, for the latest missed time, not
// one per missed tick.

// schedule ticks a scheduled flow until halt closes.
func (e *Engine) schedule(f *loadedFlow, halt <-chan struct{}) {
	defer e.helpers.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-halt
		cancel()
	}()
	sched := f.spec.compiled.schedule
	kv, err := e.opts.Bus.JetStream().KeyValue(ctx, bus.BucketSchedules)
	if err != nil {
		e.log.Error("schedule bucket missing; the flow does not tick", "flow", f.name, "err", err)
		return
	}
	now := time.Now()
	if entry, err := kv.Get(ctx, f.name); err == nil {
		var last time.Time
		if json.Unmarshal(entry.Value(), &last) == nil {
			if missed, ok := cronspec.Missed(sched, last, now); ok {
				e.log.Info("ticks were missed while the platform was down; running the latest once", "flow", f.name, "tick", missed)
				e.tick(ctx, f, kv, missed)
			}
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		e.log.Warn("last tick unknown", "flow", f.name, "err", err)
	}
	for {
		next := sched.Next(time.Now())
		if next.IsZero() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		e.tick(ctx, f, kv, next)
	}
}

// tick publishes one tick of a scheduled flow and records it, retrying while the bus does
// not take it.
func (e *Engine) tick(ctx context.Context, f *loadedFlow, kv jetstream.KeyValue, at time.Time) {
	at = at.UTC()
	ev := &message.Event{
		ID:     "tick:" + f.name + ":" + at.Format(time.RFC3339Nano),
		Source: "causeway/schedule", Type: "causeway.flow.tick", Time: at,
		Data: json.RawMessage(`{"scheduledTime":"` + at.Format(time.RFC3339Nano) + `"}`), DataContentType: "application/json",
	}
	ev.FillDefaults(at)
	for attempt := 0; ; attempt++ {
		_, err := e.opts.Bus.JetStream().PublishMsg(ctx, ev.ToNATS(bus.SubjectInvoke+f.name), jetstream.WithExpectStream(bus.StreamInvocations))
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		e.log.Warn("tick not stored; trying again", "flow", f.name, "tick", at, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*time.Second, 10*time.Second)):
		}
	}
	if data, err := json.Marshal(at); err == nil {
		if _, err := kv.Put(ctx, f.name, data); err != nil {
			e.log.Warn("last tick not recorded", "flow", f.name, "err", err)
		}
	}
}
