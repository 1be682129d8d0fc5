package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/message"
)

// Errors of Invoke.
var (
	// ErrNoFlow is an invocation of a flow that is not defined or has no invoke trigger.
	ErrNoFlow = errors.New("no such invokable flow")
	// ErrNoAnswer is an invocation whose run did not answer in time; the run goes on.
	ErrNoAnswer = errors.New("the flow did not answer in time")
)

// EventGatewayRequest is the tracking event a message published by a run that the gateway
// invoked carries: its detail names the API, route and consumer, and the run.
const EventGatewayRequest = "gateway.request"

// Invocation is an accepted invocation that has not been answered in time: the run goes on,
// and its record can be looked up.
type Invocation struct {
	RunID   string
	Timeout time.Duration
}

// Invoke starts a run of the flow name with input as its trigger's data and waits for its
// answer (a reply step, or the run's end), up to the flow's invoke timeout or ctx. The
// invocation is stored on the bus before anything runs, so a crash of the node does not
// lose the run, only the wait.
func (e *Engine) Invoke(ctx context.Context, name string, input json.RawMessage) (*Answer, *Invocation, error) {
	return e.InvokeFrom(ctx, name, input, "")
}

// InvokeFrom is Invoke for a request that came through the gateway: gatewayRequest
// describes it (API, route, consumer), and each message the run publishes gets a
// gateway.request tracking event saying so, so that the request shows in the timeline of
// what it caused.
func (e *Engine) InvokeFrom(ctx context.Context, name string, input json.RawMessage, gatewayRequest string) (*Answer, *Invocation, error) {
	var f *loadedFlow
	for _, lf := range e.flows {
		if lf.name == name && lf.spec.Trigger.Invoke != nil {
			f = lf
		}
	}
	if f == nil {
		return nil, nil, fmt.Errorf("%w: %q", ErrNoFlow, name)
	}
	ev := &message.Event{Source: "causeway/invoke", Type: "causeway.flow.invoke", Data: input, DataContentType: "application/json"}
	ev.FillDefaults(time.Now())
	inv := &Invocation{RunID: RunID(name, ev.ID), Timeout: f.spec.Trigger.Invoke.Timeout}

	nc := e.opts.Bus.Conn()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, nil, fmt.Errorf("invoke %s: %w", name, err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // the subscription ends with the wait
	m := ev.ToNATS(bus.SubjectInvoke + name)
	m.Header.Set(bus.HeaderReplyTo, inbox)
	if gatewayRequest != "" {
		m.Header.Set(bus.HeaderGatewayRequest, gatewayRequest)
	}
	if _, err := e.opts.Bus.JetStream().PublishMsg(ctx, m, jetstream.WithExpectStream(bus.StreamInvocations)); err != nil {
		return nil, nil, fmt.Errorf("invoke %s: the bus did not store the invocation: %w", name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, inv.Timeout)
	defer cancel()
	reply, err := sub.NextMsgWithContext(wctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, nats.ErrTimeout) {
			return nil, inv, ErrNoAnswer
		}
		return nil, inv, fmt.Errorf("invoke %s: %w", name, err)
	}
	var a Answer
	if err := json.Unmarshal(reply.Data, &a); err != nil {
		return nil, inv, fmt.Errorf("invoke %s: malformed answer: %w", name, err)
	}
	return &a, inv, nil
}
