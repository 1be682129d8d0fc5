package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/causeway/causeway/message"
	"github.com/nats-io/nats.go/jetstream"
)

// Subject returns the bus subject of a message type.
func Subject(msgType string) string { return SubjectMessages + msgType }

// maxPending bounds the publishes in flight on the connection. A publish beyond it waits for
// room (up to stallWait) instead of failing: that is the back-pressure that keeps a burst
// from turning into errors.
const (
	maxPending = 4096
	stallWait  = 10 * time.Second
)

// PublishAsync sends an accepted message to the MESSAGES stream without waiting for the
// acknowledgement, so that callers can pipeline many publishes and wait for all of them.
// The message id is the de-duplication id.
func (b *Bus) PublishAsync(ev *message.Event, node string) (jetstream.PubAckFuture, error) {
	m := ev.ToNATS(Subject(ev.Type))
	if node != "" {
		m.Header[message.HeaderNode] = []string{node}
	}
	f, err := b.js.PublishMsgAsync(m, jetstream.WithExpectStream(StreamMessages), jetstream.WithStallWait(stallWait))
	if err != nil {
		return nil, fmt.Errorf("bus: publish %s: %w", ev.ID, err)
	}
	return f, nil
}

// Publish sends one message and waits until the stream has stored it.
func (b *Bus) Publish(ctx context.Context, ev *message.Event, node string) (*jetstream.PubAck, error) {
	f, err := b.PublishAsync(ev, node)
	if err != nil {
		return nil, err
	}
	return Wait(ctx, f)
}

// Wait waits for one asynchronous publish to be acknowledged.
func Wait(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, fmt.Errorf("bus: publish not acknowledged: %w", err)
	case <-ctx.Done():
		return nil, fmt.Errorf("bus: publish not acknowledged: %w", ctx.Err())
	}
}
